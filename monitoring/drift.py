"""Drift and performance of a model: Evidently 0.7 reports of the current window vs. its reference.

Two Evidently snapshots per check. *Drift*: ``DataDriftPreset`` over every feature, the model's
score (prediction drift) and the label (label drift, on the decisions whose outcome is known).
*Performance*: ``ClassificationPreset`` on the labelled decisions, once there are
``monitoring.min_labelled_rows`` of them. Numbers are compared by the Wasserstein distance
normed by the reference's standard deviation, categories by the Jensen-Shannon distance, both
against ``monitoring.column_drift_threshold``, whatever the sample size (Evidently would switch
to p-value tests below 1,000 rows, whose verdicts mean something else). Windows larger than
``monitoring.max_rows`` are sampled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from evidently import BinaryClassification, DataDefinition, Dataset, Report
from evidently.core.report import Snapshot
from evidently.presets import ClassificationPreset, DataDriftPreset
from sklearn.metrics import roc_auc_score

from monitoring.decision_window import DecisionWindow
from monitoring.reference import MonitoredModel, Reference
from paynudge.config import MonitoringSettings
from paynudge.errors import DataError

PREDICTION = "late_payment_probability"
LABEL = "late"
NUMERIC_METHOD = "wasserstein"
CATEGORY_METHOD = "jensenshannon"


@dataclass(frozen=True)
class ColumnDrift:
    """One column's drift score, the method and threshold it was judged by, and the verdict."""

    column: str
    method: str
    score: float
    threshold: float

    @property
    def drifted(self) -> bool:
        return bool(self.score >= self.threshold)


@dataclass(frozen=True)
class DriftSummary:
    """What a check found, in numbers an alarm can be raised on."""

    model: str
    version: str
    window: tuple[str, str | None]
    reference_rows: int
    current_rows: int
    sampled_rows: int
    labelled_rows: int
    features: tuple[ColumnDrift, ...]
    prediction: ColumnDrift
    label: ColumnDrift | None
    reference_auc: float | None
    current_auc: float | None
    current_late_rate: float | None
    reference_late_rate: float
    serving_versions: tuple[str, ...] = field(default=())

    @property
    def drifted_features(self) -> tuple[ColumnDrift, ...]:
        """Drifted feature columns, strongest first."""
        drifted = [column for column in self.features if column.drifted]
        return tuple(sorted(drifted, key=lambda c: c.score / c.threshold, reverse=True))

    @property
    def drifted_share(self) -> float:
        return len(self.drifted_features) / max(len(self.features), 1)


@dataclass(frozen=True)
class DriftResult:
    """The summary and the Evidently snapshots behind it (performance only with labels)."""

    summary: DriftSummary
    drift: Snapshot
    performance: Snapshot | None


def _column_kinds(features: pd.DataFrame, categorical: tuple[str, ...]) -> tuple[list, list]:
    numeric, category = [], []
    for column in features.columns:
        is_bool = pd.api.types.is_bool_dtype(features[column])
        (category if column in categorical or is_bool else numeric).append(str(column))
    return numeric, category


def evidently_frame(
    features: pd.DataFrame, category: list[str], probability: np.ndarray, label: np.ndarray
) -> pd.DataFrame:
    """Features with categories and flags as text, plus the score and the label columns."""
    frame = features.copy()
    for column in category:
        values = frame[column].astype(object)
        frame[column] = values.where(values.notna(), None).map(
            lambda v: None if v is None else str(v).lower()
        )
    frame[PREDICTION] = np.asarray(probability, dtype=float)
    frame[LABEL] = np.asarray(label, dtype=float)
    return frame


def _sample(n: int, limit: int, seed: int) -> np.ndarray:
    if n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=limit, replace=False))


def _definition(
    numeric: list[str], category: list[str], with_task: bool, with_label: bool = True
) -> DataDefinition:
    task = [BinaryClassification(target=LABEL, prediction_probas=PREDICTION, pos_label=1)]
    return DataDefinition(
        numerical_columns=[*numeric, PREDICTION],
        categorical_columns=[*category, *([LABEL] if with_label else [])],
        classification=task if with_task else None,
    )


