"""Model scores in the policy's context: the registered champions' probabilities.

The late-payment score tells the policy whom a reminder is for; the churn score lets it avoid
pushing customers who are about to leave. Scores come from the champions in our own registry
(by alias, never from a path); without both champions the context simply has no score columns,
and the policy records which it was trained with, so serving builds the same context.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from paynudge.config import Settings
from paynudge.errors import PayNudgeError

SCORE_MODELS = {"late_payment_probability": "late_payment", "churn_probability": "churn"}
"""Context column -> model spec whose champion produces it."""

Scorer = Callable[[pd.DataFrame], pd.DataFrame]


def champion_versions(settings: Settings) -> dict[str, str] | None:
    """Registered name and version of each score model's champion, or None if one is missing."""
    from training.registry import CHAMPION, version_by_alias
    from training.tracking import connect

    client = connect(settings)
    versions = {}
    for column, spec in SCORE_MODELS.items():
        name = settings.registered_model_name(spec)
        found = version_by_alias(client, name, CHAMPION)
        if found is None:
            return None
        versions[column] = f"{name}/{found.version}"
    return versions


def registry_scorer(settings: Settings) -> Scorer | None:
    """A scorer from the score models' champions, or None when a champion is missing."""
    if champion_versions(settings) is None:
        return None
    from training.registry import load_model

    models = {
        column: load_model(settings.registered_model_name(spec), settings)
        for column, spec in SCORE_MODELS.items()
    }

    def score(features: pd.DataFrame) -> pd.DataFrame:
        try:
            return pd.DataFrame(
                {column: np.asarray(model.predict(features)) for column, model in models.items()},
                index=features.index,
            )
        except Exception as error:  # MLflow raises its own types for schema mismatches
            raise PayNudgeError(f"scoring the policy context failed: {error}") from None

    return score
