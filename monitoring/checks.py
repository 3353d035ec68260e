"""The library functions behind ``paynudge monitor drift`` and ``paynudge monitor check``.

A check reads the decisions logged since a date, compares them with the champion's training
data, writes and logs the reports, and raises the alarms of :mod:`monitoring.alarms`. With
``retrain`` and an alarm, it trains a challenger on the fresh dataset (rebuilt with
``paynudge features build``) and leaves promotion to the registry's rule: the challenger becomes
champion only if it beats the champion on its own, newer test rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from monitoring.decision_window import read_window
from monitoring.drift import drift_report
from monitoring.publish import PublishedCheck, publish_check
from monitoring.reference import load_monitored, load_reference
from paynudge.config import Settings
from serving.decision_log import default_log_path
from training.pipeline import TrainResult, train_model


@dataclass(frozen=True)
class CheckOutcome:
    """The published check and, when it retrained, the challenger's training and promotion."""

    check: PublishedCheck
    retrained: TrainResult | None


def run_drift(
    model: str,
    settings: Settings,
    since: pd.Timestamp,
    until: pd.Timestamp | None = None,
    log_path: Path | None = None,
) -> PublishedCheck:
    """Drift (and performance) reports of the champion of ``model`` over ``[since, until)``."""
    monitored = load_monitored(model, settings)
    reference = load_reference(monitored, settings)
    window = read_window(
        log_path if log_path is not None else default_log_path(settings),
        since,
        until,
        grace_days=settings.late_grace_days,
        model=model,
        max_rows=settings.monitoring.max_rows,
        seed=settings.monitoring.seed,
    )
    result = drift_report(monitored, reference, window, settings.monitoring)
    return publish_check(result, monitored, settings)


def run_check(
    model: str,
    settings: Settings,
    since: pd.Timestamp,
    until: pd.Timestamp | None = None,
    log_path: Path | None = None,
    *,
    retrain: bool = False,
    data: Path | None = None,
) -> CheckOutcome:
    """A drift check; with ``retrain`` and an alarm, a challenger promoted only by the rule."""
    check = run_drift(model, settings, since, until, log_path)
    if not (retrain and check.alarms):
        return CheckOutcome(check, None)
    return CheckOutcome(check, train_model(model, settings, data=data, promote=True))
