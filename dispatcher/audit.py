"""The audit log: one appended row per state change of a reminder, message or case task."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy.orm import Session

from dispatcher.state import AuditEntry

DETAIL = json.JSONEncoder(default=str)
"""The details' encoder, built once (``json.dumps`` with ``default`` builds one per call)."""


def record(
    session: Session,
    at: datetime,
    process: str,
    entity: str,
    ids: Sequence[str],
    events: Sequence[str] | str,
    details: Sequence[dict[str, object]] | None = None,
) -> None:
    """Append one entry per id (in the caller's transaction, so it commits with the change)."""
    if not ids:
        return
    names = [events] * len(ids) if isinstance(events, str) else list(events)
    notes = details if details is not None else [{}] * len(ids)
    rows = [
        {"at": at, "process": process, "entity": entity, "entity_id": entity_id,
         "event": event, "detail": DETAIL.encode(detail) if detail else ""}
        for entity_id, event, detail in zip(ids, names, notes, strict=True)
    ]  # fmt: skip
    session.execute(insert(AuditEntry.__table__), rows)  # Core executemany: no ORM bulk layer
