"""SHAP reports for analysts: what drives a model version's risk, overall and by segment.

Global: the beeswarm and mean |SHAP| bar plots (drawn by :func:`training.artifacts.shap_figures`,
the same as every training run logs) and dependence plots of the top features, on a sample of the
version's training rows. Segments: mean |SHAP| per feature for autopay vs. manual payers and new
vs. long-standing customers (tenure below ``monitoring.new_customer_days``). Contributions are
LightGBM's exact TreeSHAP values of the raw margin (:meth:`CalibratedLightGBM.contributions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from monitoring.pages import write_page
from monitoring.reference import MonitoredModel
from paynudge.config import Settings
from training.artifacts import numeric_view, save_figure, shap_figures

SHAP_FOLDER = "shap"
META_FILE = "meta.json"
PAGE = "index.html"
SEGMENT_FEATURES = 10
MAX_DISPLAY = 20
DPI = 110


@dataclass(frozen=True)
class ShapReport:
    """Where a version's SHAP report went, its top features and segment importances."""

    folder: Path
    page: Path
    top_features: tuple[str, ...]
    segments: pd.DataFrame


def mean_abs_shap(contributions: pd.DataFrame) -> pd.Series:
    """Mean |SHAP| per feature (``bias`` dropped), largest first."""
    return contributions.drop(columns="bias").abs().mean().sort_values(ascending=False)


def segments(features: pd.DataFrame, new_customer_days: float) -> dict[str, np.ndarray]:
    """Row masks of the analyst segments: autopay vs. manual, new vs. long-standing."""
    autopay = features["autopay"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    tenure = pd.to_numeric(features["tenure_days"], errors="coerce").to_numpy(dtype=float)
    new = tenure < new_customer_days
    return {
        "autopay": autopay,
        "manual payers": ~autopay,
        f"new (< {new_customer_days:g} days)": new,
        "long-standing": ~new & ~np.isnan(tenure),
    }


def segment_importance(
    contributions: pd.DataFrame, features: pd.DataFrame, new_customer_days: float
) -> pd.DataFrame:
    """Mean |SHAP| per feature (rows) in each segment (columns), with the segment sizes."""
    values = contributions.drop(columns="bias").abs()
    table = {
        name: values[mask].mean() if mask.any() else values.iloc[:0].mean()
        for name, mask in segments(features, new_customer_days).items()
    }
    return pd.DataFrame(table)


def segment_figure(importance: pd.DataFrame, pair: tuple[str, str]) -> Figure:
    """Side-by-side mean |SHAP| bars of the top features of two segments."""
    top = importance[list(pair)].max(axis=1).sort_values(ascending=False).index[:SEGMENT_FEATURES]
    shown = importance.loc[top[::-1], list(pair)]
    figure = Figure(figsize=(8, 0.35 * len(shown) + 1.5))
    axes = figure.subplots()
    positions = np.arange(len(shown))
    for offset, segment in zip((-0.2, 0.2), pair, strict=True):
        axes.barh(positions + offset, shown[segment], height=0.4, label=segment)
    axes.set_yticks(positions, shown.index)
    axes.set(xlabel="mean |SHAP| (log-odds)", title=f"What drives risk: {pair[0]} vs {pair[1]}")
    axes.legend(loc="lower right")
    return figure


def dependence_figure(contributions: pd.DataFrame, features: pd.DataFrame, name: str) -> Figure:
    """SHAP value of one feature against its value (categories as codes)."""
    figure = Figure(figsize=(6, 4.5))
    axes = figure.subplots()
    x = numeric_view(features[[name]])[name]
    axes.scatter(x, contributions[name], s=6, alpha=0.4)
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set(xlabel=name, ylabel=f"SHAP value of {name} (log-odds)", title=f"Dependence: {name}")
    return figure


def global_report(
    model: MonitoredModel, rows: pd.DataFrame, settings: Settings, source: str
) -> ShapReport:
    """Global and segment SHAP report of ``model`` on a sample of ``rows``; an HTML page."""
    options = settings.monitoring
    features = rows[list(model.spec.features)]
    if len(features) > options.shap_rows:
        features = features.sample(n=options.shap_rows, random_state=options.seed)
    contributions = model.estimator.contributions(features)
    importance = mean_abs_shap(contributions)
    top = tuple(str(name) for name in importance.index[: options.top_features])
    folder = settings.reports_directory / SHAP_FOLDER / model.name / f"v{model.version}"
    folder.mkdir(parents=True, exist_ok=True)
    beeswarm, bar = shap_figures(contributions, features, MAX_DISPLAY)
    figures = {"beeswarm.png": beeswarm, "importance.png": bar}
    figures |= {
        f"dependence_{name}.png": dependence_figure(contributions, features, name) for name in top
    }
    by_segment = segment_importance(contributions, features, options.new_customer_days)
    names = list(by_segment.columns)
    figures["segments_payment.png"] = segment_figure(by_segment, (names[0], names[1]))
    figures["segments_tenure.png"] = segment_figure(by_segment, (names[2], names[3]))
    for file_name, figure in figures.items():
        save_figure(figure, folder / file_name, DPI)
    by_segment.to_csv(folder / "segments.csv")
    created = datetime.now(UTC).isoformat(timespec="seconds")
    meta = {
        "model": model.name,
        "version": model.version,
        "run_id": model.run_id,
        "rows": len(features),
        "source": source,
        "created": created,
        "top_features": top,
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))
    page = write_global_page(folder, meta, figures, by_segment)
    return ShapReport(folder, page, top, by_segment)


def write_global_page(
    folder: Path, meta: dict, figures: dict[str, Figure], by_segment: pd.DataFrame
) -> Path:
    """The HTML page of a global SHAP report."""
    sizes = by_segment.head(SEGMENT_FEATURES)
    table = {
        "header": ["feature", *by_segment.columns],
        "rows": [[name, *(f"{v:.3f}" for v in row)] for name, row in sizes.iterrows()],
    }
    images = [
        {"src": name, "caption": name.removesuffix(".png").replace("_", " ")} for name in figures
    ]
    return write_page(
        folder / PAGE,
        f"SHAP report: {meta['model']} version {meta['version']}",
        [
            {
                "heading": "Global explanations",
                "images": images[:2],
                "text": "Each dot is one invoice; right of zero raises the late-payment risk.",
            },
            {"heading": "Top features: dependence", "images": images[2:-2]},
            {
                "heading": "Segments",
                "images": images[-2:],
                "table": table,
                "text": "Mean |SHAP| (log-odds) per feature in each segment.",
            },
        ],
        subtitle=f"{meta['rows']:,} rows from {meta['source']}; run {meta['run_id']}; "
        f"created {meta['created']}",
    )
