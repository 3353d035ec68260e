"""When a drift summary calls for retraining: thresholds from ``settings.monitoring``.

Three alarms, each with the evidence in words: data drift (the share of drifted features),
prediction drift (the score's distribution moved) and performance (the ROC-AUC on labelled
decisions fell below the version's test AUC by more than the allowed drop).
"""

from __future__ import annotations

from dataclasses import dataclass

from monitoring.drift import DriftSummary
from paynudge.config import MonitoringSettings

SHOWN_FEATURES = 5


@dataclass(frozen=True)
class Alarm:
    """One reason to retrain: which alarm, and the numbers behind it."""

    kind: str
    evidence: str


def raised_alarms(summary: DriftSummary, settings: MonitoringSettings) -> tuple[Alarm, ...]:
    """The alarms ``summary`` raises under the thresholds of ``settings`` (none: all well)."""
    alarms = []
    share = summary.drifted_share
    if share >= settings.drifted_share_threshold:
        top = ", ".join(
            f"{c.column} {c.score:.2f}" for c in summary.drifted_features[:SHOWN_FEATURES]
        )
        alarms.append(
            Alarm(
                "data_drift",
                f"{len(summary.drifted_features)} of {len(summary.features)} features drifted "
                f"({share:.0%} >= {settings.drifted_share_threshold:.0%}); strongest: {top}",
            )
        )
    prediction = summary.prediction
    if prediction.score >= settings.prediction_drift_threshold:
        alarms.append(
            Alarm(
                "prediction_drift",
                f"late-payment score drift {prediction.score:.3f} ({prediction.method}) >= "
                f"{settings.prediction_drift_threshold}",
            )
        )
    if (
        summary.current_auc is not None
        and summary.reference_auc is not None
        and summary.labelled_rows >= settings.min_labelled_rows
        and summary.reference_auc - summary.current_auc >= settings.auc_drop_threshold
    ):
        alarms.append(
            Alarm(
                "performance",
                f"ROC-AUC {summary.current_auc:.4f} on {summary.labelled_rows:,} labelled "
                f"decisions vs {summary.reference_auc:.4f} at training "
                f"(drop >= {settings.auc_drop_threshold})",
            )
        )
    return tuple(alarms)
