"""Planning: for every invoice whose next stage has started, decide and write the outbox.

Invoices are taken in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes
share the work; SQLite's immediate transactions serialise them). The ``/decide`` call about a
batch (through :class:`serving.client.DecisionClient`, over HTTP) runs on a background thread
while the main thread writes the batch before it: the transaction that writes batch *i* first
claims batch *i + 1* and sends its requests, then waits for batch *i*'s decisions. Writing a
batch is one transaction: its invoices are locked again and kept only if still due, not taken
by another process and at the stage they were decided for (the others are left for a later
batch); final stages open a case task; every contact is re-checked against the guardrails the
dispatcher sees locally, with what it sees now; and each (invoice, stage) gets its reminder row
and, when a message is due, its outbox row keyed by the idempotency key. A crash rolls the
batch back; the unique (invoice, stage) keys make a second plan of the same stage impossible.
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
    CaseTask,
    Invoice,
    Reminder,
)
from paynudge.config import Settings
from serving.client import DecisionClient
from serving.schemas import Decision, DecisionRequest

KEY_NAMESPACE = uuid.UUID("5b0d7c52-6f0e-4d55-9a53-2f1c3f0e7a11")
"""Namespace of the idempotency keys (uuid5 of ``invoice_id/stage``): stable across processes."""

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
    """Time the planning thread was blocked waiting for decisions (the calls themselves run
    on a background thread, while the batch before is written)."""
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
    """A batch taken for planning: its invoices, the keys of the stage they were claimed at and
    the /decide call about those to remind (``asked``, in request order), in flight."""

    ids: list[str]
    keys: list[str]
    asked: pd.Index
    decisions: Future[list[Decision]] | None


def plan_due(
    sessions: sessionmaker[Session],
    client: DecisionClient,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    process: str,
) -> PlanReport:
    """Plan every invoice whose next stage has started by ``now`` (batch after batch, each
    batch's /decide call overlapping the writing of the batch before)."""
    total, started = PlanReport(), time.perf_counter()
    seed = settings.dispatcher.decision_seed
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decide") as caller:

        def ask(requests: Sequence[DecisionRequest]) -> Future[list[Decision]]:
            return caller.submit(client.decide, requests, seed=seed)

        with sessions.begin() as session:
            claim = _claim(session, ask, settings, workflow, now, exclude=[])
        while claim is not None:
            with sessions.begin() as session:
                ids = _still_due(session, claim, now)
                following = _claim(session, ask, settings, workflow, now, exclude=claim.ids)
                total.add(_write_batch(session, claim, ids, settings, workflow, now, process))
            claim = following
    total.seconds = time.perf_counter() - started
    return total


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return Invoice.next_stage_at <= now, or_(Invoice.paid_at.is_(None), Invoice.paid_at > now)


def _take_invoices(
    session: Session, now: datetime, limit: int, exclude: Sequence[str]
) -> list[str]:
    query = (
        select(Invoice.invoice_id)
        .where(*_due(now), Invoice.invoice_id.not_in(list(exclude)))
        .order_by(Invoice.next_stage_at, Invoice.invoice_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Invoice)
    )
    return list(session.scalars(query))


def _still_due(session: Session, claim: _Claim, now: datetime) -> list[str]:
    """The claimed invoices still due at ``now`` that no other process holds, locked until the
    batch is written (in the claimed order)."""
    query = (
        select(Invoice.invoice_id)
        .where(Invoice.invoice_id.in_(claim.ids), *_due(now))
        .with_for_update(skip_locked=True, of=Invoice)
    )
    still = set(session.scalars(query))
    return [invoice for invoice in claim.ids if invoice in still]


def _claim(
    session: Session,
    ask: Ask,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    exclude: Sequence[str],
) -> _Claim | None:
    """Take the next batch (none left: None) and send /decide its reminders' requests."""
    ids = _take_invoices(session, now, settings.dispatcher.decide_batch_size, exclude)
    if not ids:
        return None
    staged = _stage(session, ids, workflow, now)
    rows = staged.frame[staged.remind].reset_index(drop=True)
    decisions = None
    if not rows.empty:
        send_before = staged.send_before[staged.remind]
        decisions = ask(decision_requests(session, rows, send_before, settings, now))
    return _Claim(ids, staged.frame["key"].tolist(), pd.Index(rows["invoice_id"]), decisions)


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
    ids: list[str],
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    process: str,
) -> PlanReport:
    """Write the claimed batch's still-due invoices (``ids``, locked): case tasks, reminders
    with their decisions, outbox rows, and each invoice's next stage."""
    staged = _stage(session, ids, workflow, now) if ids else None
    if staged is not None:
        same = staged.frame["key"].isin(claim.keys).to_numpy()
        if not same.all():  # at another stage than decided for: left for a later batch
            ids = [invoice for invoice, kept in zip(ids, same, strict=True) if kept]
            staged = _stage(session, ids, workflow, now) if ids else None
    report = PlanReport(invoices=len(ids), changed=len(claim.ids) - len(ids), batches=1)
    if staged is None:
        return report
    cases = staged.frame[staged.fresh & (staged.actions == "case_task")]
    _open_cases(session, cases, now, process)
    report.case_tasks = len(cases)
    if staged.remind.any():
        rows = staged.frame[staged.remind].reset_index(drop=True)
        decisions = _decisions(claim, rows["invoice_id"], report)
        outcome = write_reminders(session, rows, decisions, staged.send_before[staged.remind],
                                  settings, now, process)  # fmt: skip
        report.scheduled, report.no_contact, report.blocked = outcome
    _advance(session, ids, staged.starts, staged.stage_index, workflow)
    return report


def _decisions(claim: _Claim, invoices: pd.Series, report: PlanReport) -> list[Decision]:
    """The claim's decisions about ``invoices`` (waiting for them: the time goes to
    ``report.decide_seconds``). Every invoice to remind now was asked about: it is at the
    stage it was claimed at, and a stage once planned stays planned."""
    position = claim.asked.get_indexer(invoices)
    if claim.decisions is None or (position < 0).any():
        raise RuntimeError("planning: an invoice to remind was not sent to /decide")
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
