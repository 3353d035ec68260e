"""Shadow decisions: a data set's invoices written to a decision log as if the service decided.

Drift monitoring reads the service's log. Where no service has run (the demo, the tests, the
benchmark, a what-if on a simulated shift) the late-payment rows of a data set stand in: one
``pre_due`` decision per invoice at its cutoff, scored by the given model, with the feature row
the model saw, and one feedback report per invoice with its settlement time (none when unpaid),
received once the outcome is known. Rows are written in bulk into the log's own tables.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES, names
from features.datasets import data_end, late_payment_features
from monitoring.reference import MonitoredModel
from serving.decision_log import DecisionLog, layout_id
from serving.feature_rows import rows_of_frame, value_arrays_json

SHADOW_STAGE = "pre_due"
SHADOW_ACTION = "no_contact"
SHADOW_POLICY = "shadow"
SHADOW_COLUMNS = tuple(names(ALL_FEATURES))
"""The layout of a shadow decision's feature row (a JSON array of these columns' values)."""
SETTLED_TOLERANCE = 0.005
"""Payments settle an invoice once they add up to its amount within half a cent."""


def settled_at(invoices: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """When each invoice's payments first add up to its amount (NaT if never), by invoice id."""
    ordered = payments.sort_values(["invoice_id", "paid_at", "payment_id"])
    paid = ordered.groupby("invoice_id")["amount"].cumsum()
    amount = ordered["invoice_id"].map(invoices.set_index("invoice_id")["amount"])
    settling = ordered[paid.to_numpy() >= amount.to_numpy() - SETTLED_TOLERANCE]
    first = settling.groupby("invoice_id")["paid_at"].min()
    return first.reindex(invoices["invoice_id"]).set_axis(invoices["invoice_id"])


def _iso_json(frame: pd.DataFrame) -> list[str]:
    text = frame.to_json(orient="records", lines=True, date_format="iso")
    return text.splitlines() if len(frame) else []


def shadow_rows(
    rows: pd.DataFrame,
    probability: np.ndarray,
    timezones: pd.Series,
    model_versions: dict[str, str],
    seed: int = 0,
) -> pd.DataFrame:
    """Decision-log rows for late-payment dataset ``rows`` given their scores."""
    n = len(rows)
    rng = np.random.default_rng(seed)
    ids = [
        str(uuid.UUID(bytes=bytes(b), version=4)) for b in rng.integers(0, 256, (n, 16), np.uint8)
    ]
    decided = pd.to_datetime(rows["cutoff"], utc=True)
    decided_text = decided.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_numpy()
    zone = rows["customer_id"].map(timezones).fillna("UTC").to_numpy()
    requests = pd.DataFrame(
        {
            "customer_id": rows["customer_id"].to_numpy(),
            "invoice_id": rows["invoice_id"].to_numpy(),
            "amount": rows["amount"].to_numpy(dtype=float),
            "issue_date": pd.to_datetime(rows["issue_date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "due_date": pd.to_datetime(rows["due_date"]).dt.strftime("%Y-%m-%d").to_numpy(),
            "stage": SHADOW_STAGE,
            "now": decided_text,
            "timezone": zone,
        }
    )
    return pd.DataFrame(
        {
            "decision_id": ids,
            "logged_at": decided_text,
            "decided_at": decided_text,
            "customer_id": requests["customer_id"],
            "invoice_id": requests["invoice_id"],
            "stage": SHADOW_STAGE,
            "action": SHADOW_ACTION,
            "propensity": 1.0,
            "send_at": None,
            "late_payment_probability": np.asarray(probability, dtype=float),
            "churn_probability": 0.0,  # not scored: shadow decisions monitor late payment
            "open_probability": None,
            "expected_reward": 0.0,
            "guardrail_reasons": "[]",
            "cold_start": 0,
            "model_versions": json.dumps(model_versions),
            "policy_version": SHADOW_POLICY,
            "request": _iso_json(requests),
            "features": value_arrays_json(rows_of_frame(rows[list(SHADOW_COLUMNS)])),
        }
    )


def shadow_feedback(
    decisions: pd.DataFrame, settled: pd.Series, data_end: pd.Timestamp
) -> pd.DataFrame:
    """One report per decision: the settlement time if any, received when it was known."""
    paid = pd.to_datetime(decisions["invoice_id"].map(settled), utc=True)
    received = paid.fillna(data_end)
    reports = [
        json.dumps({"decision_id": d} | ({} if pd.isna(p) else {"paid_at": p.isoformat()}))
        for d, p in zip(decisions["decision_id"], paid, strict=True)
    ]
    return pd.DataFrame(
        {
            "decision_id": decisions["decision_id"].to_numpy(),
            "report_hash": decisions["decision_id"].to_numpy(),
            "received_at": received.dt.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00").to_numpy(),
            "report": reports,
        }
    )


def write_shadow_log(
    path: Path, decisions: pd.DataFrame, feedback: pd.DataFrame | None = None
) -> Path:
    """Append shadow decisions (and feedback) to the decision log at ``path`` (feature rows of
    :data:`SHADOW_COLUMNS`)."""
    DecisionLog(path)  # creates the file and its tables when new
    with sqlite3.connect(path) as connection:
        rows = decisions.assign(feature_layout=layout_id(connection, SHADOW_COLUMNS))
        rows.to_sql("decisions", connection, if_exists="append", index=False, chunksize=50_000)
        if feedback is not None:
            feedback.to_sql("feedback", connection, if_exists="append", index=False)
    return path


def log_shadow_decisions(
    rows: pd.DataFrame,
    tables: dict[str, pd.DataFrame],
    model: MonitoredModel,
    path: Path,
    seed: int = 0,
) -> int:
    """Score late-payment ``rows`` of the data set ``tables`` and log them as shadow decisions."""
    dates = [column for column in ("issue_date", "due_date") if column not in rows.columns]
    if dates:
        invoices = tables["invoices"][["invoice_id", *dates]]
        rows = rows.merge(invoices, on="invoice_id", how="left", validate="many_to_one")
    probability = model.estimator.predict_proba(rows[list(model.spec.features)])[:, 1]
    timezones = tables["customers"].set_index("customer_id")["timezone"]
    decisions = shadow_rows(rows, probability, timezones, {model.spec.name: model.label}, seed)
    settled = settled_at(tables["invoices"], tables["payments"])
    feedback = shadow_feedback(decisions, settled, data_end(tables))
    write_shadow_log(path, decisions, feedback)
    return len(decisions)


def shadow_data_set(
    tables: dict[str, pd.DataFrame],
    model: MonitoredModel,
    path: Path,
    since: pd.Timestamp | None = None,
    *,
    backend_url: str = "duckdb://",
    grace_days: float = 0.0,
) -> int:
    """Log every invoice of a data set issued from ``since`` as a shadow decision."""
    rows = late_payment_features(tables, backend_url=backend_url, grace_days=grace_days)
    if since is not None:
        rows = rows[pd.to_datetime(rows["cutoff"], utc=True) >= since]
    return log_shadow_decisions(rows, tables, model, path)
