"""Planning and sending on a tiny world with a guarded fake /decide (in-process transport)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import select, update

from dispatcher.cycle import Dispatcher, status_counts
from dispatcher.loading import load_folder, load_tables, refresh_settlements
from dispatcher.outbox import recover
from dispatcher.state import AuditEntry, CaseTask, Message, Payment, Reminder
from paynudge.errors import DataError
from serving.client import DecisionClient
from simulation.world import World

T0 = pd.Timestamp("2024-03-20", tz="UTC").to_pydatetime()
T1 = T0 + timedelta(days=2)


def dispatcher_on(world: World, settings, kit, choose=None) -> Dispatcher:
    client = DecisionClient(
        "http://decisions.test", kit.token, transport=httpx.MockTransport(kit.fake_decide(choose))
    )
    dispatcher = Dispatcher(settings, client=client)
    load_tables(dispatcher.sessions, world.tables, dispatcher.workflow)
    return dispatcher


def messages(dispatcher: Dispatcher) -> pd.DataFrame:
    with dispatcher.sessions() as session:
        rows = session.execute(select(Message)).scalars().all()
        return pd.DataFrame(
            [{c.key: getattr(m, c.key) for c in Message.__table__.columns} for m in rows]
        )


def test_a_cycle_plans_sends_once_and_opens_case_tasks(tiny_world: World, settings, kit) -> None:
    dispatcher = dispatcher_on(tiny_world, settings, kit)
    first = dispatcher.run_once(T0)
    assert first.planned.scheduled > 0 and first.planned.case_tasks > 0
    dispatcher.run_once(T1)
    again = dispatcher.run_once(T1)  # nothing new: idempotent per (invoice, stage)
    assert again.planned.invoices == 0 and again.sent.claimed == 0
    sent = messages(dispatcher)
    sent = sent[sent["status"] == "sent"]
    assert len(sent) == len(set(zip(sent["invoice_id"], sent["stage"], strict=True)))
    outbox = list((settings.home / "outbox").rglob("*.json"))
    assert sorted(p.stem for p in outbox) == sorted(sent["message_id"])
    with dispatcher.sessions() as session:
        tasks = session.scalars(select(CaseTask)).all()
        assert tasks and all(task.stage == "overdue_30" for task in tasks)
        finals = session.scalars(select(Message).where(Message.stage == "overdue_30")).all()
        assert finals == []
        history = session.scalars(
            select(AuditEntry.event).where(
                AuditEntry.entity_id == sent["message_id"].iloc[0], AuditEntry.entity == "message"
            )
        ).all()
        assert history == ["pending", "claimed", "sent"]
    counts = status_counts(dispatcher.sessions)
    assert counts["messages"]["sent"] == len(sent)


def test_a_payment_stops_a_reminder_already_scheduled(tiny_world: World, settings, kit) -> None:
    dispatcher = dispatcher_on(tiny_world, settings, kit)
    dispatcher.run_once(T0)
    scheduled = messages(dispatcher)
    target = scheduled.iloc[0]
    with dispatcher.sessions.begin() as session:
        session.add(
            Payment(
                payment_id="PAY-TEST",
                invoice_id=target["invoice_id"],
                customer_id=target["customer_id"],
                amount=10_000.0,
                method="card",
                paid_at=target["send_at"] - timedelta(minutes=1),
            )
        )
        session.flush()
        refresh_settlements(session, [target["invoice_id"]])
    dispatcher.run_once(T1)
    after = messages(dispatcher).set_index("message_id")
    assert after.loc[target["message_id"], "status"] == "blocked"
    assert "paid" in after.loc[target["message_id"], "reasons"]
    assert not (
        settings.home / "outbox" / target["channel"] / f"{target['message_id']}.json"
    ).exists()


def test_a_failing_template_parks_that_message_only(tiny_world: World, tmp_path: Path, kit) -> None:
    templates = tmp_path / "templates" / "email"
    templates.mkdir(parents=True)
    (templates / "friendly.nl.j2").write_text("Subject: x\n\n{{ no_such_variable }}")
    settings = kit.make_settings(tmp_path / "home", templates_dir=tmp_path / "templates")
    dispatcher = dispatcher_on(tiny_world, settings, kit)
    dispatcher.run_once(T0)
    report = dispatcher.run_once(T1)
    result = messages(dispatcher)
    parked = result[result["status"] == "parked"]
    assert report.sent.parked == len(parked) > 0
    assert set(parked["language"]) == {"nl"} and set(parked["channel"]) == {"email"}
    assert parked["last_error"].str.contains("email/friendly.nl.j2.*no_such_variable").all()
    assert (result["status"] == "sent").sum() > 0


class Failing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def failing_provider() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def sms_if_allowed(request: dict) -> tuple[str, str, str] | None:
    overrides = request["overrides"]
    if overrides["consent_sms"] and not overrides["opted_out_sms"] and not request["dispute_open"]:
        return "sms", "neutral", "none"
    return None


def test_failures_are_retried_with_backoff_then_parked(
    tiny_world: World, tmp_path: Path, failing_provider: str, kit
) -> None:
    settings = kit.make_settings(
        tmp_path / "home",
        transports={"sms": "webhook", "push": "webhook"},
        webhook={"url": failing_provider, "secret": "s" * 32, "timeout_seconds": 2},
        retry_pauses_seconds=(60, 600),
    )
    dispatcher = dispatcher_on(tiny_world, settings, kit, choose=sms_if_allowed)
    dispatcher.run_once(T0)
    report = dispatcher.run_once(T1)
    result = messages(dispatcher)
    webhook = result[(result["transport"] == "webhook") & (result["created_at"] == T0)]
    assert len(webhook) > 0 and (webhook["status"] == "parked").all()
    assert (webhook["attempts"] == 3).all()
    assert webhook["last_error"].str.contains("503").all()
    assert report.sent.retried == 2 * len(webhook)
    with dispatcher.sessions() as session:
        events = session.scalars(
            select(AuditEntry.event).where(
                AuditEntry.entity_id == webhook["message_id"].iloc[0],
                AuditEntry.entity == "message",
            )
        ).all()
    assert events == ["pending", "claimed", "retry", "claimed", "retry", "claimed", "parked"]


def test_recovery_resends_idempotent_and_flags_smtp(tiny_world: World, settings, kit) -> None:
    dispatcher = dispatcher_on(tiny_world, settings, kit)
    dispatcher.run_once(T0)
    ids = messages(dispatcher)["message_id"].tolist()[:3]
    expired = datetime.now().astimezone() - timedelta(seconds=1)
    with dispatcher.sessions.begin() as session:
        for message_id, status, transport in zip(
            ids, ("claimed", "sending", "sending"), ("dry_run", "dry_run", "smtp"), strict=True
        ):
            session.execute(
                update(Message)
                .where(Message.message_id == message_id)
                .values(status=status, transport=transport, claimed_by="dead", lease_until=expired)
            )
    assert recover(dispatcher.relay) == 3
    after = messages(dispatcher).set_index("message_id")
    assert list(after.loc[ids, "status"]) == ["pending", "pending", "reconcile"]
    assert "may or may not" in after.loc[ids[2], "last_error"]


def test_loading_errors_name_table_column_and_row(
    tiny_world: World, settings, tmp_path, kit
) -> None:
    dispatcher = dispatcher_on(tiny_world, settings, kit)
    tables = dict(tiny_world.tables)
    invoices = tables["invoices"].copy()
    invoices.loc[3, "customer_id"] = "C-NOBODY"
    with pytest.raises(DataError, match=r"invoices.customer_id: 'C-NOBODY' \(row 3\)"):
        load_tables(dispatcher.sessions, {**tables, "invoices": invoices}, dispatcher.workflow)
    with pytest.raises(DataError, match="customers"):
        load_folder(dispatcher.sessions, tmp_path, dispatcher.workflow)
    with dispatcher.sessions() as session:
        assert session.scalars(select(Reminder)).all() == []
