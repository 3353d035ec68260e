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
from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import audit
from dispatcher.hardship import decision_overrides
from dispatcher.recheck import broken_rules, contact_counts, situation, suppressed
from dispatcher.rendering import template_name
from dispatcher.stages import Workflow, current_stage, stage_starts
from dispatcher.state import (
    CONSENT_COLUMNS,
    OPT_OUT_COLUMNS,
    Base,
    CaseTask,
    Invoice,
    Message,
    Reminder,
)
from paynudge.config import Settings
from paynudge.vocabulary import CHANNELS
from serving.client import DecisionClient
from serving.schemas import Decision, DecisionRequest

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
    total = PlanReport()
    while True:
        with sessions.begin() as session:
            ids = _take_invoices(session, now, settings.dispatcher.decide_batch_size)
            if not ids:
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
    names = np.array(workflow.names, dtype=object)
    frame["stage"] = names[stage_index]
    frame["key"] = [idempotency_key(i, s) for i, s in zip(ids, frame["stage"], strict=True)]
    done = set(session.scalars(select(Reminder.reminder_id).where(Reminder.reminder_id.in_(
        frame["key"].tolist()))))  # fmt: skip
    fresh = ~frame["key"].isin(done).to_numpy()
    actions = np.array([stage.action for stage in workflow.stages], dtype=object)[stage_index]
    report = PlanReport(invoices=len(ids), batches=1)
    cases = frame[fresh & (actions == "case_task")]
    _open_cases(session, cases, now, process)
    report.case_tasks = len(cases)
    remind = frame[fresh & (actions == "remind")].reset_index(drop=True)
    if len(remind):
        following = np.where(stage_index + 1 < len(workflow.stages), stage_index + 1, -1)
        stage_end = np.where(following >= 0, starts[np.arange(len(frame)), following], np.iinfo(
            np.int64).max)[fresh & (actions == "remind")]  # fmt: skip
        latest = pd.Timestamp(now) + pd.Timedelta(hours=workflow.max_send_delay_hours)
        send_before = pd.DatetimeIndex(np.minimum(stage_end, latest.value), tz="UTC")
        started = time.perf_counter()
        decisions = _decide(session, client, remind, send_before, settings, now)
        report.decide_seconds = time.perf_counter() - started
        outcome = _write_reminders(session, remind, decisions, send_before, settings, now, process)
        report.scheduled, report.no_contact, report.blocked = outcome
    _advance(session, ids, starts, stage_index, workflow)
    return report


def _decide(
    session: Session,
    client: DecisionClient,
    frame: pd.DataFrame,
    send_before: pd.DatetimeIndex,
    settings: Settings,
    now: datetime,
) -> list[Decision]:
    at = pd.DatetimeIndex([pd.Timestamp(now)] * len(frame))
    counts = contact_counts(session, frame, at)
    suppressions = suppressed(session, frame["customer_id"].unique())
    opted_out = frame[list(OPT_OUT_COLUMNS)].to_numpy(dtype=bool).copy()
    if not suppressions.empty:
        pairs = set(zip(suppressions["customer_id"], suppressions["channel"], strict=True))
        for j, channel in enumerate(CHANNELS):
            opted_out[:, j] |= [(c, channel) in pairs for c in frame["customer_id"]]
    consent = frame[list(CONSENT_COLUMNS)].to_numpy(dtype=bool)
    opened = pd.to_datetime(frame["dispute_opened_at"], utc=True)
    resolved = pd.to_datetime(frame["dispute_resolved_at"], utc=True)
    dispute = ((opened <= now) & ~(resolved <= now)).to_numpy()
    records = frame.to_dict("records")
    replied = decision_overrides(session, frame["customer_id"].tolist(), now, settings)
    requests = [
        DecisionRequest(
            customer_id=row["customer_id"], invoice_id=row["invoice_id"],
            amount=float(row["amount"]), issue_date=row["issue_date"], due_date=row["due_date"],
            stage=row["stage"], now=now, timezone=row["timezone"],
            attempts=int(counts["attempts"].iat[i]), calls_7d=int(counts["calls_7d"].iat[i]),
            messages_invoice_7d=int(counts["messages_invoice_7d"].iat[i]),
            messages_customer_24h=int(counts["messages_customer_24h"].iat[i]),
            dispute_open=bool(dispute[i]), paid=False,
            send_before=send_before[i].to_pydatetime(),
            overrides={
                **{c: bool(consent[i, j]) for j, c in enumerate(CONSENT_COLUMNS)},
                **{c: bool(opted_out[i, j]) for j, c in enumerate(OPT_OUT_COLUMNS)},
                "language": row["language"],
                **replied.get(row["customer_id"], {}),
            },
        )
        for i, row in enumerate(records)
    ]  # fmt: skip
    return client.decide(requests, seed=settings.dispatcher.decision_seed)


