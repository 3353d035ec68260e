"""Drift checks on real simulated windows: a market shift is found, the same world is not."""

from __future__ import annotations

import json

import numpy as np
from mlflow.tracking import MlflowClient

from monitoring.alarms import raised_alarms
from monitoring.checks import run_check
from monitoring.decision_window import read_window
from monitoring.drift import drift_report
from monitoring.publish import LAST_DRIFT_TAG, VERSION_TAG
from monitoring.reference import load_monitored, load_reference
from tests.monitoring.conftest import SINCE, UNTIL, Monitored


def test_a_market_shift_raises_the_alarms_with_evidence(monitored: Monitored) -> None:
    outcome = run_check("late_payment", monitored.settings, SINCE, UNTIL, monitored.shifted_log)
    check = outcome.check
    kinds = {alarm.kind for alarm in check.alarms}
    assert {"data_drift", "prediction_drift"} <= kinds
    summary = check.result.summary
    assert summary.current_late_rate > summary.reference_late_rate + 0.05  # label drift
    assert summary.label is not None and summary.label.drifted
    drifted = {c.column for c in summary.drifted_features}
    assert {"amount_to_fee", "open_balance"} <= drifted  # the price rise and unpaid bills
    assert outcome.retrained is None  # no --retrain


def test_the_same_distribution_raises_no_alarm(monitored: Monitored) -> None:
    check = run_check("late_payment", monitored.settings, SINCE, UNTIL, monitored.same_log).check
    assert check.alarms == ()
    assert check.result.summary.prediction.score < 0.5 * check.result.summary.prediction.threshold


def test_reports_are_saved_and_logged_against_the_version(monitored: Monitored) -> None:
    check = run_check("late_payment", monitored.settings, SINCE, UNTIL, monitored.shifted_log).check
    for name in (
        "drift.html",
        "drift.json",
        "performance.html",
        "performance.json",
        "summary.json",
        "drift_scores.png",
    ):
        assert (check.folder / name).stat().st_size > 0, name
    summary = json.loads((check.folder / "summary.json").read_text())
    assert summary["version"] == check.result.summary.version == "1"
    assert summary["serving_versions"] == ["late_payment/1"]
    assert "ValueDrift" in (check.folder / "drift.json").read_text()
    client = MlflowClient(monitored.settings.mlflow_tracking_uri)
    run = client.get_run(check.run_id)
    assert run.data.tags[VERSION_TAG] == "late_payment/1"
    assert run.data.metrics["drifted_share"] == summary["drifted_share"]
    artifacts = {a.path for a in client.list_artifacts(check.run_id, "monitoring/drift")}
    assert "monitoring/drift/drift.html" in artifacts
    version = client.get_model_version("late_payment", "1")
    assert version.tags[LAST_DRIFT_TAG] == check.run_id


def test_sampling_keeps_the_verdicts(monitored: Monitored) -> None:
    """Sampling the current window (monitoring.max_rows) costs little sensitivity: 90% of the
    scores of a 1,000-row sample stay within 0.08 of the full window's (the error shrinks as
    1/sqrt(rows): about 0.006 at the default 200,000), the share of drifted features moves by
    less than 0.1, and the alarms stay the same."""
    settings = monitored.settings
    model = load_monitored("late_payment", settings)
    reference = load_reference(model, settings)
    window = read_window(monitored.shifted_log, SINCE, UNTIL)
    full = drift_report(model, reference, window, settings.monitoring).summary
    small = settings.monitoring.model_copy(update={"max_rows": 1000})
    sampled = drift_report(model, reference, window, small).summary
    assert sampled.sampled_rows == 1000 < full.sampled_rows
    by_column = {c.column: c for c in sampled.features}
    gaps = np.array([abs(c.score - by_column[c.column].score) for c in full.features])
    assert np.quantile(gaps, 0.9) < 0.08
    assert abs(sampled.drifted_share - full.drifted_share) < 0.1
    kinds = {a.kind for a in raised_alarms(full, settings.monitoring)}
    assert kinds == {a.kind for a in raised_alarms(sampled, small)}