def _value_drifts(snapshot: Snapshot) -> dict[str, ColumnDrift]:
    drifts = {}
    for metric in snapshot.dict()["metrics"]:
        config: dict[str, Any] = metric.get("config", {})
        if config.get("type") == "evidently:metric_v2:ValueDrift":
            column = str(config["column"])
            drifts[column] = ColumnDrift(
                column, str(config["method"]), float(metric["value"]), float(config["threshold"])
            )
    return drifts


def _auc(label: np.ndarray, probability: np.ndarray) -> float | None:
    if len(np.unique(label)) < 2:
        return None
    return float(roc_auc_score(label, probability))


def drift_report(
    model: MonitoredModel,
    reference: Reference,
    window: DecisionWindow,
    settings: MonitoringSettings,
) -> DriftResult:
    """Run the drift (and, with enough labels, performance) reports of ``window``."""
    if len(window) < settings.min_current_rows:
        raise DataError(
            f"the decision log holds {len(window)} decisions of {model.name} since "
            f"{window.since:%Y-%m-%d}; a report needs at least {settings.min_current_rows} "
            "(monitoring.min_current_rows)"
        )
    features = list(model.spec.features)
    numeric, category = _column_kinds(reference.features[features], model.spec.categorical)
    rows = _sample(len(window), settings.max_rows, settings.seed)
    ref = evidently_frame(
        reference.features[features], category, reference.probability, reference.label
    )
    cur = evidently_frame(
        window.features.iloc[rows][features].reset_index(drop=True),
        category,
        window.probability[rows],
        window.label[rows],
    )
    threshold = settings.column_drift_threshold
    preset = DataDriftPreset(
        num_method=NUMERIC_METHOD, cat_method=CATEGORY_METHOD, threshold=threshold
    )
    labelled = ~np.isnan(cur[LABEL].to_numpy())
    # no outcome reported yet: the label has nothing to drift on (Evidently refuses empty columns)
    definition = _definition(numeric, category, with_task=False, with_label=bool(labelled.any()))
    drift_columns = [c for c in cur.columns if labelled.any() or c != LABEL]
    drift = Report([preset]).run(
        Dataset.from_pandas(cur[drift_columns], data_definition=definition),
        Dataset.from_pandas(ref[drift_columns], data_definition=definition),
    )
    drifts = _value_drifts(drift)
    performance, current_auc = None, None
    if labelled.sum() >= settings.min_labelled_rows:
        task = _definition(numeric, category, with_task=True)
        known = cur[labelled].assign(**{LABEL: cur.loc[labelled, LABEL].astype(int)})
        performance = Report([ClassificationPreset()]).run(
            Dataset.from_pandas(known, data_definition=task),
            Dataset.from_pandas(
                ref.assign(**{LABEL: ref[LABEL].astype(int)}), data_definition=task
            ),
        )
        current_auc = _auc(known[LABEL].to_numpy(), known[PREDICTION].to_numpy())
    summary = DriftSummary(
        model=model.name,
        version=model.version,
        window=(window.since.isoformat(), window.until.isoformat() if window.until else None),
        reference_rows=len(ref),
        current_rows=max(window.total_rows, len(window)),
        sampled_rows=len(rows),
        labelled_rows=int(labelled.sum()),
        features=tuple(drifts[column] for column in features if column in drifts),
        prediction=drifts[PREDICTION],
        label=drifts.get(LABEL) if labelled.any() else None,
        reference_auc=model.metrics.get("roc_auc"),
        current_auc=current_auc,
        current_late_rate=float(cur.loc[labelled, LABEL].mean()) if labelled.any() else None,
        reference_late_rate=float(np.mean(reference.label)),
        serving_versions=window.model_versions,
    )
    return DriftResult(summary, drift, performance)
