"""The MLflow model of a trained estimator: ``predict(df)`` is the calibrated positive probability.

:class:`ProbabilityModel` wraps a fitted :class:`training.model.CalibratedLightGBM` stored as a
joblib artifact next to the model, with the ``training`` package logged as code so the model
loads wherever PayNudge's dependencies are installed. Pickled models execute code when loaded:
load them only from our own registry (:func:`training.registry.load_model`), never from a path
or URL someone sends.
"""

from __future__ import annotations

import tempfile
import warnings
from importlib.metadata import version
from pathlib import Path
from typing import Any

import joblib
import mlflow
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel, PythonModelContext

MODEL_NAME = "model"
ESTIMATOR_ARTIFACT = "estimator"
OUTPUT_NAME = "probability"
CODE_PACKAGES = ("training",)
REQUIREMENTS = ("mlflow", "lightgbm", "scikit-learn", "pandas", "numpy", "joblib")


class ProbabilityModel(PythonModel):
    """Calibrated probability of the positive class, one value per input row."""

    def load_context(self, context: PythonModelContext) -> None:
        self.estimator_ = joblib.load(context.artifacts[ESTIMATOR_ARTIFACT])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.Series:
        """Score the estimator's features of ``model_input`` (other columns are ignored)."""
        features = pd.DataFrame(model_input)[list(self.estimator_.feature_names_)]
        probability = self.estimator_.predict_proba(features)[:, 1]
        return pd.Series(probability, index=features.index, name=OUTPUT_NAME)


def pip_requirements() -> list[str]:
    """Pinned requirements of the logged model (stated, so MLflow need not infer them)."""
    return [f"{package}=={version(package)}" for package in REQUIREMENTS]


def model_signature(estimator: Any, example: pd.DataFrame) -> ModelSignature:
    """Input columns and types from ``example``; output: one probability per row."""
    probability = estimator.predict_proba(example)[:, 1]
    with warnings.catch_warnings():  # the hint that integers cannot hold missing values
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        return infer_signature(example, pd.Series(probability, name=OUTPUT_NAME))


def log_probability_model(estimator: Any, example: pd.DataFrame) -> ModelInfo:
    """Log ``estimator`` as a pyfunc model of the active run, with signature and input example.

    The signature keeps the features' own types (integers stay integers: MLflow will not cast
    int64 to float64), so callers send what the datasets hold.
    """
    code_root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as folder:
        estimator_path = Path(folder) / "estimator.joblib"
        joblib.dump(estimator, estimator_path)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=ProbabilityModel(),
            artifacts={ESTIMATOR_ARTIFACT: str(estimator_path)},
            code_paths=[str(code_root / package) for package in CODE_PACKAGES],
            signature=model_signature(estimator, example),
            input_example=example,
            pip_requirements=pip_requirements(),
        )
