"""The dispatcher's state as the plain KPI tables of :mod:`dispatcher.kpi_tables`.

Messages are the sent ones, with the first delivery, open and click of each from the message
events; case tasks are every task opened (final stage, dispute, no response).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.state import CaseTask, Customer, Invoice, Message, MessageEvent, Payment
from paynudge.errors import DataError

EVENT_COLUMNS = {"delivered": "delivered_at", "opened": "opened_at", "clicked": "clicked_at"}


def _frame(session: Session, columns: list) -> pd.DataFrame:  # type: ignore[type-arg]
    return pd.DataFrame(session.execute(select(*columns)).all(), columns=[c.key for c in columns])


def kpi_tables(sessions: sessionmaker[Session]) -> dict[str, pd.DataFrame]:
    """invoices, payments, messages, case_tasks and customers, in the KPI contract's columns."""
    with sessions() as session:
        invoices = _frame(session, [Invoice.invoice_id, Invoice.customer_id, Invoice.issue_date,
                                    Invoice.due_date, Invoice.amount])  # fmt: skip
        payments = _frame(session, [Payment.invoice_id, Payment.paid_at, Payment.amount])
        messages = _frame(session, [Message.message_id, Message.invoice_id, Message.channel,
                                    Message.sent_at, Message.status])  # fmt: skip
        events = _frame(session, [MessageEvent.message_id, MessageEvent.kind, MessageEvent.at])
        tasks = _frame(session, [CaseTask.invoice_id, CaseTask.opened_at])
        customers = _frame(session, [Customer.customer_id, Customer.timezone])
    messages = messages[messages["status"] == "sent"].drop(columns="status")
    events = events[events["kind"].isin(list(EVENT_COLUMNS))]
    wide = events.pivot_table(index="message_id", columns="kind", values="at", aggfunc="min")
    wide = wide.reindex(columns=list(EVENT_COLUMNS)).rename(columns=EVENT_COLUMNS)
    messages = messages.merge(wide, left_on="message_id", right_index=True, how="left")
    for column in ("sent_at", *EVENT_COLUMNS.values()):
        messages[column] = pd.to_datetime(messages[column], utc=True)
    for frame, column in ((payments, "paid_at"), (tasks, "opened_at")):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    tasks = tasks.sort_values("opened_at").drop_duplicates("invoice_id")
    return {"invoices": invoices, "payments": payments, "messages": messages.reset_index(drop=True),
            "case_tasks": tasks.reset_index(drop=True), "customers": customers}  # fmt: skip


def write_kpi_tables(tables: dict[str, pd.DataFrame], directory: Path) -> Path:
    """Write the tables as Parquet (``paynudge report kpis --data DIR`` reads them)."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, table in tables.items():
            table.to_parquet(directory / f"{name}.parquet", index=False)
    except OSError as error:
        raise DataError(f"{directory}: cannot write the KPI tables ({error.strerror})") from None
    return directory
