"""Why one invoice is at risk: a SHAP waterfall and the plain-language reasons the service gives.

The reasons are :func:`serving.explanation.top_reasons`, the very sentences returned with a
decision; the waterfall shows every contribution from the base value (the average margin) to
this invoice's log-odds. The row is the invoice's late-payment dataset row (or a customer's
latest one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from monitoring.pages import write_page
from monitoring.reference import MonitoredModel
from paynudge.config import Settings
from paynudge.errors import DataError
from serving.explanation import top_reasons
from training.artifacts import numeric_view

LOCAL_FOLDER = "local"
WATERFALL_FEATURES = 12
REASONS = 5
DPI = 110
SAFE = re.compile(r"[^\w.-]+")


@dataclass(frozen=True)
class LocalExplanation:
    """One invoice's score, reasons and the page that shows them."""

    invoice_id: str
    customer_id: str
    probability: float
    reasons: list[dict[str, object]]
    page: Path


def find_row(rows: pd.DataFrame, invoice: str | None, customer: str | None) -> pd.DataFrame:
    """The dataset row of ``invoice``, or the latest row of ``customer``; a clear error if none."""
    if invoice is not None:
        found = rows[rows["invoice_id"] == invoice]
        what = f"invoice {invoice!r}"
    elif customer is not None:
        found = rows[rows["customer_id"] == customer].sort_values("cutoff").tail(1)
        what = f"customer {customer!r}"
    else:
        raise DataError("explain: give an invoice id or a customer id")
    if found.empty:
        raise DataError(f"{what} is not in the late-payment dataset")
    return found.head(1)


def waterfall_figure(model: MonitoredModel, row: pd.DataFrame) -> plt.Figure:
    """SHAP's waterfall of one row (SHAP draws on pyplot's current figure)."""
    import shap  # 4 s to import (numba): only reports that draw SHAP plots pay for it

    features = row[list(model.spec.features)]
    contributions = model.estimator.contributions(features)
    explanation = shap.Explanation(
        values=contributions[list(features.columns)].to_numpy()[0],
        base_values=float(contributions["bias"].iloc[0]),
        data=numeric_view(features).to_numpy()[0],
        feature_names=[str(c) for c in features.columns],
    )
    figure = plt.figure(figsize=(8, 6))
    shap.plots.waterfall(explanation, max_display=WATERFALL_FEATURES, show=False)
    return figure


def local_report(
    model: MonitoredModel,
    rows: pd.DataFrame,
    settings: Settings,
    invoice: str | None = None,
    customer: str | None = None,
) -> LocalExplanation:
    """Waterfall and reasons of one invoice, written as a page under the SHAP reports."""
    row = find_row(rows, invoice, customer).reset_index(drop=True)
    features = row[list(model.spec.features)]
    probability = float(model.estimator.predict_proba(features)[0, 1])
    reasons = top_reasons(model.estimator, features, top=REASONS)[0]
    invoice_id, customer_id = str(row["invoice_id"].iloc[0]), str(row["customer_id"].iloc[0])
    folder = settings.reports_directory / "shap" / model.name / f"v{model.version}" / LOCAL_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    stem = SAFE.sub("_", invoice_id)
    figure = waterfall_figure(model, row)
    figure.savefig(folder / f"{stem}.png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    table = {
        "header": ["feature", "value", "SHAP (log-odds)", "reason"],
        "rows": [
            [r["feature"], r["value"], f"{r['contribution']:+.3f}", r["sentence"]] for r in reasons
        ],
    }
    page = write_page(
        folder / f"{stem}.html",
        f"Why invoice {invoice_id} is at risk: P(late) = {probability:.1%}",
        [
            {"heading": "Reasons (as the decision service gives them)", "table": table},
            {
                "heading": "SHAP waterfall",
                "images": [{"src": f"{stem}.png", "caption": "waterfall"}],
            },
        ],
        subtitle=f"customer {customer_id}; model {model.label} (run {model.run_id})",
    )
    return LocalExplanation(invoice_id, customer_id, probability, reasons, page)
