"""One dispatcher pass (recover, plan, send) and the loop of ``paynudge dispatch run``.

Every pass is safe to kill at any moment and to run in several processes at once (on
PostgreSQL): planning commits a batch at a time, sending claims messages under leases, and the
next pass of any process recovers what a dead one left behind (see :mod:`dispatcher.outbox`).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.channels.transports import build_transports
from dispatcher.database import open_database
from dispatcher.feedback import FeedbackReport, post_feedback
from dispatcher.links import LinkMaker
from dispatcher.outbox import Relay, SendReport, recover, sending
from dispatcher.planning import PlanReport, plan_due
from dispatcher.rendering import Renderer
from dispatcher.responses import review_promises
from dispatcher.stages import load_workflow
from dispatcher.state import CaseTask, Invoice, Message, Reminder
from dispatcher.tasks import open_silent_tasks
from paynudge.config import Settings
from serving.client import DecisionClient


@dataclass(frozen=True)
class LoopReport:
    """Closing the loop: promises reviewed, no-response tasks opened, outcomes posted."""

    promises_kept: int
    promises_broken: int
    silent_tasks: int
    feedback: FeedbackReport


@dataclass(frozen=True)
class CycleReport:
    planned: PlanReport
    sent: SendReport
    recovered: int
    seconds: float
    loop: LoopReport | None = None


def process_name() -> str:
    """A name unique to this process (host, pid and a random part: pids are reused)."""
    return f"{socket.gethostname()[:24]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    """The dispatcher of one process: database, decision client, transports, renderer."""

    def __init__(
        self,
        settings: Settings,
        client: DecisionClient | None = None,
        http_transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.sessions: sessionmaker[Session] = open_database(settings)
        self.workflow = load_workflow(settings)
        self.client = client or DecisionClient.from_settings(settings)
        options = settings.dispatcher
        self.relay = Relay(
            sessions=self.sessions,
            transports=build_transports(settings, http_transport),
            renderer=Renderer(options.templates_dir, options.sms_max_segments),
            links=LinkMaker.from_settings(settings),
            settings=settings,
            workflow=self.workflow,
            process=process_name(),
        )

    def run_once(self, now: datetime | None = None, *, close: bool = True) -> CycleReport:
        """Recover, plan everything due by ``now``, send what is due, then close the loop.

        ``now`` None: the wall clock. Given: a replay up to that instant (decisions at ``now``,
        each message sent at its own scheduled instant). ``close`` False leaves
        :meth:`close_loop` to the caller (a simulation applies the world's answers first)."""
        started = time.perf_counter()
        recovered = recover(self.relay)
        decided_at = now or datetime.now(UTC)
        with sending(self.relay, now) as sender:  # while waiting for decisions, then the rest
            planned = plan_due(self.sessions, self.client, self.settings, self.workflow,
                               decided_at, self.relay.process, sender.step)  # fmt: skip
        sent = sender.total
        loop = self.close_loop(decided_at) if close else None
        return CycleReport(planned, sent, recovered, time.perf_counter() - started, loop)

    def close_loop(self, now: datetime) -> LoopReport:
        """Record the promises whose pause ended (kept or broken: an unpaid invoice's sequence
        resumes on its own), open a case task for invoices without any response after
        ``no_response_reminders`` reminders, and post unposted outcomes to ``/feedback``.

        Feedback never fails the pass: when the service cannot be reached the outcomes stay in
        their outbox (with the error) and the next pass posts them."""
        options = self.settings.dispatcher
        with self.sessions.begin() as session:
            kept, broken = review_promises(session, now)
            tasks = open_silent_tasks(session, now, options.no_response_reminders,
                                      self.relay.process)  # fmt: skip
        feedback = post_feedback(self.sessions, self.client, options.feedback_batch_size, now)
        return LoopReport(kept, broken, len(tasks), feedback)

    def run_forever(self, report: Callable[[CycleReport], None] | None = None) -> None:
        """Pass after pass, pausing ``poll_seconds`` between them (stop with Ctrl-C)."""
        while True:
            result = self.run_once()
            if report:
                report(result)
            time.sleep(self.settings.dispatcher.poll_seconds)

    def close(self) -> None:
        self.client.close()
        for transport in set(self.relay.transports.values()):
            transport.close()
        self.sessions.kw["bind"].dispose()


def status_counts(sessions: sessionmaker[Session]) -> dict[str, dict[str, int]]:
    """Messages by status, reminders by outcome, case tasks by status, invoices open/settled."""
    with sessions() as session:

        def grouped(column: Any) -> dict[str, int]:
            rows = session.execute(select(column, func.count()).group_by(column)).all()
            return {str(key): int(count) for key, count in rows}

        settled = session.scalar(select(func.count()).where(Invoice.paid_at.is_not(None)))
        total = session.scalar(select(func.count()).select_from(Invoice))
        return {
            "messages": grouped(Message.status),
            "reminders": grouped(Reminder.outcome),
            "case_tasks": grouped(CaseTask.status),
            "invoices": {"loaded": int(total or 0), "settled": int(settled or 0)},
        }
