"""Files logged with every model run: curves, calibration, SHAP summaries, features, manifest.

Each plot is a function of arrays returning a matplotlib figure; :func:`write_run_artifacts`
writes them all, with the feature list, the dataset manifest and the test set (features and the
0/1 target, so a later champion/challenger comparison scores both models on the same rows).
Figures are plain matplotlib ``Figure`` objects rendered to PNG by Agg: no display and no
pyplot state, so training runs on servers and never changes a notebook's backend.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from training.specs import binary_target

TARGET_COLUMN = "__target__"
TEST_SET = "evaluation/test.parquet"
HASH_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ArtifactOptions:
    """How much of the test set the artifacts look at, and how figures are drawn."""

    shap_sample_rows: int = 1000  # SHAP values of a random test sample: a beeswarm needs no more
    shap_max_display: int = 20  # features shown in the SHAP plots
    calibration_bins: int = 10  # equal-frequency bins of the reliability diagram
    input_example_rows: int = 5  # first test rows logged as the model's input example
    dpi: int = 110
    seed: int = 0


def roc_figure(y_true: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    """ROC curves of the model and its baselines, with the chance diagonal."""
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for name, probability in probabilities.items():
        false_positive, true_positive, _ = roc_curve(y_true, probability)
        auc = roc_auc_score(y_true, probability)
        axes.plot(false_positive, true_positive, label=f"{name} (AUC {auc:.3f})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC curve")
    axes.legend(loc="lower right")
    return figure


def pr_figure(y_true: np.ndarray, probabilities: dict[str, np.ndarray]) -> Figure:
    """Precision-recall curves of the model and its baselines, with the base rate."""
    figure = Figure(figsize=(5, 5))
    axes = figure.subplots()
    for name, probability in probabilities.items():
        precision, recall, _ = precision_recall_curve(y_true, probability)
        pr_auc = average_precision_score(y_true, probability)
        axes.plot(recall, precision, label=f"{name} (PR-AUC {pr_auc:.3f})")
    axes.axhline(float(np.mean(y_true)), linestyle="--", color="grey", label="base rate")
    axes.set(xlabel="recall", ylabel="precision", title="Precision-recall curve", ylim=(0, 1.02))
    axes.legend(loc="upper right")
    return figure


def calibration_figure(y_true: np.ndarray, probability: np.ndarray, bins: int) -> Figure:
    """Reliability diagram (observed rate per predicted-probability bin) over a histogram."""
    observed, predicted = calibration_curve(y_true, probability, n_bins=bins, strategy="quantile")
    figure = Figure(figsize=(5, 6))
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    top.plot(predicted, observed, marker="o", label="model")
    top.set(ylabel="observed positive rate", title="Calibration (reliability diagram)")
    top.legend(loc="upper left")
    bottom.hist(probability, bins=50, range=(0, 1), color="tab:blue")
    bottom.set(xlabel="predicted probability", ylabel="rows")
    return figure


def numeric_view(features: pd.DataFrame) -> pd.DataFrame:
    """Features as floats for colouring SHAP plots: categories become their codes."""
    view = {}
    for column in features.columns:
        values = features[column]
        if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
            view[column] = values.astype(float)
        else:
            codes = values.astype("category").cat.codes.astype(float)
            view[column] = codes.where(codes >= 0)
    return pd.DataFrame(view, index=features.index)


def shap_figures(
    contributions: pd.DataFrame, features: pd.DataFrame, max_display: int
) -> tuple[Figure, Figure]:
    """SHAP beeswarm and mean |SHAP| bar plot from precomputed contributions (``bias`` dropped)."""
    import shap  # 4 s to import (numba); only runs that draw SHAP plots pay for it

    explanation = shap.Explanation(
        values=contributions[list(features.columns)].to_numpy(),
        data=numeric_view(features).to_numpy(),
        feature_names=[str(column) for column in features.columns],
    )
    height = 0.4 * min(max_display, features.shape[1]) + 1.5
    beeswarm = Figure(figsize=(8, height))
    shap.plots.beeswarm(
        explanation, max_display=max_display, ax=beeswarm.subplots(), show=False, plot_size=None
    )
    importance = Figure(figsize=(8, height))
    shap.plots.bar(explanation, max_display=max_display, ax=importance.subplots(), show=False)
    return beeswarm, importance


def file_hash(path: Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def table_manifest(path: Path, frame: pd.DataFrame, test_path: Path | None) -> dict[str, Any]:
    """A manifest for a bring-your-own table: rows, columns and the hash of each file."""
    manifest: dict[str, Any] = {
        "path": str(path),
        "rows": len(frame),
        "columns": [str(column) for column in frame.columns],
        "data_hash": file_hash(path),
    }
    if test_path is not None:
        manifest["test_path"] = str(test_path)
        manifest["test_data_hash"] = file_hash(test_path)
    return manifest


def save_figure(figure: Figure, path: Path, dpi: int) -> None:
    """Write ``figure`` as PNG (rendered by Agg: no display, no global pyplot state)."""
    figure.savefig(path, dpi=dpi, bbox_inches="tight")


def write_run_artifacts(
    evaluation: Any, manifest: dict[str, Any], folder: Path, options: ArtifactOptions
) -> Path:
    """Write every artifact of a trained :class:`training.tabular.Evaluation` into ``folder``."""
    spec, model, test = evaluation.spec, evaluation.model, evaluation.split.test
    features = test[list(spec.features)]
    y_true = binary_target(test, spec)
    probability = np.asarray(evaluation.test_probability)
    curves = {"lightgbm": probability, **evaluation.baseline_probability}
    (folder / "plots").mkdir(parents=True, exist_ok=True)
    (folder / "evaluation").mkdir(parents=True, exist_ok=True)
    plots = {
        "roc_curve.png": roc_figure(y_true, curves),
        "pr_curve.png": pr_figure(y_true, curves),
        "calibration.png": calibration_figure(y_true, probability, options.calibration_bins),
    }
    sample = features.sample(
        n=min(options.shap_sample_rows, len(features)), random_state=options.seed
    )
    beeswarm, importance = shap_figures(
        model.contributions(sample), sample, options.shap_max_display
    )
    plots |= {"shap_beeswarm.png": beeswarm, "shap_importance.png": importance}
    for file_name, figure in plots.items():
        save_figure(figure, folder / "plots" / file_name, options.dpi)
    feature_list = {
        "features": list(spec.features),
        "categorical": list(spec.categorical),
        "label": spec.label,
        "positive": spec.positive,
    }
    (folder / "features.json").write_text(json.dumps(feature_list, indent=2, default=str))
    (folder / "dataset_manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    features.assign(**{TARGET_COLUMN: y_true}).to_parquet(folder / TEST_SET, index=False)
    return folder
