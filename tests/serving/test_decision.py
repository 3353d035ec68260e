"""The decision function on real small models: shape, guardrails, cold start, reasons, seeds."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from monitoring.decision_window import parse_feature_rows
from paynudge.errors import DataError
from reminder_policy.actions import ACTION_NAMES
from reminder_policy.guardrails import GuardrailInputs, apply_guardrails, violations
from serving.decision import (
    Components,
    decide,
    decide_batch,
    decision_draws,
    decision_key,
    due_ends,
    guardrail_inputs,
    score,
)
from serving.decision_log import SCHEMA, DecisionLog
from serving.feature_rows import feature_records, row_count, rows_frame, take_rows
from serving.invoice_features import bill_features
from serving.schemas import Decision, DecisionRequest, Feedback, trusted
from serving.send_time import candidate_hours


@pytest.fixture(scope="module")
def requests_(served_world: Any, make_requests: Any) -> list:
    return make_requests(served_world.profiles, 300, seed=1, unknown=5)


@pytest.fixture(scope="module")
def decided(requests_: list, components: Components):
    return decide_batch(requests_, components, explain=True, seed=7)


def test_one_decision_per_request_in_order(requests_: list, decided) -> None:
    decisions = decided.decisions
    assert len(decisions) == len(requests_) == row_count(decided.features)
    assert [d.invoice_id for d in decisions] == [r.invoice_id for r in requests_]
    assert len({d.decision_id for d in decisions}) == len(decisions)
    assert {d.action for d in decisions} <= set(ACTION_NAMES)
    assert all(0 < d.propensity <= 1 for d in decisions)
    assert all(0 <= d.late_payment_probability <= 1 for d in decisions)
    assert all(d.policy_version == "reminder_policy/1" for d in decisions)
    assert all(d.model_versions["late_payment"] == "late_payment/1" for d in decisions)
    contacts = [d for d in decisions if d.action != "no_contact"]
    assert contacts, "the policy should contact someone in 300 decisions"


def test_no_requests_no_decisions(components: Components) -> None:
    assert decide([], components) == []


def test_every_chosen_action_is_allowed_and_breaks_no_rule(
    requests_: list, decided, components: Components
) -> None:
    settings = components.settings.policy.guardrails
    zones = np.array([r.timezone for r in requests_], dtype=object)
    due_at = due_ends([r.due_date for r in requests_], zones)
    inputs = guardrail_inputs(requests_, decided.features, zones, due_at)
    checked = dataclasses.replace(inputs)  # built unchecked: the checks pass on them
    for name in ("send_at", "due_at", "promise_until", "send_before"):
        np.testing.assert_array_equal(checked.instants(name), inputs.instants(name))
    allowed = apply_guardrails(inputs, settings).allowed
    np.testing.assert_array_equal(apply_guardrails(checked, settings).allowed, allowed)
    action = np.array([ACTION_NAMES.index(d.action) for d in decided.decisions])
    assert allowed[np.arange(len(action)), action].all()
    send_at = pd.DatetimeIndex(
        [d.send_at or r.now for d, r in zip(decided.decisions, requests_, strict=True)]
    ).tz_convert("UTC")
    assert all(not broken for broken in violations(inputs, action, send_at, settings))
    paid = np.array([r.paid for r in requests_])
    assert (action[paid] == 0).all()


def test_requests_past_their_deadline_are_refused_and_trusted_inputs_need_every_field(
    requests_: list,
) -> None:
    late = requests_[0].model_dump() | {"send_before": requests_[0].now - pd.Timedelta(hours=1)}
    with pytest.raises(ValidationError, match=r"send_before .* is before now"):
        DecisionRequest.model_validate(late)
    with pytest.raises(TypeError, match="needs exactly"):
        GuardrailInputs.trusted(send_at=np.zeros(1, dtype=np.int64))


def test_send_time_is_an_allowed_local_hour_not_before_now(
    requests_: list, decided, components: Components
) -> None:
    settings = components.settings
    hours = set(candidate_hours(settings.send_hours, settings.policy.guardrails.quiet_hours))
    for request, decision in zip(requests_, decided.decisions, strict=True):
        if decision.send_at is None:
            assert decision.action == "no_contact" and decision.open_probability is None
            continue
        assert decision.send_at >= request.now
        local = decision.send_at_local
        assert (
            local.utcoffset()
            == pd.Timestamp(decision.send_at).tz_convert(request.timezone).utcoffset()
        )
        assert pd.Timestamp(local) == pd.Timestamp(decision.send_at)
        first_send_hour = (
            local.hour in hours
            or local.hour == pd.Timestamp(request.now).tz_convert(request.timezone).hour
        )
        assert first_send_hour
        if decision.channel != "letter":
            assert 0 <= decision.open_probability <= 1


def test_cold_start_customers_are_flagged_and_need_known_consent(
    served_world: Any, components: Components, make_requests: Any
) -> None:
    request = make_requests(served_world.profiles, 0, seed=3, unknown=1)[0]
    request = request.model_copy(update={"paid": False, "dispute_open": False})
    (unknown,) = decide([request], components, seed=1)
    assert unknown.cold_start and unknown.action == "no_contact"
    assert "no_consent" in unknown.guardrail_reasons
    consenting = request.model_copy(
        update={"overrides": {"consent_email": True, "consent_sms": True}}
    )
    (known_consent,) = decide([consenting], components, seed=1)
    assert known_consent.cold_start
    assert "no_consent" in known_consent.guardrail_reasons  # the other channels still lack it
    warm = make_requests(served_world.profiles, 1, seed=3)[0]
    assert not decide([warm], components, seed=1)[0].cold_start


def test_explanations_are_the_top_pred_contrib_values(
    served_world: Any, requests_: list, decided
) -> None:
    model = served_world.estimators["late_payment"]
    contributions = model.contributions(decided.features)
    raw = model.predict_raw(decided.features)
    np.testing.assert_allclose(contributions.sum(axis=1), raw, rtol=1e-6, atol=1e-6)
    values = contributions.drop(columns="bias")
    for i, decision in enumerate(decided.decisions):
        reasons = decision.explanation
        assert reasons is not None and len(reasons) == 3
        shown = [values.iloc[i][reason.feature] for reason in reasons]
        np.testing.assert_allclose([r.contribution for r in reasons], shown)
        assert min(abs(np.array(shown))) >= values.iloc[i].abs().nlargest(3).min() - 1e-12
        assert all(r.sentence.endswith("late-payment risk).") for r in reasons)


def test_same_seed_same_decisions_in_a_batch_or_one_by_one(
    requests_: list, components: Components
) -> None:
    few = requests_[:20]
    batch = decide(few, components, seed=11)
    single = [decide([r], components, seed=11)[0] for r in few]
    fields = {"decision_id", "expected_reward"}  # the reward: equal up to BLAS rounding
    np.testing.assert_allclose(
        [d.expected_reward for d in batch], [d.expected_reward for d in single], rtol=1e-12
    )
    assert [d.model_dump(exclude=fields) for d in batch] == [
        d.model_dump(exclude=fields) for d in single
    ]
    other = decide(few, components, seed=12)
    assert [d.model_dump(exclude=fields) for d in other] != [
        d.model_dump(exclude=fields) for d in batch
    ] or all(d.propensity > 0.9 for d in batch)


def test_draws_are_splitmix64_of_the_key_hash_and_the_seed(requests_: list) -> None:
    """The reference in numpy's wrapping uint64 arithmetic: the same draws, so the same seed
    keeps giving the same decisions across releases."""

    def mix(x: np.ndarray) -> np.ndarray:
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

    keys = [hashlib.blake2b(decision_key(r), digest_size=8).digest() for r in requests_]
    hashed = np.array([int.from_bytes(key, "big") for key in keys], dtype=np.uint64)
    for seed in (0, 7, 2**63 - 1):
        seed_bits = mix(np.array([seed], dtype=np.uint64))[0]
        expected = (mix(hashed ^ seed_bits) >> np.uint64(11)).astype(np.float64) * 2.0**-53
        np.testing.assert_array_equal(decision_draws(requests_, seed), expected)
    draws = decision_draws(requests_, None)
    assert ((draws >= 0) & (draws < 1)).all() and len(set(draws.tolist())) == len(requests_)


def test_unknown_stage_is_refused_with_its_position(
    requests_: list, components: Components
) -> None:
    bad = [requests_[0], requests_[1].model_copy(update={"stage": "final_notice"})]
    with pytest.raises(DataError, match=r"requests\.1\.stage: expected one of"):
        decide(bad, components)


def test_a_policy_trained_on_other_context_columns_is_refused(
    requests_: list, components: Components
) -> None:
    spec = components.policy_spec
    for changed in (
        {**spec, "context_columns": [*spec["context_columns"], "tenure_days_squared"]},
        {**spec, "scores": {**spec.get("scores", {}), "fraud_probability": "fraud/1"}},
    ):
        stale = dataclasses.replace(components, policy_spec=changed)
        with pytest.raises(DataError, match="expects other context columns"):
            decide(requests_[:1], stale)
    assert len(decide(requests_[:1], dataclasses.replace(components))) == 1


def test_overrides_replace_features_and_wrong_types_are_refused(
    requests_: list, components: Components
) -> None:
    request = requests_[0]
    risky = request.model_copy(update={"overrides": {"on_time_rate": 0.0, "autopay": False}})
    safe = request.model_copy(update={"overrides": {"on_time_rate": 1.0, "autopay": True}})
    risky_score, safe_score = score([risky, safe], components)
    assert risky_score.late_payment_probability > safe_score.late_payment_probability
    wrong = request.model_copy(update={"overrides": {"autopay": "sometimes"}})
    with pytest.raises(DataError, match=r"overrides\.autopay"):
        score([wrong], components)


def test_bill_features_of_a_new_invoice_follow_the_profile() -> None:
    profile = pd.DataFrame(
        {
            "monthly_fee": [50.0, 0.0, np.nan],
            "trailing_mean_amount": [40.0, 30.0, np.nan],
            "amount": [60.0, 30.0, 20.0],
            "amount_zscore": [2.0, 0.0, np.nan],
        }
    )
    bills = bill_features(profile, np.array([80.0, 45.0, 10.0]))
    np.testing.assert_allclose(bills["amount_to_fee"], [1.6, np.nan, np.nan])
    np.testing.assert_allclose(bills["amount_ratio"], [2.0, 1.5, np.nan])
    np.testing.assert_allclose(bills["amount_zscore"], [4.0, np.nan, np.nan])  # std 10


def test_decision_log_and_idempotent_feedback(tmp_path, requests_: list, decided) -> None:
    log = DecisionLog(tmp_path / "log.db")
    log.append_decisions(
        requests_[:10], decided.decisions[:10], take_rows(decided.features, np.arange(10))
    )
    logged = log.decisions()
    assert list(logged["decision_id"]) == [str(d.decision_id) for d in decided.decisions[:10]]
    assert (logged["propensity"] > 0).all()
    assert log.layouts() == {1: tuple(decided.features)}  # the names, once
    assert (logged["feature_layout"] == 1).all() and logged["features"].str.startswith("[").all()
    assert [DecisionRequest.model_validate_json(text) for text in logged["request"]] == requests_[
        :10
    ]
    assert [json.loads(text) for text in logged["model_versions"]] == [
        d.model_versions for d in decided.decisions[:10]
    ]
    report = Feedback(decision_id=decided.decisions[0].decision_id, delivered=True, opened=True)
    assert log.append_feedback([report, report]) == (1, 1)
    assert log.append_feedback([report]) == (0, 1)
    paid = report.model_copy(update={"paid_amount": 12.5})
    assert log.append_feedback([paid]) == (1, 0)
    assert len(log.feedback()) == 2


def _assert_rows_equal(parsed: pd.DataFrame, rows: dict[str, np.ndarray]) -> None:
    """A typed frame read from the log holds the values of the decision path's feature rows."""
    for name, values in rows.items():
        got = parsed[name]
        if values.dtype == object:
            assert got.astype(object).where(got.notna(), None).tolist() == values.tolist(), name
        else:
            np.testing.assert_array_equal(got.to_numpy(float, na_value=np.nan), values, name)


