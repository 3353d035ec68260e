"""Declared financial hardship: what /decide must know, so reminders switch to offers.

A customer who replied with hardship within ``dispatcher.hardship_days`` is sent to /decide with
the catalogue feature ``hardship_90d`` set; the service's guardrails then allow only a friendly
or neutral tone with an extension or instalment plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from dispatcher.state import Hardship
from paynudge.config import Settings

HARDSHIP_FEATURE = "hardship_90d"


def decision_overrides(
    session: Session, customer_ids: Sequence[str], now: datetime, settings: Settings
) -> dict[str, dict[str, bool]]:
    """Per customer in declared hardship at ``now``, the overrides of their /decide request."""
    since = now - timedelta(days=settings.dispatcher.hardship_days)
    declared = session.scalars(
        select(Hardship.customer_id).where(
            Hardship.customer_id.in_(list(set(customer_ids))),
            Hardship.declared_at > since,
            Hardship.declared_at <= now,
        )
    )
    return {customer: {HARDSHIP_FEATURE: True} for customer in declared}