def _write_reminders(
    session: Session,
    frame: pd.DataFrame,
    decisions: list[Decision],
    send_before: pd.DatetimeIndex,
    settings: Settings,
    now: datetime,
    process: str,
) -> tuple[int, int, int]:
    """Reminder rows for every decision, outbox rows for contacts that pass the re-check."""
    contact = np.array([d.channel is not None for d in decisions])
    send_at = pd.DatetimeIndex(pd.to_datetime([d.send_at or now for d in decisions], utc=True))
    local: list[tuple[str, ...]] = [()] * len(frame)
    rows = np.flatnonzero(contact)
    if rows.size:
        broken = broken_rules(
            session, frame.iloc[rows].reset_index(drop=True),
            [decisions[i].channel for i in rows], [decisions[i].tone for i in rows],
            [decisions[i].offer for i in rows], send_at[rows], settings.policy.guardrails,
            send_before[rows],
        )  # fmt: skip
        for i, codes in zip(rows, broken, strict=True):
            local[i] = codes
    outcome = np.where(~contact, "no_contact", "scheduled").astype(object)
    outcome[[i for i in rows if local[i]]] = "blocked"
    reminders = [
        {"reminder_id": row["key"], "invoice_id": row["invoice_id"],
         "customer_id": row["customer_id"], "stage": row["stage"], "planned_at": now,
         "outcome": outcome[i], "decision_id": str(d.decision_id), "action": d.action,
         "propensity": d.propensity, "send_at": d.send_at, "policy_version": d.policy_version,
         "reasons": ",".join([*d.guardrail_reasons, *(f"local:{c}" for c in local[i])])}
        for i, (row, d) in enumerate(zip(frame.to_dict("records"), decisions, strict=True))
    ]  # fmt: skip
    session.execute(insert(Reminder), reminders)
    transports = settings.dispatcher.transports
    messages = [
        {"message_id": r["reminder_id"], "invoice_id": r["invoice_id"],
         "customer_id": r["customer_id"], "stage": r["stage"], "decision_id": r["decision_id"],
         "propensity": d.propensity, "channel": d.channel, "tone": d.tone, "offer": d.offer,
         "language": lang, "template": template_name(d.channel, d.tone, lang),
         "transport": transports[d.channel], "send_at": send_at[i].to_pydatetime(),
         "send_before": send_before[i].to_pydatetime(), "status": "pending", "attempts": 0,
         "reasons": "", "created_at": now}
        for i, (r, d, lang) in enumerate(zip(reminders, decisions, frame["language"], strict=True))
        if outcome[i] == "scheduled" and d.channel and d.tone and d.offer
    ]  # fmt: skip
    if messages:
        session.execute(insert(Message), messages)
    audit.record(session, now, process, "reminder", [r["reminder_id"] for r in reminders],
                 [r["outcome"] for r in reminders],
                 [{"stage": r["stage"], "action": r["action"], "reasons": r["reasons"]}
                  for r in reminders])  # fmt: skip
    notes = [{"send_at": m["send_at"], "channel": m["channel"]} for m in messages]
    audit.record(session, now, process, "message", [m["message_id"] for m in messages], "pending",
                 notes)  # fmt: skip
    counts = pd.Series(outcome).value_counts()
    return (int(counts.get("scheduled", 0)), int(counts.get("no_contact", 0)),
            int(counts.get("blocked", 0)))  # fmt: skip


def _open_cases(session: Session, cases: pd.DataFrame, now: datetime, process: str) -> None:
    if cases.empty:
        return
    keys = cases["key"].tolist()
    session.execute(insert(Reminder), [
        {"reminder_id": key, "invoice_id": row["invoice_id"], "customer_id": row["customer_id"],
         "stage": row["stage"], "planned_at": now, "outcome": "case_task", "reasons": ""}
        for key, row in zip(keys, cases.to_dict("records"), strict=True)
    ])  # fmt: skip
    session.execute(insert(CaseTask), [
        {"task_id": key, "invoice_id": row["invoice_id"], "customer_id": row["customer_id"],
         "stage": row["stage"], "reason": f"unpaid at the final stage ({row['stage']})",
         "status": "open", "opened_at": now}
        for key, row in zip(keys, cases.to_dict("records"), strict=True)
    ])  # fmt: skip
    audit.record(session, now, process, "case_task", keys, "opened")


def _advance(
    session: Session, ids: list[str], starts: np.ndarray, index: np.ndarray, workflow: Workflow
) -> None:
    """Point each invoice at the stage after the one just planned (None after the last)."""
    following = index + 1
    last = following >= len(workflow.stages)
    column = np.minimum(following, len(workflow.stages) - 1)
    next_at = pd.DatetimeIndex(starts[np.arange(len(ids)), column], tz="UTC")
    rows = [
        {"key": invoice_id, "next_stage": None if end else workflow.names[k],
         "next_stage_at": None if end else at.to_pydatetime()}
        for invoice_id, end, k, at in zip(ids, last, column, next_at, strict=True)
    ]  # fmt: skip
    table = Base.metadata.tables["invoices"]
    session.execute(
        update(table)
        .where(table.c.invoice_id == bindparam("key"))
        .values(next_stage=bindparam("next_stage"), next_stage_at=bindparam("next_stage_at")),
        rows,
    )
