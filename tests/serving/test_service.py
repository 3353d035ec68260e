"""The real service on a free port: auth, validation 4xx, decide, feedback idempotency, reload."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import time
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from paynudge.config import Settings
from paynudge.errors import ConfigError
from serving.client import DecisionClient, ServiceError
from serving.decision_log import DecisionLog, default_log_path
from serving.schemas import Decision, Feedback
from serving.service import DEV_MODE_ENV, required_token, settle_heap

TOKEN = "test-token-0123456789"
START_TIMEOUT_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def service(served_world: Any) -> Iterator[str]:
    """``bentoml serve`` of the service on the served world; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "PAYNUDGE_HOME": str(served_world.settings.home),
        "PAYNUDGE_API_TOKEN": TOKEN,
    }
    env.pop(DEV_MODE_ENV, None)
    bentoml = Path(sys.executable).with_name("bentoml")
    process = subprocess.Popen(
        [str(bentoml), "serve", "serving.service:PayNudgeDecisions", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=(served_world.settings.home / "service.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    try:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                log = (served_world.settings.home / "service.log").read_text()
                pytest.fail(f"the service exited: {log[-3000:]}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        else:
            pytest.fail("the service did not become ready in time")
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def client(service: str) -> Iterator[DecisionClient]:
    with DecisionClient(service, TOKEN, timeout=30) as client:
        yield client


def body(requests: list) -> dict:
    return {"requests": [r.model_dump(mode="json") for r in requests]}


def test_health_checks_need_no_token_everything_else_does(service: str) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        assert httpx.get(service + path).status_code == 200
    for method, path in (("GET", "/metadata"), ("GET", "/metrics"), ("POST", "/decide"),
                         ("POST", "/feedback"), ("POST", "/admin/reload")):  # fmt: skip
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = httpx.request(method, service + path, headers=headers, json={})
            assert response.status_code == 401, (path, headers)
            assert response.headers["www-authenticate"] == "Bearer"


def test_metadata_names_versions_and_uris(client: DecisionClient) -> None:
    metadata = client.metadata()
    assert metadata.models["late_payment"] == "late_payment/1"
    assert metadata.model_uris["send_time"] == "models:/send_time/1"
    assert metadata.policy_version == "reminder_policy/1"


def counters(service: str) -> dict[tuple[str, str], float]:
    """The service's decision counters from ``/metrics``: (metric, action) -> count."""
    text = httpx.get(service + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).text
    return {
        (sample.name.removesuffix("_total"), sample.labels.get("action", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name in ("paynudge_decisions_total", "paynudge_cold_starts_total")
    }


def test_decide_over_http_logs_every_decision(
    service: str, client: DecisionClient, served_world: Any, make_requests: Any, components: Any
) -> None:
    from serving.decision import decide

    requests = make_requests(served_world.profiles, 30, seed=5, unknown=2)
    before = counters(service)
    decisions = client.decide(requests, explain=True, seed=4)
    after = counters(service)
    made = Counter(("paynudge_decisions", d.action) for d in decisions)
    made[("paynudge_cold_starts", "")] = 2
    grown = {key: after[key] - before.get(key, 0) for key in after}
    assert {key: count for key, count in grown.items() if count} == made
    assert [d.invoice_id for d in decisions] == [r.invoice_id for r in requests]
    assert all(d.explanation and len(d.explanation) == 3 for d in decisions)
    local = decide(requests, components, explain=True, seed=4)
    assert [d.action for d in decisions] == [d.action for d in local]
    assert [d.send_at for d in decisions] == [d.send_at for d in local]
    logged = DecisionLog(default_log_path(served_world.settings)).decisions()
    assert {str(d.decision_id) for d in decisions} <= set(logged["decision_id"])
    scores = client.score(requests[:3])
    assert [s.late_payment_probability for s in scores] == pytest.approx(
        [d.late_payment_probability for d in decisions[:3]]
    )


def test_paynudge_score_gives_the_decisions_of_decide_over_http(
    client: DecisionClient,
    served_world: Any,
    make_requests: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from paynudge.cli import app
    from paynudge.config import get_settings

    requests = make_requests(served_world.profiles, 40, seed=21, unknown=3)
    source = tmp_path / "requests.jsonl"
    source.write_text("".join(r.model_dump_json() + "\n" for r in requests))
    monkeypatch.setenv("PAYNUDGE_HOME", str(served_world.settings.home))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["score", "--input", str(source), "--output", str(tmp_path / "out.jsonl"),
                  "--seed", "13", "--explain"],
        )  # fmt: skip
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    batch = [Decision.model_validate_json(line) for line in
             (tmp_path / "out.jsonl").read_text().splitlines()]  # fmt: skip
    over_http = client.decide(requests, explain=True, seed=13)
    assert len(batch) == len(over_http) == 43
    assert any(d.action != "no_contact" for d in batch)
    ignore = {"decision_id"}
    assert [d.model_dump(exclude=ignore) for d in batch] == [
        d.model_dump(exclude=ignore) for d in over_http
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"amount": -3}, "amount"),
        ({"now": "2025-07-01T10:00:00"}, "now"),
        ({"due_date": "2020-01-01"}, "requests"),
        ({"overrides": {"shoe_size": 44}}, "overrides"),
        ({"calls_7d": -1}, "calls_7d"),
        ({"customer_id": ""}, "customer_id"),
        ({"stage": "final_notice"}, "stage"),
        ({"overrides": {"autopay": "sometimes"}}, "autopay"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(
    service: str, served_world: Any, make_requests: Any, change: dict, field: str
) -> None:
    request = body(make_requests(served_world.profiles, 1, seed=9))
    request["requests"][0].update(change)
    response = httpx.post(
        service + "/decide", json=request, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 400, response.text
    assert field in response.text


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"requests": []}', b'{"requests": "x"}', b'{"feedback": [{}]}'],
)
def test_malformed_bodies_are_4xx_never_5xx(service: str, payload: bytes) -> None:
    for path in ("/decide", "/score", "/feedback"):
        response = httpx.post(
            service + path,
            content=payload,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        assert 400 <= response.status_code < 500, (path, payload, response.text)


def test_feedback_is_idempotent_by_decision(
    client: DecisionClient, served_world: Any, make_requests: Any
) -> None:
    (decision,) = client.decide(make_requests(served_world.profiles, 1, seed=6), seed=1)
    report = Feedback(decision_id=decision.decision_id, delivered=True, opened=False)
    assert client.feedback([report]).accepted == 1
    again = client.feedback([report, report])
    assert (again.accepted, again.duplicates) == (0, 2)
    paid = report.model_copy(update={"paid_at": pd.Timestamp("2025-07-20", tz="UTC")})
    assert client.feedback([paid]).accepted == 1
    with pytest.raises(ServiceError, match="400"):
        client.feedback([])


def test_reload_swaps_in_a_newly_promoted_model(
    client: DecisionClient, served_world: Any, make_requests: Any, register_model: Any
) -> None:
    model = served_world.estimators["late_payment"]
    example = served_world.profiles[model.feature_names_].head(5)
    version = register_model(model, example, "late_payment", served_world.settings)
    assert client.metadata().models["late_payment"] == "late_payment/1"
    reloaded = client.reload()
    assert reloaded.models["late_payment"] == f"late_payment/{version}" != "late_payment/1"
    assert client.metadata().models["late_payment"] == f"late_payment/{version}"
    decisions = client.decide(make_requests(served_world.profiles, 3, seed=8), seed=2)
    assert {d.model_versions["late_payment"] for d in decisions} == {f"late_payment/{version}"}
    with pytest.raises(ServiceError, match="400"):
        client.reload("no_such_alias")
    assert client.metadata().models["late_payment"] == f"late_payment/{version}"


class _Node:
    def __init__(self) -> None:
        self.cycle = self


def test_settled_objects_are_frozen_and_released_by_the_next_settle() -> None:
    """The service freezes what it loads (no full collection walks it); what a reload drops,
    cycles included, is collected by the next settle, not kept frozen for ever."""
    dropped = _Node()
    alive = weakref.ref(dropped)
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        del dropped
        gc.collect()
        assert alive() is not None  # frozen: the collector skips it
        settle_heap()
        assert alive() is None
    finally:
        gc.unfreeze()


def test_no_token_refuses_to_start_unless_dev_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DEV_MODE_ENV, raising=False)
    with pytest.raises(ConfigError, match="no API token"):
        required_token(Settings(api_token=None))
    monkeypatch.setenv(DEV_MODE_ENV, "1")
    assert required_token(Settings(api_token=None)) is None
    assert required_token(Settings(api_token="abc")) == b"abc"


FUZZ_EXAMPLES = 20
"""Generated requests per operation and mode: bounds the fuzz test's time (~1 min)."""


def test_schema_fuzzing_finds_no_5xx_and_no_schema_violation(service: str) -> None:
    """Schemathesis against the service's own OpenAPI schema: valid and invalid bodies for every
    operation; every answer must be a declared status, of the declared type and shape, and
    never a server error. (Reload is fuzzed with bodies only: a valid alias swaps models.)"""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    auth = {"Authorization": f"Bearer {TOKEN}"}
    schema = schemathesis.openapi.from_url(f"{service}/docs.json", headers=auth)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]  # fmt: skip
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.method.lower() == "post":
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.explicit, Phase.generate])  # fmt: skip
            def call(case: Any) -> None:
                response = case.call(base_url=service, headers=auth, timeout=60)
                statuses.setdefault(case.operation.path, set()).add(response.status_code)
                case.validate_response(response, checks=checks, headers=auth)

            call()
    assert {"/decide", "/score", "/feedback", "/echo", "/admin/reload"} <= set(statuses)
    assert all(code < 500 for codes in statuses.values() for code in codes), statuses
    assert 400 in statuses["/decide"] and 200 in statuses["/echo"]
