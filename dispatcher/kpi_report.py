"""The KPI page: one HTML file with embedded PNG plots, and the same figures as a CSV.

Several runs (the static ladder and a learned policy on the same simulated customers, say) are
shown side by side. Text cells of the CSV that a spreadsheet would run as a formula are quoted.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from dispatcher.kpis import KpiReport, compare_kpis

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CSV_NAME = "kpis.csv"
HTML_NAME = "kpis.html"


@dataclass(frozen=True)
class KpiFiles:
    """Where the report was written."""

    html: Path
    csv: Path


def kpi_rows(reports: Mapping[str, KpiReport]) -> pd.DataFrame:
    """Every figure as one long table: run, section, group, metric, value."""
    parts = []
    summary = compare_kpis(reports).drop(index="as_of")
    for run in summary.columns:
        values = summary[run].to_numpy()
        parts.append(
            pd.DataFrame(
                {
                    "run": run,
                    "section": "summary",
                    "group": "",
                    "metric": summary.index,
                    "value": values,
                }
            )
        )
    for run, report in reports.items():
        sections = (
            ("overdue", report.overdue, "bucket"),
            ("channel", report.channels, "channel"),
            ("on_time_by_month", report.on_time_by_month, "due_month"),
        )
        for section, frame, key in sections:
            long = frame.melt(id_vars=key, var_name="metric", value_name="value")
            parts.append(long.rename(columns={key: "group"}).assign(run=run, section=section))
    rows = pd.concat(parts, ignore_index=True)[["run", "section", "group", "metric", "value"]]
    rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
    return rows


def spreadsheet_safe(values: pd.Series) -> pd.Series:
    """Text a spreadsheet shows as text: a leading formula character gets a quote before it."""
    text = values.astype(str)
    return text.where(~text.str.startswith(FORMULA_PREFIXES), "'" + text)


def _png(figure: plt.Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _plots(reports: Mapping[str, KpiReport]) -> dict[str, str]:
    runs = list(reports)
    figure, axis = plt.subplots(figsize=(7, 3.5))
    overdue = pd.DataFrame(
        {run: r.overdue.set_index("bucket")["open_amount"] for run, r in reports.items()}
    )
    overdue.plot.bar(ax=axis, rot=0, ylabel="open amount")
    axis.set_title("Open receivables by days past due")
    plots = {"overdue buckets": _png(figure)}

    figure, axes = plt.subplots(1, 4, figsize=(13, 3.5), sharey=True)
    for axis, rate in zip(
        axes, ("delivery_rate", "open_rate", "click_rate", "pay_rate"), strict=True
    ):
        table = pd.DataFrame(
            {run: r.channels.set_index("channel")[rate] for run, r in reports.items()}
        )
        table.plot.bar(ax=axis, rot=0, legend=axis is axes[0])
        axis.set_title(rate.replace("_", " "))
        axis.set_ylim(0, 1)
    plots["per-channel rates"] = _png(figure)

    figure, axis = plt.subplots(figsize=(7, 3.5))
    for run in runs:
        monthly = reports[run].on_time_by_month
        axis.plot(monthly["due_month"], monthly["on_time_rate"], marker="o", label=run)
    axis.set_ylim(0, 1)
    axis.set_title("On-time payment rate by due month")
    axis.tick_params(axis="x", rotation=45)
    axis.legend()
    plots["on-time rate by month"] = _png(figure)
    return plots


def write_kpi_report(reports: Mapping[str, KpiReport], out_dir: Path) -> KpiFiles:
    """Write ``kpis.html`` (plots embedded) and ``kpis.csv`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = kpi_rows(reports)
    safe = rows.assign(run=spreadsheet_safe(rows["run"]), group=spreadsheet_safe(rows["group"]))
    csv_path = out_dir / CSV_NAME
    safe.to_csv(csv_path, index=False)

    summary = compare_kpis(reports)
    sections = [f"<h2>Summary</h2>{summary.to_html(float_format=lambda v: f'{v:,.4g}')}"]
    for title, image in _plots(reports).items():
        sections.append(f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
                        f'src="data:image/png;base64,{image}">')  # fmt: skip
    for run, report in reports.items():
        name = html.escape(run)
        channels = report.channels.to_html(index=False, float_format=lambda v: f"{v:.3f}")
        overdue = report.overdue.to_html(index=False, float_format=lambda v: f"{v:,.2f}")
        sections.append(f"<h2>Channels: {name}</h2>{channels}")
        sections.append(f"<h2>Overdue buckets: {name}</h2>{overdue}")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>PayNudge KPIs</title>"
            "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style></head>"
            f"<body><h1>Collection KPIs</h1>{''.join(sections)}</body></html>")  # fmt: skip
    html_path = out_dir / HTML_NAME
    html_path.write_text(page, encoding="utf-8")
    return KpiFiles(html=html_path, csv=csv_path)
