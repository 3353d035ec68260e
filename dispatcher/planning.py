"""Planning: for every invoice whose next stage has started, decide and write the outbox.

Invoices are taken in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes
share the work; SQLite's immediate transactions serialise them). The ``/decide`` call about a
batch (through :class:`serving.client.DecisionClient`, over HTTP) runs on a background thread
while the main thread writes the batch before it: a short transaction claims batch *i + 1* and
sends its requests; then, holding no lock, the main thread waits for batch *i*'s decisions
(doing the caller's other work meanwhile: the dispatcher sends due messages); then it writes
batch *i*. Writing a batch is one transaction: its invoices are locked again and kept only if
still due, not held by another process and unchanged since the claim (:data:`WATCHED`; the
others are left for a later batch, which decides them again); final stages open a case task;
every contact is re-checked against the guardrails the dispatcher sees locally (suppressions
and contact counts read again); and each (invoice, stage) gets its reminder row and, when a
message is due, its outbox row keyed by the idempotency key. A crash rolls the batch back; the
unique (invoice, stage) keys make a second plan of the same stage impossible.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import audit
from dispatcher.decision_requests import decision_requests
from dispatcher.recheck import situation
from dispatcher.reminder_rows import write_reminders
from dispatcher.stages import Workflow, current_stage, stage_starts
from dispatcher.state import (
    CONSENT_COLUMNS,
    OPT_OUT_COLUMNS,
    CaseTask,
    Customer,
    Invoice,
    Reminder,
)
from paynudge.config import Settings
from serving.client import DecisionClient
from serving.schemas import Decision, DecisionRequest

KEY_NAMESPACE = uuid.UUID("5b0d7c52-6f0e-4d55-9a53-2f1c3f0e7a11")
"""Namespace of the idempotency keys (uuid5 of ``invoice_id/stage``): stable across processes."""

WATCHED = (
    Invoice.customer_id, Invoice.issue_date, Invoice.due_date, Invoice.amount, Invoice.paid_at,
    Invoice.dispute_opened_at, Invoice.dispute_resolved_at, Customer.timezone, Customer.language,
    *(getattr(Customer, column) for column in (*CONSENT_COLUMNS, *OPT_OUT_COLUMNS)),
)  # fmt: skip
"""What an invoice's stage, its /decide request and the local re-check read: an invoice whose
values change between its claim and the write of its batch is left for a later batch."""

Ask = Callable[[Sequence[DecisionRequest]], Future[list[Decision]]]
"""Sends /decide requests on the background thread; the decisions arrive in the future."""


def idempotency_key(invoice_id: str, stage: str) -> str:
    return str(uuid.uuid5(KEY_NAMESPACE, f"{invoice_id}/{stage}"))


@dataclass
class PlanReport:
    """What one planning pass did."""

    invoices: int = 0
    scheduled: int = 0
    no_contact: int = 0
    blocked: int = 0
    case_tasks: int = 0
    changed: int = 0
    """Invoices claimed but left for a later batch: paid, taken by another process or at
    another stage by the time their batch was written."""
    seconds: float = 0.0
    """Wall time of the planning pass, waiting for /decide included."""
    decide_seconds: float = 0.0
    """Time the planning thread was blocked waiting for decisions."""
    decide_call_seconds: float = 0.0
    """Time the /decide calls took on the background thread, overlapping the writes."""
    waiting_work_seconds: float = 0.0
    """Time spent on the caller's work (``while_waiting``: sending) while decisions were on
    their way; part of ``seconds``, not of ``decide_seconds``."""
    batches: int = field(default=0)

    def add(self, other: PlanReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class _Staged:
    """Invoices at their current stage: :func:`situation` rows with ``stage`` and ``key``, the
    stage starts and index, what the stage does, whether it is still to be planned, and the
    instant its reminder must be sent before."""

    frame: pd.DataFrame
    starts: np.ndarray
    stage_index: np.ndarray
    actions: np.ndarray
    fresh: np.ndarray
    send_before: pd.DatetimeIndex

    @property
    def remind(self) -> np.ndarray:
        return self.fresh & (self.actions == "remind")


@dataclass(frozen=True)
class _Claim:
    """A batch taken for planning: per invoice the :data:`WATCHED` values it was staged and
    decided with (in planning order), its stage, and the /decide call about the invoices to
    remind (in flight)."""

    seen: dict[str, tuple]
    staged: _Staged
    decisions: Future[list[Decision]] | None


def plan_due(
    sessions: sessionmaker[Session],
    client: DecisionClient,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    process: str,
    while_waiting: Callable[[], bool] = lambda: False,
) -> PlanReport:
    """Plan every invoice whose next stage has started by ``now`` (batch after batch, each
    batch's /decide call overlapping the writing of the batch before).

    ``while_waiting`` is called, outside any transaction, while a batch's decisions are still
    on their way, again and again as long as it returns True (it did some work): the dispatcher
    sends due messages there instead of idling."""
    total, started = PlanReport(), time.perf_counter()
    seed = settings.dispatcher.decision_seed
    calls: list[float] = []  # each /decide call's duration (appended on the caller's thread)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decide") as caller:

        def decide(requests: Sequence[DecisionRequest]) -> list[Decision]:
            called = time.perf_counter()
            try:
                return client.decide(requests, seed=seed)
            finally:
                calls.append(time.perf_counter() - called)

        def ask(requests: Sequence[DecisionRequest]) -> Future[list[Decision]]:
            return caller.submit(decide, requests)

        with sessions.begin() as session:
            claim = _claim(session, ask, settings, workflow, now, exclude=[])
        while claim is not None:
            with sessions.begin() as session:
                following = _claim(session, ask, settings, workflow, now, exclude=list(claim.seen))
            total.waiting_work_seconds += _await(claim, while_waiting)
            with sessions.begin() as session:
                kept = _still_due(session, claim, now)
                total.add(_write_batch(session, claim, kept, settings, workflow, now, process))
            claim = following
    total.decide_call_seconds = sum(calls)
    total.seconds = time.perf_counter() - started
    return total


def _await(claim: _Claim, while_waiting: Callable[[], bool]) -> float:
    """Do other work while the claim's decisions are on their way (no lock is held here); the
    seconds it took."""
    started = time.perf_counter()
    while claim.decisions is not None and not claim.decisions.done() and while_waiting():
        pass
    return time.perf_counter() - started


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Invoice.next_stage_at <= now, or_(Invoice.paid_at.is_(None), Invoice.paid_at > now)


def _take_invoices(
    session: Session, now: datetime, limit: int, exclude: Sequence[str]
) -> dict[str, tuple]:
    """The next due invoices not in ``exclude`` (nor held by another process), with their
    :data:`WATCHED` values."""
    query = (
        select(Invoice.invoice_id, *WATCHED)
        .join(Customer, Customer.customer_id == Invoice.customer_id)
        .where(*_due(now), Invoice.invoice_id.not_in(list(exclude)))
        .order_by(Invoice.next_stage_at, Invoice.invoice_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Invoice)
    )
    return {row[0]: tuple(row[1:]) for row in session.execute(query)}


def _still_due(session: Session, claim: _Claim, now: datetime) -> np.ndarray:
    """Per claimed invoice: still due at ``now``, not held by another process and unchanged
    since the claim; those are locked until the batch is written."""
    query = (
        select(Invoice.invoice_id, *WATCHED)
        .join(Customer, Customer.customer_id == Invoice.customer_id)
        .where(Invoice.invoice_id.in_(list(claim.seen)), *_due(now))
        .with_for_update(skip_locked=True, of=Invoice)
    )
    current = {row[0]: tuple(row[1:]) for row in session.execute(query)}
    return np.array([current.get(i) == seen for i, seen in claim.seen.items()], dtype=bool)


def _claim(
    session: Session,
    ask: Ask,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    exclude: Sequence[str],
) -> _Claim | None:
    """Take the next batch (none left: None) and send /decide its reminders' requests."""
    seen = _take_invoices(session, now, settings.dispatcher.decide_batch_size, exclude)
    if not seen:
        return None
    staged = _stage(session, list(seen), workflow, now)
    decisions = None
    if staged.remind.any():
        rows = staged.frame[staged.remind].reset_index(drop=True)
        send_before = staged.send_before[staged.remind]
        decisions = ask(decision_requests(session, rows, send_before, settings, now))
    return _Claim(seen, staged, decisions)


def _stage(session: Session, ids: list[str], workflow: Workflow, now: datetime) -> _Staged:
    """The invoices' current stage at ``now`` by their situation in ``session``."""
    frame = situation(session, ids)
    zones = frame["timezone"].to_numpy(dtype=object)
    starts = stage_starts(frame["due_date"].tolist(), zones, workflow)
    stage_index = current_stage(starts, pd.Timestamp(now))
    frame["stage"] = np.array(workflow.names, dtype=object)[stage_index]
    frame["key"] = [idempotency_key(i, s) for i, s in zip(ids, frame["stage"], strict=True)]
    done = set(session.scalars(select(Reminder.reminder_id).where(Reminder.reminder_id.in_(
        frame["key"].tolist()))))  # fmt: skip
    actions = np.array([stage.action for stage in workflow.stages], dtype=object)[stage_index]
    following = np.where(stage_index + 1 < len(workflow.stages), stage_index + 1, -1)
    stage_end = np.where(following >= 0, starts[np.arange(len(frame)), following],
                         np.iinfo(np.int64).max)  # fmt: skip
    latest = pd.Timestamp(now) + pd.Timedelta(hours=workflow.max_send_delay_hours)
    send_before = pd.DatetimeIndex(np.minimum(stage_end, latest.value), tz="UTC")
    fresh = ~frame["key"].isin(done).to_numpy()
    return _Staged(frame, starts, stage_index, actions, fresh, send_before)


def _write_batch(
    session: Session,
    claim: _Claim,
    kept: np.ndarray,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    process: str,
) -> PlanReport:
    """Write the claimed invoices still due and unchanged (``kept``, locked): case tasks,
    reminders with their decisions, outbox rows, and each invoice's next stage. The others
    are left as they are, for a later batch."""
    staged = claim.staged
    keys = staged.frame["key"]
    done = set(session.scalars(select(Reminder.reminder_id).where(Reminder.reminder_id.in_(
        keys[kept].tolist()))))  # fmt: skip
    fresh = kept & staged.fresh & ~keys.isin(done).to_numpy()
    report = PlanReport(invoices=int(kept.sum()), changed=int((~kept).sum()), batches=1)
    cases = staged.frame[fresh & (staged.actions == "case_task")]
    _open_cases(session, cases, now, process)
    report.case_tasks = len(cases)
    remind = fresh & (staged.actions == "remind")
    if remind.any():
        rows = staged.frame[remind].reset_index(drop=True)
        decisions = _decisions(claim, remind, report)
        outcome = write_reminders(session, rows, decisions, staged.send_before[remind],
                                  settings, now, process)  # fmt: skip
        report.scheduled, report.no_contact, report.blocked = outcome
    if kept.any():
        ids = staged.frame["invoice_id"][kept].tolist()
        _advance(session, ids, staged.starts[kept], staged.stage_index[kept], workflow)
    return report


def _decisions(claim: _Claim, remind: np.ndarray, report: PlanReport) -> list[Decision]:
    """The claim's decisions about the rows ``remind`` (a subset of those asked about: a row
    still to plan now was still to plan at the claim), waiting for them; the time goes to
    ``report.decide_seconds``."""
    assert claim.decisions is not None
    position = (np.cumsum(claim.staged.remind) - 1)[remind]
    started = time.perf_counter()
    answers = claim.decisions.result()
    report.decide_seconds = time.perf_counter() - started
    return [answers[i] for i in position]


def _open_cases(session: Session, cases: pd.DataFrame, now: datetime, process: str) -> None:
    if cases.empty:
        return
    keys, stages = cases["key"].tolist(), cases["stage"].tolist()
    invoices, customers = cases["invoice_id"].tolist(), cases["customer_id"].tolist()
    session.execute(insert(Reminder.__table__), [
        {"reminder_id": key, "invoice_id": invoice, "customer_id": customer, "stage": stage,
         "planned_at": now, "outcome": "case_task", "reasons": ""}
        for key, invoice, customer, stage in zip(keys, invoices, customers, stages, strict=True)
    ])  # fmt: skip
    session.execute(insert(CaseTask.__table__), [
        {"task_id": key, "invoice_id": invoice, "customer_id": customer, "stage": stage,
         "reason": f"unpaid at the final stage ({stage})", "status": "open", "opened_at": now}
        for key, invoice, customer, stage in zip(keys, invoices, customers, stages, strict=True)
    ])  # fmt: skip
    audit.record(session, now, process, "case_task", keys, "opened")


def _advance(
    session: Session, ids: list[str], starts: np.ndarray, index: np.ndarray, workflow: Workflow
) -> None:
    """Point each invoice at the stage after the one just planned (None after the last): one
    UPDATE per distinct next (stage, start), which a batch has few of (zones x stages)."""
    following = index + 1
    last = following >= len(workflow.stages)
    column = np.minimum(following, len(workflow.stages) - 1)
    next_at = np.where(last, np.iinfo(np.int64).min, starts[np.arange(len(ids)), column])
    groups = pd.Series(ids).groupby([np.where(last, -1, column), next_at], sort=False)
    for (k, at), members in groups:
        end = k < 0
        session.execute(
            update(Invoice.__table__)
            .where(Invoice.__table__.c.invoice_id.in_(members.tolist()))
            .values(next_stage=None if end else workflow.names[k],
                    next_stage_at=None if end else pd.Timestamp(at, tz="UTC").to_pydatetime())
        )  # fmt: skip
