"""On PostgreSQL several dispatcher processes share the work (FOR UPDATE SKIP LOCKED).

Runs against the local server (127.0.0.1:5432, database ``test``, user ``postgres``) in a schema
of its own, dropped afterwards; skipped with the reason when the server cannot be reached.
Three processes start each pass at the same moment on the same invoices: every (invoice, stage)
is planned once, every message sent once (one ``sent`` entry in the audit log each), and the work
is spread over the processes. Decisions and sends are slowed a little, as real ones are, so that
one process cannot claim every batch before the others reach the outbox.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy import select

from dispatcher.channels.base import Envelope, Transport
from dispatcher.cycle import Dispatcher
from dispatcher.loading import load_tables
from dispatcher.state import AuditEntry, Message, Reminder
from serving.client import DecisionClient
from simulation.world import World

PG = "host=127.0.0.1 port=5432 dbname=test user=postgres connect_timeout=3"
T0 = pd.Timestamp("2024-03-20", tz="UTC").to_pydatetime()
T1 = pd.Timestamp("2024-03-22", tz="UTC").to_pydatetime()
PROCESSES = 3
DECIDE_PAUSE_SECONDS = 0.02
SEND_PAUSE_SECONDS = 0.02


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg")
    try:
        connection = psycopg.connect(PG, autocommit=True)
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432/test: {str(error).strip()[:200]}")
    schema = f"dispatch_{uuid.uuid4().hex[:12]}"
    connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield (
            f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        )
    finally:
        connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        connection.close()


class _SlowTransport:
    """A transport that takes a moment per message, as a provider's API does."""

    def __init__(self, inner: Transport) -> None:
        self.inner, self.name, self.idempotent = inner, inner.name, inner.idempotent

    def send(self, envelope: Envelope) -> str:
        time.sleep(SEND_PAUSE_SECONDS)
        return self.inner.send(envelope)

    def close(self) -> None:
        self.inner.close()


def _worker(settings, kit, barrier, results) -> None:
    handler = kit.fake_decide()

    def slow(request: httpx.Request) -> httpx.Response:
        time.sleep(DECIDE_PAUSE_SECONDS)  # let the processes interleave
        return handler(request)

    client = DecisionClient("http://decisions.test", kit.token, transport=httpx.MockTransport(slow))
    dispatcher = Dispatcher(settings, client=client)
    slowed = {id(t): _SlowTransport(t) for t in dispatcher.relay.transports.values()}
    dispatcher.relay = replace(dispatcher.relay, transports={
        channel: slowed[id(t)] for channel, t in dispatcher.relay.transports.items()})  # fmt: skip
    passes = []
    for now in (T0, T1):
        barrier.wait()  # every pass starts together: the first one done cannot take it all
        passes.append(dispatcher.run_once(now))
    first, second = passes
    planned = first.planned.invoices + second.planned.invoices
    results.put((dispatcher.relay.process, planned, first.sent.sent + second.sent.sent))
    dispatcher.close()


def test_processes_share_the_work_without_doubles(
    pg_url: str, tiny_world: World, tmp_path: Path, kit
) -> None:
    settings = kit.make_settings(tmp_path / "home", decide_batch_size=20, send_batch_size=2)
    settings = settings.model_copy(update={"database_url": pg_url})
    setup = Dispatcher(settings, client=DecisionClient("http://unused.test"))
    load_tables(setup.sessions, tiny_world.tables, setup.workflow)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(PROCESSES), context.Queue()
    workers = [context.Process(target=_worker, args=(settings, kit, barrier, results))
               for _ in range(PROCESSES)]  # fmt: skip
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
        assert worker.exitcode == 0
    reports = [results.get(timeout=5) for _ in workers]
    with setup.sessions() as session:
        messages = session.scalars(select(Message.status)).all()
        sent_events = pd.DataFrame(
            session.execute(select(AuditEntry.entity_id, AuditEntry.process).where(
                AuditEntry.entity == "message", AuditEntry.event == "sent")).all(),
            columns=["message_id", "process"],
        )  # fmt: skip
        planners = session.scalars(select(AuditEntry.process).where(
            AuditEntry.entity == "reminder").distinct()).all()  # fmt: skip
        reminders = session.scalars(select(Reminder.reminder_id)).all()
    assert messages and set(messages) <= {"sent", "blocked", "pending"}
    assert messages.count("sent") == len(sent_events) == sum(r[2] for r in reports)
    assert not sent_events["message_id"].duplicated().any()
    assert sent_events["process"].nunique() >= 2, "sending was not shared"
    assert len(planners) >= 2, "planning was not shared"
    assert sum(r[1] for r in reports) == len(reminders), "an invoice was planned twice"
    setup.close()
