"""Planning: for every invoice whose next stage has started, decide and write the outbox.

Invoices are taken in batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so several processes
share the work; SQLite's immediate transactions serialise them). For each batch, in one
transaction: final stages open a case task; the other invoices go to ``/decide`` in one call
(through :class:`serving.client.DecisionClient`, over HTTP), every contact is re-checked against
the guardrails the dispatcher sees locally, and each (invoice, stage) gets its reminder row and,
when a message is due, its outbox row keyed by the idempotency key. A crash rolls the whole
batch back; the unique (invoice, stage) keys make a second plan of the same stage impossible.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import insert, or_, select, update
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

KEY_NAMESPACE = uuid.UUID("5b0d7c52-6f0e-4d55-9a53-2f1c3f0e7a11")
"""Namespace of the idempotency keys (uuid5 of ``invoice_id/stage``): stable across processes."""


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
    seconds: float = 0.0
    """Wall time of the planning pass, waiting for /decide included."""
    decide_seconds: float = 0.0
    batches: int = field(default=0)

    def add(self, other: PlanReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def plan_due(
    sessions: sessionmaker[Session],
    client: DecisionClient,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    process: str,
) -> PlanReport:
    """Plan every invoice whose next stage has started by ``now`` (batch after batch)."""
    total, started = PlanReport(), time.perf_counter()
    while True:
        with sessions.begin() as session:
            ids = _take_invoices(session, now, settings.dispatcher.decide_batch_size)
            if not ids:
                total.seconds = time.perf_counter() - started
                return total
            report = _plan_batch(session, ids, client, settings, workflow, now, process)
        total.add(report)


def _take_invoices(session: Session, now: datetime, limit: int) -> list[str]:
    query = (
        select(Invoice.invoice_id)
        .where(Invoice.next_stage_at <= now, or_(Invoice.paid_at.is_(None), Invoice.paid_at > now))
        .order_by(Invoice.next_stage_at, Invoice.invoice_id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=Invoice)
    )
    return list(session.scalars(query))


def _plan_batch(
    session: Session,
    ids: list[str],
    client: DecisionClient,
    settings: Settings,
    workflow: Workflow,
    now: datetime,
    process: str,
) -> PlanReport:
    frame = situation(session, ids)
    zones = frame["timezone"].to_numpy(dtype=object)
    starts = stage_starts(frame["due_date"].tolist(), zones, workflow)
    stage_index = current_stage(starts, pd.Timestamp(now))
    frame["stage"] = np.array(workflow.names, dtype=object)[stage_index]
    frame["key"] = [idempotency_key(i, s) for i, s in zip(ids, frame["stage"], strict=True)]
    done = set(session.scalars(select(Reminder.reminder_id).where(Reminder.reminder_id.in_(
        frame["key"].tolist()))))  # fmt: skip
    fresh = ~frame["key"].isin(done).to_numpy()
    actions = np.array([stage.action for stage in workflow.stages], dtype=object)[stage_index]
    report = PlanReport(invoices=len(ids), batches=1)
    cases = frame[fresh & (actions == "case_task")]
    _open_cases(session, cases, now, process)
    report.case_tasks = len(cases)
    remind = fresh & (actions == "remind")
    if remind.any():
        following = np.where(stage_index + 1 < len(workflow.stages), stage_index + 1, -1)
        stage_end = np.where(following >= 0, starts[np.arange(len(frame)), following],
                             np.iinfo(np.int64).max)  # fmt: skip
        latest = pd.Timestamp(now) + pd.Timedelta(hours=workflow.max_send_delay_hours)
        send_before = pd.DatetimeIndex(np.minimum(stage_end[remind], latest.value), tz="UTC")
        rows = frame[remind].reset_index(drop=True)
        _plan_reminders(session, rows, send_before, client, settings, now, process, report)
    _advance(session, ids, starts, stage_index, workflow)
    return report


def _plan_reminders(
    session: Session,
    frame: pd.DataFrame,
    send_before: pd.DatetimeIndex,
    client: DecisionClient,
    settings: Settings,
    now: datetime,
    process: str,
    report: PlanReport,
) -> None:
    """Ask /decide about the rows (one call), re-check and write the reminders and outbox."""
    requests = decision_requests(session, frame, send_before, settings, now)
    started = time.perf_counter()
    decisions = client.decide(requests, seed=settings.dispatcher.decision_seed)
    report.decide_seconds = time.perf_counter() - started
    outcome = write_reminders(session, frame, decisions, send_before, settings, now, process)
    report.scheduled, report.no_contact, report.blocked = outcome


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
