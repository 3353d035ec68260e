"""The ``/decide`` requests of a planning batch: what the service must know about each invoice.

Built column by column over the batch (contact counts, opt-outs with suppressions, consent,
disputes, declared hardship), then validated as one list by the HTTP contract's
:class:`serving.schemas.DecisionRequest`: no pandas row access per invoice.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
from pydantic import TypeAdapter
from sqlalchemy.orm import Session

from dispatcher.hardship import decision_overrides
from dispatcher.recheck import contact_counts, suppressed
from dispatcher.state import CONSENT_COLUMNS, OPT_OUT_COLUMNS
from paynudge.config import Settings
from paynudge.vocabulary import CHANNELS
from serving.schemas import DecisionRequest

REQUESTS = TypeAdapter(list[DecisionRequest])
COUNT_COLUMNS = ("attempts", "calls_7d", "messages_invoice_7d", "messages_customer_24h")
FLAG_COLUMNS = (*CONSENT_COLUMNS, *OPT_OUT_COLUMNS)


def decision_requests(
    session: Session,
    frame: pd.DataFrame,
    send_before: pd.DatetimeIndex,
    settings: Settings,
    now: datetime,
) -> list[DecisionRequest]:
    """One request per row of :func:`dispatcher.recheck.situation` (with its ``stage``), at
    ``now``, each to be sent before its ``send_before``."""
    at = pd.DatetimeIndex([pd.Timestamp(now)] * len(frame))
    counts = contact_counts(session, frame, at)
    customers = frame["customer_id"]
    flags = np.hstack([
        frame[list(CONSENT_COLUMNS)].to_numpy(dtype=bool),
        opted_out(frame, suppressed(session, customers.unique())),
    ]).tolist()  # fmt: skip
    opened = pd.to_datetime(frame["dispute_opened_at"], utc=True)
    resolved = pd.to_datetime(frame["dispute_resolved_at"], utc=True)
    dispute = ((opened <= now) & ~(resolved <= now)).tolist()
    hardship = decision_overrides(session, customers.unique().tolist(), now, settings)
    overrides = [
        {**dict(zip(FLAG_COLUMNS, row, strict=True)), "language": language,
         **hardship.get(customer, {})}
        for row, language, customer in zip(flags, frame["language"], customers, strict=True)
    ]  # fmt: skip
    columns = {
        "customer_id": customers.tolist(),
        "invoice_id": frame["invoice_id"].tolist(),
        "amount": frame["amount"].astype(float).tolist(),
        "issue_date": frame["issue_date"].tolist(),
        "due_date": frame["due_date"].tolist(),
        "stage": frame["stage"].tolist(),
        "timezone": frame["timezone"].tolist(),
        **{name: counts[name].astype(int).tolist() for name in COUNT_COLUMNS},
        "dispute_open": dispute,
        "send_before": list(send_before.to_pydatetime()),
        "overrides": overrides,
    }
    fixed = {"now": now, "paid": False}
    rows = [
        {**dict(zip(columns, values, strict=True)), **fixed}
        for values in zip(*columns.values(), strict=True)
    ]
    return REQUESTS.validate_python(rows)


def opted_out(frame: pd.DataFrame, suppressions: pd.DataFrame) -> np.ndarray:
    """(rows, channels) opt-out flags, with every suppression of the customer on the channel
    (whenever it began: planning takes the safe side; sending checks the instant)."""
    flags = frame[list(OPT_OUT_COLUMNS)].to_numpy(dtype=bool).copy()
    if suppressions.empty:
        return flags
    for j, channel in enumerate(CHANNELS):
        mine = suppressions.loc[suppressions["channel"] == channel, "customer_id"]
        flags[:, j] |= frame["customer_id"].isin(mine).to_numpy()
    return flags