def test_logged_feature_rows_read_back_typed_also_beside_rows_logged_before_layouts(
    tmp_path, requests_: list, decided
) -> None:
    path = tmp_path / "old.db"
    layout_column = ",\n        feature_layout INTEGER REFERENCES feature_layouts (layout)"
    assert layout_column in SCHEMA[0]
    old_rows = take_rows(decided.features, np.arange(3))
    with sqlite3.connect(path) as connection:  # a log of the format before layouts
        connection.execute(SCHEMA[0].replace(layout_column, ""))
        connection.executemany(
            f"INSERT INTO decisions VALUES ({', '.join('?' * 19)})",
            [(str(i), "2025-01-01", "2025-01-01", "c", "i", "due", "no_contact", 1.0, None,
              0.5, 0.5, None, 0.0, "[]", 0, "{}", "p", "{}", json.dumps(record))
             for i, record in enumerate(feature_records(old_rows))],
        )  # fmt: skip
    log = DecisionLog(path)  # adds the layout column and table
    log.append_decisions(
        requests_[3:8], decided.decisions[3:8], take_rows(decided.features, np.arange(3, 8))
    )
    logged = log.decisions()
    assert logged["feature_layout"].isna().sum() == 3
    parsed = parse_feature_rows(logged["features"], logged["feature_layout"], log.layouts())
    _assert_rows_equal(parsed, take_rows(decided.features, np.arange(8)))
    with pytest.raises(DataError, match="feature layout 1 is not in feature_layouts"):
        parse_feature_rows(logged["features"], logged["feature_layout"], {})


