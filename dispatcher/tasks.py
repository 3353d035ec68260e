"""Case tasks for case managers: opened on disputes and for customers who do not respond (the
final stage opens its own in :mod:`dispatcher.planning`); listed, shown, closed and exported.

A task is keyed by (invoice, reason stage) with the same idempotency key as planning's, so the
same cause never opens two tasks. The CSV export is safe to open in a spreadsheet: every text
cell that starts like a formula is quoted (:func:`dispatcher.kpi_report.spreadsheet_safe`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher import audit
from dispatcher.database import upsert
from dispatcher.kpi_report import spreadsheet_safe
from dispatcher.planning import idempotency_key
from dispatcher.state import CaseTask, Invoice, Message, MessageEvent, Reply
from paynudge.errors import DataError

DISPUTE = "dispute"
NO_RESPONSE = "no_response"
"""Reason stages of the tasks opened here (the final stage's task carries the stage name)."""
RESPONSES: tuple[str, ...] = ("opened", "clicked", "replied")
"""Message events that count as the customer responding."""
TASK_COLUMNS: tuple[str, ...] = (
    "task_id", "invoice_id", "customer_id", "stage", "reason", "status", "opened_at", "closed_at",
)  # fmt: skip
STATUSES: tuple[str, ...] = ("open", "closed")


@dataclass(frozen=True)
class TaskRequest:
    """A task to open: the invoice, its customer, the reason stage and the reason in words."""

    invoice_id: str
    customer_id: str
    stage: str
    reason: str


def open_tasks(
    session: Session, requests: Sequence[TaskRequest], now: datetime, process: str
) -> list[str]:
    """Open the tasks not open already (same invoice and stage); the ids of the new ones."""
    keys = [idempotency_key(r.invoice_id, r.stage) for r in requests]
    known = set(session.scalars(select(CaseTask.task_id).where(CaseTask.task_id.in_(keys))))
    rows = [
        {"task_id": key, "invoice_id": r.invoice_id, "customer_id": r.customer_id,
         "stage": r.stage, "reason": r.reason, "status": "open", "opened_at": now,
         "closed_at": None}
        for key, r in zip(keys, requests, strict=True) if key not in known
    ]  # fmt: skip
    upsert(session, CaseTask.__table__, rows)
    fresh = [row["task_id"] for row in rows]
    audit.record(session, now, process, "case_task", fresh, "opened",
                 [{"reason": row["stage"]} for row in rows])  # fmt: skip
    return fresh


def open_silent_tasks(session: Session, now: datetime, reminders: int, process: str) -> list[str]:
    """A task for every open invoice with ``reminders`` or more reminders sent and no open,
    click, reply or payment since the first of them."""
    sent = pd.DataFrame(
        session.execute(
            select(Message.invoice_id, Message.customer_id, func.count(), func.min(Message.sent_at))
            .join(Invoice, Invoice.invoice_id == Message.invoice_id)
            .where(Message.status == "sent", Message.sent_at <= now,
                   (Invoice.paid_at.is_(None)) | (Invoice.paid_at > now))
            .group_by(Message.invoice_id, Message.customer_id)
            .having(func.count() >= reminders)
        ).all(),
        columns=["invoice_id", "customer_id", "sent", "first_sent_at"],
    )  # fmt: skip
    if sent.empty:
        return []
    ids = sent["invoice_id"].tolist()
    engaged = set(
        session.scalars(
            select(Message.invoice_id)
            .join(MessageEvent, MessageEvent.message_id == Message.message_id)
            .where(Message.invoice_id.in_(ids), MessageEvent.kind.in_(RESPONSES),
                   MessageEvent.at <= now)
        )
    )  # fmt: skip
    replied = set(
        session.scalars(select(Reply.customer_id).where(
            Reply.customer_id.in_(sent["customer_id"].tolist()), Reply.received_at <= now))
    )  # fmt: skip
    silent = sent[~sent["invoice_id"].isin(engaged) & ~sent["customer_id"].isin(replied)]
    requests = [
        TaskRequest(row.invoice_id, row.customer_id, NO_RESPONSE,
                    f"no response after {row.sent} reminders")
        for row in silent.itertuples()
    ]  # fmt: skip
    return open_tasks(session, requests, now, process)


def task_frame(sessions: sessionmaker[Session], status: str | None = None) -> pd.DataFrame:
    """Case tasks (optionally of one status), newest first."""
    if status is not None and status not in STATUSES:
        raise DataError(f"task status: expected one of {', '.join(STATUSES)}, found {status!r}")
    query = select(*(getattr(CaseTask, c) for c in TASK_COLUMNS)).order_by(
        CaseTask.opened_at.desc(), CaseTask.task_id
    )
    if status is not None:
        query = query.where(CaseTask.status == status)
    with sessions() as session:
        return pd.DataFrame(session.execute(query).all(), columns=list(TASK_COLUMNS))


def task_detail(sessions: sessionmaker[Session], task_id: str) -> dict[str, object]:
    """One task with its invoice and the customer's replies (for ``paynudge tasks show``)."""
    with sessions() as session:
        task = session.get(CaseTask, task_id)
        if task is None:
            raise DataError(f"case task {task_id!r}: no such task (see `paynudge tasks list`)")
        invoice = session.get(Invoice, task.invoice_id)
        replies = session.execute(
            select(Reply.received_at, Reply.channel, Reply.intent, Reply.text)
            .where(Reply.customer_id == task.customer_id)
            .order_by(Reply.received_at)
        ).all()
        return {
            **{c: getattr(task, c) for c in TASK_COLUMNS},
            "amount": invoice.amount if invoice else None,
            "due_date": invoice.due_date if invoice else None,
            "paid_at": invoice.paid_at if invoice else None,
            "replies": [tuple(row) for row in replies],
        }


def close_task(sessions: sessionmaker[Session], task_id: str, now: datetime, note: str) -> bool:
    """Close an open task; False if it was closed already."""
    with sessions.begin() as session:
        if session.get(CaseTask, task_id) is None:
            raise DataError(f"case task {task_id!r}: no such task (see `paynudge tasks list`)")
        closed = session.execute(
            update(CaseTask)
            .where(CaseTask.task_id == task_id, CaseTask.status == "open")
            .values(status="closed", closed_at=now)
        ).rowcount
        if closed:
            audit.record(session, now, "cli", "case_task", [task_id], "closed", [{"note": note}])
    return bool(closed)


def export_tasks(tasks: pd.DataFrame, path: Path) -> Path:
    """Write ``tasks`` as CSV, every text cell safe against spreadsheet formula injection."""
    safe = tasks.copy()
    for column in safe.columns:
        if safe[column].dtype == object:
            safe[column] = spreadsheet_safe(safe[column].fillna(""))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        safe.to_csv(path, index=False)
    except OSError as error:
        raise DataError(f"{path}: cannot write the case tasks ({error.strerror})") from None
    return path
