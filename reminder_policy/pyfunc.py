"""The reminder policy as an MLflow model: ``predict(df)`` gives each action's probability.

:class:`PolicyModel` wraps a fitted :class:`reminder_policy.learner.ContextualBandit` stored as
VW bytes plus a JSON spec (context columns, action names, the model versions whose scores are in
the context). Input: a frame with the context columns and, optionally, one boolean column
``allowed:<action>`` per action (the guardrail mask; all allowed when absent). Output: a frame
with one probability column per action. Load it only from our own registry, by alias.
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types import ColSpec, DataType, Schema

from paynudge.errors import DataError
from reminder_policy.learner import ContextualBandit

MODEL_NAME = "policy"
BANDIT_ARTIFACT = "bandit"
SPEC_ARTIFACT = "spec"
MASK_PREFIX = "allowed:"
CODE_PACKAGES = ("reminder_policy", "paynudge")
REQUIREMENTS = ("mlflow", "vowpalwabbit", "pandas", "numpy", "pydantic", "pydantic-settings")


def mask_from_frame(frame: pd.DataFrame, actions: tuple[str, ...]) -> np.ndarray | None:
    """The ``allowed:<action>`` columns of ``frame`` as an (n, n_actions) mask, if present."""
    columns = [f"{MASK_PREFIX}{name}" for name in actions]
    present = [column in frame.columns for column in columns]
    if not any(present):
        return None
    if not all(present):
        missing = columns[present.index(False)]
        raise DataError(f"{missing}: give an allowed: column for every action or for none")
    return frame[columns].to_numpy(dtype=bool)


class PolicyModel(PythonModel):
    """Action probabilities of the contextual bandit, one row per decision."""

    def load_context(self, context: PythonModelContext) -> None:
        self.bandit_ = ContextualBandit.from_bytes(
            Path(context.artifacts[BANDIT_ARTIFACT]).read_bytes()
        )
        self.spec_ = json.loads(Path(context.artifacts[SPEC_ARTIFACT]).read_text())

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: Any = None
    ) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        columns = list(self.spec_["context_columns"])
        missing = [column for column in columns if column not in frame.columns]
        if missing:
            raise DataError(f"policy input lacks context column(s) {missing[:5]}")
        actions = tuple(self.spec_["actions"])
        dist = self.bandit_.action_distribution(
            frame[columns].to_numpy(dtype=np.float64), mask_from_frame(frame, actions)
        )
        return pd.DataFrame(dist, columns=list(actions), index=frame.index)


def policy_signature(
    example: pd.DataFrame, output: pd.DataFrame, actions: list[str]
) -> ModelSignature:
    """Context columns required, one optional boolean ``allowed:<action>`` column per action."""
    inferred = infer_signature(example, output)
    optional = [
        ColSpec(DataType.boolean, f"{MASK_PREFIX}{name}", required=False) for name in actions
    ]
    assert inferred.inputs is not None
    return ModelSignature(
        inputs=Schema([*inferred.inputs.inputs, *optional]), outputs=inferred.outputs
    )


def log_policy_model(
    bandit: ContextualBandit, spec: dict[str, Any], example: pd.DataFrame
) -> ModelInfo:
    """Log the policy as a pyfunc model of the active run, with signature and input example."""
    code_root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as folder:
        bandit_path = Path(folder) / "bandit.vw"
        bandit_path.write_bytes(bandit.to_bytes())
        spec_path = Path(folder) / "spec.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        dist = bandit.action_distribution(example[spec["context_columns"]].to_numpy())
        output = pd.DataFrame(dist, columns=spec["actions"])
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME,
            python_model=PolicyModel(),
            artifacts={BANDIT_ARTIFACT: str(bandit_path), SPEC_ARTIFACT: str(spec_path)},
            code_paths=[str(code_root / package) for package in CODE_PACKAGES],
            signature=policy_signature(example, output, spec["actions"]),
            input_example=example,
            pip_requirements=[f"{p}=={version(p)}" for p in REQUIREMENTS],
        )
