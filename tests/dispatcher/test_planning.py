"""Planning with the /decide call of the next batch in flight while a batch is written.

The call runs on a background thread; the reminders are those of planning in one batch; an
invoice paid, disputed or moved to another stage between its /decide call and the write of its
batch gets nothing then, and a later batch decides it again as it is now; a failing call stops
the pass and the next pass finishes the work exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from concurrent.futures import Future
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import select, update

from dispatcher.cycle import Dispatcher
from dispatcher.loading import load_tables
from dispatcher.planning import _claim, _still_due, _write_batch, plan_due
from dispatcher.state import Invoice, Message, Reminder
from serving.client import DecisionClient, ServiceError
from simulation.world import World

T0 = pd.Timestamp("2024-03-20", tz="UTC").to_pydatetime()
SMALL_BATCH = 7


def dispatcher_on(world: World, home: Path, kit, handler=None, **options) -> Dispatcher:
    settings = kit.make_settings(home, **options)
    transport = httpx.MockTransport(handler or kit.fake_decide())
    client = DecisionClient("http://decisions.test", kit.token, transport=transport)
    dispatcher = Dispatcher(settings, client=client)
    load_tables(dispatcher.sessions, world.tables, dispatcher.workflow)
    return dispatcher


def plan(dispatcher: Dispatcher):
    return plan_due(dispatcher.sessions, dispatcher.client, dispatcher.settings,
                    dispatcher.workflow, T0, "test")  # fmt: skip


def reminders(dispatcher: Dispatcher) -> set[tuple[str, str, str | None]]:
    with dispatcher.sessions() as session:
        rows = session.execute(select(Reminder.reminder_id, Reminder.outcome, Reminder.action))
        return {tuple(row) for row in rows}


def test_small_batches_on_a_background_thread_plan_what_one_batch_plans(
    tiny_world: World, tmp_path: Path, kit
) -> None:
    threads: list[str] = []
    handler = kit.fake_decide()

    def recording(request: httpx.Request) -> httpx.Response:
        threads.append(threading.current_thread().name)
        return handler(request)

    small = dispatcher_on(tiny_world, tmp_path / "small", kit, recording,
                          decide_batch_size=SMALL_BATCH)  # fmt: skip
    whole = dispatcher_on(tiny_world, tmp_path / "whole", kit, decide_batch_size=5000)
    report, reference = plan(small), plan(whole)
    assert report.batches > 3 and threads
    assert all(name.startswith("decide") for name in threads), threads
    assert report.changed == 0 and report.invoices == reference.invoices
    assert reminders(small) == reminders(whole) and reminders(small)
    assert plan(small).invoices == 0
    small.close()
    whole.close()


def decided_now(dispatcher: Dispatcher, requests) -> Future:
    """The /decide call of a claim, made at once on this thread (the test changes the
    database between the call and the write)."""
    future: Future = Future()
    future.set_result(dispatcher.client.decide(requests, seed=1))
    return future


def test_an_invoice_changed_after_its_decide_call_gets_nothing_now(
    tiny_world: World, tmp_path: Path, kit
) -> None:
    dispatcher = dispatcher_on(tiny_world, tmp_path / "home", kit)
    settings, workflow = dispatcher.settings, dispatcher.workflow
    with dispatcher.sessions.begin() as session:
        claim = _claim(session, lambda requests: decided_now(dispatcher, requests), settings,
                       workflow, T0, exclude=[])  # fmt: skip
    assert claim is not None and claim.decisions is not None
    contacts = [d.invoice_id for d in claim.decisions.result() if d.channel is not None]
    paid, moved, disputed = contacts[:3]
    with dispatcher.sessions.begin() as session:
        earlier = session.scalar(select(Invoice.due_date).where(Invoice.invoice_id == moved))
        for invoice, values in (
            (paid, {"paid_at": T0 - timedelta(hours=1)}),
            (moved, {"due_date": earlier - timedelta(days=40)}),  # now at the final stage
            (disputed, {"dispute_opened_at": T0 - timedelta(hours=1)}),
        ):
            session.execute(update(Invoice).where(Invoice.invoice_id == invoice).values(**values))
    with dispatcher.sessions.begin() as session:
        kept = _still_due(session, claim, T0)
        report = _write_batch(session, claim, kept, settings, workflow, T0, "test")
    assert report.changed == 3 and report.invoices == len(claim.seen) - 3
    with dispatcher.sessions() as session:
        planned = dict(session.execute(select(Reminder.invoice_id, Reminder.outcome)).all())
        queued = set(session.scalars(select(Message.invoice_id)))
        still = session.scalar(select(Invoice.next_stage_at).where(Invoice.invoice_id == moved))
    assert {paid, moved, disputed} & (set(planned) | queued) == set()
    assert len(planned) == report.invoices and len(queued) == report.scheduled
    assert still is not None and pd.Timestamp(still) <= pd.Timestamp(T0)
    plan(dispatcher)  # later batches decide them again, as they are now
    with dispatcher.sessions() as session:
        planned = dict(session.execute(select(Reminder.invoice_id, Reminder.stage)).all())
        outcomes = dict(session.execute(select(Reminder.invoice_id, Reminder.outcome)).all())
        queued = set(session.scalars(select(Message.invoice_id)))
    assert planned[moved] == "overdue_30" and outcomes[moved] == "case_task"
    assert outcomes[disputed] == "no_contact" and paid not in planned
    assert {paid, moved, disputed} & queued == set()
    dispatcher.close()


def test_a_failing_decide_call_stops_the_pass_and_the_next_finishes_it_once(
    tiny_world: World, tmp_path: Path, kit
) -> None:
    handler, calls = kit.fake_decide(), []

    def failing_third(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(500, text="down") if len(calls) == 3 else handler(request)

    dispatcher = dispatcher_on(tiny_world, tmp_path / "failing", kit, failing_third,
                               decide_batch_size=SMALL_BATCH)  # fmt: skip
    with pytest.raises(ServiceError, match="500"):
        plan(dispatcher)
    written = len(reminders(dispatcher))  # the batches before the failing call's
    plan(dispatcher)
    reference = dispatcher_on(tiny_world, tmp_path / "reference", kit)
    plan(reference)
    assert 2 * SMALL_BATCH <= written < len(reminders(reference))
    assert {r[0] for r in reminders(dispatcher)} == {r[0] for r in reminders(reference)}
    dispatcher.close()
    reference.close()


def test_a_pass_sends_due_messages_while_decisions_are_on_their_way(
    tiny_world: World, tmp_path: Path, kit
) -> None:
    """With a slow service, messages of the batches already written go out while the next
    batch's decisions are awaited, instead of after the whole plan: every one exactly once."""
    handler = kit.fake_decide()
    sent_before_call: list[int] = []

    def slow(request: httpx.Request) -> httpx.Response:
        """Decisions to send at once (at the decision time), after a while; notes how many
        messages had gone out when each call started."""
        database = dispatcher.sessions.kw["bind"].url.database  # read as the service would:
        with closing(sqlite3.connect(database)) as reader:  # another connection, no lock
            query = "SELECT count(*) FROM messages WHERE status = 'sent'"
            sent_before_call.append(reader.execute(query).fetchone()[0])
        time.sleep(0.15)
        answer = handler(request)
        if request.url.path != "/decide":
            return answer
        body = answer.json()
        asked = json.loads(request.content)["requests"]
        for decision, asked_about in zip(body["decisions"], asked, strict=True):
            if decision["channel"] is not None:
                decision["send_at"] = decision["send_at_local"] = asked_about["now"]
        return httpx.Response(200, json=body)

    dispatcher = dispatcher_on(tiny_world, tmp_path / "home", kit, slow,
                               decide_batch_size=SMALL_BATCH, send_batch_size=3)  # fmt: skip
    report = dispatcher.run_once(T0 + timedelta(hours=12))  # midday: outside quiet hours
    planned, sent = report.planned, report.sent
    assert planned.batches > 3 and planned.scheduled > SMALL_BATCH
    assert planned.waiting_work_seconds > 0
    assert sent_before_call[-1] > 0, sent_before_call  # sent while planning was still going on
    with dispatcher.sessions() as session:
        statuses = session.scalars(select(Message.status)).all()
        assert len(statuses) == planned.scheduled
        keys = session.scalars(select(Message.message_id)).all()
    assert len(set(keys)) == len(keys)
    assert sent.sent == statuses.count("sent") == planned.scheduled - sent.blocked
    dispatcher.close()
