"""The rows one planned batch writes: a reminder per decision, an outbox message per contact
that passes the local re-check, and their audit entries, column by column and in bulk.

Everything is written in the planning transaction (the transactional outbox): a message exists
before anything can send it, keyed by the idempotency key of its (invoice, stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlalchemy.orm import Session

from dispatcher import audit
from dispatcher.recheck import broken_rules
from dispatcher.rendering import template_name
from dispatcher.state import Message, Reminder
from paynudge.config import Settings
from serving.schemas import Decision

REMINDER_COLUMNS = ("reminder_id", "invoice_id", "customer_id", "stage", "outcome",
                    "decision_id", "action", "propensity", "send_at", "policy_version",
                    "reasons")  # fmt: skip
MESSAGE_COLUMNS = ("message_id", "invoice_id", "customer_id", "stage", "decision_id",
                   "propensity", "channel", "tone", "offer", "language", "template", "transport",
                   "send_at", "send_before")  # fmt: skip


def write_reminders(
    session: Session,
    frame: pd.DataFrame,
    decisions: Sequence[Decision],
    send_before: pd.DatetimeIndex,
    settings: Settings,
    now: datetime,
    process: str,
) -> tuple[int, int, int]:
    """Reminder rows for every decision, outbox rows for contacts that pass the re-check;
    (scheduled, no contact, blocked)."""
    channel = [d.channel for d in decisions]
    send_at = pd.DatetimeIndex(pd.to_datetime([d.send_at or now for d in decisions], utc=True))
    local = _local_codes(session, frame, decisions, send_at, send_before, settings)
    contact = np.array([c is not None for c in channel], dtype=bool)
    blocked = np.array([bool(codes) for codes in local], dtype=bool)
    outcome = np.where(~contact, "no_contact", np.where(blocked, "blocked", "scheduled"))
    columns = {
        "reminder_id": frame["key"].tolist(), "invoice_id": frame["invoice_id"].tolist(),
        "customer_id": frame["customer_id"].tolist(), "stage": frame["stage"].tolist(),
        "outcome": outcome.tolist(), "decision_id": [str(d.decision_id) for d in decisions],
        "action": [d.action for d in decisions], "propensity": [d.propensity for d in decisions],
        "send_at": [d.send_at for d in decisions],
        "policy_version": [d.policy_version for d in decisions],
        "reasons": [",".join([*d.guardrail_reasons, *(f"local:{c}" for c in codes)])
                    for d, codes in zip(decisions, local, strict=True)],
    }  # fmt: skip
    _insert(session, Reminder, columns, REMINDER_COLUMNS, planned_at=now)
    details = [{"stage": s, "action": a, "reasons": r} for s, a, r in zip(
        columns["stage"], columns["action"], columns["reasons"], strict=True)]  # fmt: skip
    audit.record(session, now, process, "reminder", columns["reminder_id"], columns["outcome"],
                 details)  # fmt: skip
    scheduled = np.flatnonzero(outcome == "scheduled")
    _write_messages(session, columns, decisions, scheduled, frame["language"].tolist(),
                    send_at, send_before, settings, now, process)  # fmt: skip
    return len(scheduled), int((~contact).sum()), int((contact & blocked).sum())


def _local_codes(
    session: Session,
    frame: pd.DataFrame,
    decisions: Sequence[Decision],
    send_at: pd.DatetimeIndex,
    send_before: pd.DatetimeIndex,
    settings: Settings,
) -> list[tuple[str, ...]]:
    """Per row, the rules the contact breaks at its send instant by the dispatcher's own data
    (none for no contact), re-checked over the whole batch at once."""
    local: list[tuple[str, ...]] = [()] * len(frame)
    rows = [i for i, d in enumerate(decisions) if d.channel is not None]
    if not rows:
        return local
    broken = broken_rules(
        session, frame.iloc[rows].reset_index(drop=True),
        [decisions[i].channel for i in rows], [decisions[i].tone for i in rows],
        [decisions[i].offer for i in rows], send_at[rows], settings.policy.guardrails,
        send_before[rows],
    )  # fmt: skip
    for i, codes in zip(rows, broken, strict=True):
        local[i] = codes
    return local


def _write_messages(
    session: Session,
    reminders: dict[str, list],
    decisions: Sequence[Decision],
    rows: np.ndarray,
    languages: list[str],
    send_at: pd.DatetimeIndex,
    send_before: pd.DatetimeIndex,
    settings: Settings,
    now: datetime,
    process: str,
) -> None:
    """The outbox rows of the scheduled reminders (``rows``), pending, and their audit."""
    chosen = [decisions[i] for i in rows if decisions[i].tone and decisions[i].offer]
    rows = np.array([i for i in rows if decisions[i].tone and decisions[i].offer], dtype=np.int64)
    if not rows.size:
        return
    transports = settings.dispatcher.transports
    language = [languages[i] for i in rows]
    columns = {
        **{name: [reminders[source][i] for i in rows] for name, source in (
            ("message_id", "reminder_id"), ("invoice_id", "invoice_id"),
            ("customer_id", "customer_id"), ("stage", "stage"), ("decision_id", "decision_id"),
            ("propensity", "propensity"))},
        "channel": [d.channel for d in chosen], "tone": [d.tone for d in chosen],
        "offer": [d.offer for d in chosen], "language": language,
        "template": [template_name(d.channel, d.tone, lang)  # type: ignore[arg-type]
                     for d, lang in zip(chosen, language, strict=True)],
        "transport": [transports[d.channel] for d in chosen],  # type: ignore[index]
        "send_at": list(send_at[rows].to_pydatetime()),
        "send_before": list(send_before[rows].to_pydatetime()),
    }  # fmt: skip
    _insert(session, Message, columns, MESSAGE_COLUMNS, status="pending", attempts=0,
            reasons="", created_at=now)  # fmt: skip
    audit.record(session, now, process, "message", columns["message_id"], "pending",
                 [{"send_at": at, "channel": c} for at, c in zip(
                     columns["send_at"], columns["channel"], strict=True)])  # fmt: skip


def _insert(
    session: Session, model: type, columns: dict[str, list], names: Sequence[str], **fixed: object
) -> None:
    """One executemany INSERT (SQLAlchemy Core, no ORM objects) of the rows of ``columns``."""
    keys, tail = (*names, *fixed), tuple(fixed.values())
    rows = [dict(zip(keys, values + tail, strict=True))
            for values in zip(*(columns[name] for name in names), strict=True)]  # fmt: skip
    if rows:
        session.execute(insert(model.__table__), rows)  # type: ignore[attr-defined]