def test_models_read_feature_rows_as_they_read_the_same_rows_in_a_frame(
    decided, components: Components
) -> None:
    frame = rows_frame(decided.features)
    for model in components.models.values():
        if "channel" in model.estimator.feature_names_:
            continue  # the send-time model reads message columns too
        np.testing.assert_array_equal(
            model.estimator.feature_matrix(decided.features), model.estimator.feature_matrix(frame)
        )


def test_the_send_hour_is_the_best_rated_of_the_later_hours_that_day(
    requests_: list, decided, components: Components
) -> None:
    """The open probability is the send-time model's on the message at its send hour, and no
    later allowed hour of that local day rates higher (later the same day breaks no rule)."""
    settings = components.settings
    model = components.models["send_time"].estimator
    hours = candidate_hours(settings.send_hours, settings.policy.guardrails.quiet_hours)
    frame = rows_frame(decided.features)
    checked = 0
    for i, (request, decision) in enumerate(zip(requests_, decided.decisions, strict=True)):
        if decision.open_probability is None or request.send_before is not None:
            continue
        local = pd.Timestamp(decision.send_at).tz_convert(request.timezone)
        later = [h for h in hours if h > local.hour]
        rows = frame.iloc[[i] * (1 + len(later))].reset_index(drop=True)
        message = {"channel": decision.channel, "tone": decision.tone, "offer": decision.offer,
                   "stage": request.stage, "send_weekday": float(local.weekday())}  # fmt: skip
        rows = rows.assign(**message, send_hour=[float(local.hour), *later])
        rated = model.predict_proba(rows)[:, 1]
        assert rated[0] == pytest.approx(decision.open_probability, abs=1e-12)
        assert (rated[1:] <= rated[0] + 1e-12).all(), (i, local, later, rated)
        checked += 1
    assert checked > 50


def test_decisions_built_unvalidated_equal_validated_ones(decided) -> None:
    """The decision path builds its records with :func:`trusted`: each must be exactly what
    pydantic's validation makes of the same values (types, JSON and field order)."""
    for decision in decided.decisions[:50]:
        values = dict(decision.__dict__)
        assert list(values) == list(Decision.model_fields)
        validated = Decision.model_validate(values)
        assert decision == validated
        assert decision.model_dump_json() == validated.model_dump_json()
    with pytest.raises(TypeError, match="Decision needs exactly"):
        trusted(Decision, {"customer_id": "c1"})
