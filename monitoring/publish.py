"""Write a drift check to ``HOME/reports/drift`` and log it to MLflow against the model version.

A check's folder holds the Evidently pages (``drift.html``, ``performance.html`` once labels
arrived) with their JSON, a bar chart of the drift scores, and ``summary.json`` (version, window,
scores, alarms) that the reports index reads. The same files go to a ``drift`` run in the
model's experiment, tagged with the version; the version gets a tag naming that run.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import mlflow
from matplotlib.figure import Figure

from monitoring.alarms import Alarm, raised_alarms
from monitoring.drift import ColumnDrift, DriftResult
from monitoring.reference import MonitoredModel
from paynudge.config import Settings
from training.tracking import KIND_TAG, MODEL_RUN_TAG, connect, experiment_id, start_run

DRIFT_FOLDER = "drift"
SUMMARY_FILE = "summary.json"
SCORES_PLOT = "drift_scores.png"
SHOWN_COLUMNS = 20
VERSION_TAG = "paynudge.model_version"
LAST_DRIFT_TAG = "monitoring.last_drift_run"
DPI = 110


@dataclass(frozen=True)
class PublishedCheck:
    """Where a check's report went, and what it found."""

    folder: Path
    run_id: str
    alarms: tuple[Alarm, ...]
    result: DriftResult


def scores_figure(columns: list[ColumnDrift], threshold: float) -> Figure:
    """The strongest drift scores (features, score and label) against the threshold."""
    shown = sorted(columns, key=lambda c: c.score, reverse=True)[:SHOWN_COLUMNS][::-1]
    figure = Figure(figsize=(8, 0.3 * len(shown) + 1.5))
    axes = figure.subplots()
    colours = ["tab:red" if c.drifted else "tab:blue" for c in shown]
    axes.barh([c.column for c in shown], [c.score for c in shown], color=colours)
    axes.axvline(threshold, linestyle="--", color="grey", label=f"threshold {threshold:g}")
    axes.set(xlabel="drift score (Wasserstein normed / Jensen-Shannon)", title="Drift by column")
    axes.legend(loc="lower right")
    return figure


def summary_record(check: DriftResult, alarms: tuple[Alarm, ...], created: str) -> dict:
    """The JSON summary of a check (what the index and ``monitor check`` show)."""
    summary = check.summary
    return {
        **asdict(summary),
        "created": created,
        "drifted_share": summary.drifted_share,
        "drifted_features": [c.column for c in summary.drifted_features],
        "alarms": [asdict(alarm) for alarm in alarms],
        "performance_report": check.performance is not None,
    }


def write_check(check: DriftResult, alarms: tuple[Alarm, ...], folder: Path) -> dict:
    """Evidently pages and JSON, the scores chart and the summary, into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    check.drift.save_html(str(folder / "drift.html"))
    check.drift.save_json(str(folder / "drift.json"))
    if check.performance is not None:
        check.performance.save_html(str(folder / "performance.html"))
        check.performance.save_json(str(folder / "performance.json"))
    summary = check.summary
    columns = [*summary.features, summary.prediction, *([summary.label] if summary.label else [])]
    threshold = summary.prediction.threshold
    scores_figure(columns, threshold).savefig(folder / SCORES_PLOT, dpi=DPI, bbox_inches="tight")
    record = summary_record(check, alarms, datetime.now(UTC).isoformat(timespec="seconds"))
    (folder / SUMMARY_FILE).write_text(json.dumps(record, indent=2, default=str))
    return record


def log_check(folder: Path, record: dict, model: MonitoredModel, settings: Settings) -> str:
    """Log the check's files and headline numbers to a ``drift`` run of the model's experiment."""
    client = connect(settings)
    experiment = experiment_id(client, model.name, settings)
    tags = {KIND_TAG: "drift", VERSION_TAG: model.label, MODEL_RUN_TAG: model.run_id}
    metrics = {
        "drifted_share": record["drifted_share"],
        "prediction_drift": record["prediction"]["score"],
        "current_rows": float(record["current_rows"]),
        "labelled_rows": float(record["labelled_rows"]),
        "alarms": float(len(record["alarms"])),
    }
    if record["label"] is not None:
        metrics["label_drift"] = record["label"]["score"]
    if record["current_auc"] is not None:
        metrics["current_roc_auc"] = record["current_auc"]
    with start_run(client, experiment, f"drift-v{model.version}", tags) as run:
        mlflow.log_params(
            {"window_since": record["window"][0], "window_until": record["window"][1]}
        )
        mlflow.log_metrics(metrics)
        mlflow.log_artifacts(str(folder), "monitoring/drift")
    client.set_model_version_tag(model.name, model.version, LAST_DRIFT_TAG, run.info.run_id)
    return str(run.info.run_id)


def publish_check(check: DriftResult, model: MonitoredModel, settings: Settings) -> PublishedCheck:
    """Raise the alarms, write the folder, log to MLflow."""
    alarms = raised_alarms(check.summary, settings.monitoring)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = settings.reports_directory / DRIFT_FOLDER / model.name / f"v{model.version}-{stamp}"
    record = write_check(check, alarms, folder)
    run_id = log_check(folder, record, model, settings)
    return PublishedCheck(folder, run_id, alarms, check)
