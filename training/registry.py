"""The model registry: every new version is the ``challenger``; the rule decides the ``champion``.

Promotion rule: a challenger becomes champion when there is no champion yet, or when, scored
together with the champion on the challenger's own test set (logged with its run), its ROC-AUC
is higher and its expected calibration error is at most the champion's plus
``settings.promotion_ece_tolerance`` (0.005 by default). The decision reports the bootstrap
interval of the AUC difference. Models are loaded only from our own registry, by alias.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel
from mlflow.tracking import MlflowClient

from paynudge.config import Settings
from paynudge.errors import DataError, PayNudgeError
from training.artifacts import TARGET_COLUMN, TEST_SET
from training.evaluation import bootstrap_difference, classification_metrics
from training.tracking import connect

CHAMPION = "champion"
CHALLENGER = "challenger"
KEY_METRICS = ("roc_auc", "pr_auc", "ece", "brier")


@dataclass(frozen=True)
class PromotionDecision:
    """Whether the challenger became champion, why, and the comparison behind it."""

    name: str
    challenger_version: str
    champion_version: str | None
    promoted: bool
    reason: str
    auc_difference: float | None = None
    auc_interval: tuple[float, float] | None = None
    challenger_auc: float | None = None
    champion_auc: float | None = None
    challenger_ece: float | None = None
    champion_ece: float | None = None


@dataclass(frozen=True)
class ModelSummary:
    """One registered model version, as ``paynudge models list`` shows it."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str
    metrics: dict[str, float]
    created: pd.Timestamp


def register(client: MlflowClient, name: str, model_uri: str) -> ModelVersion:
    """Register a logged model (linked to its run) as a new version of ``name``: the challenger."""
    version = mlflow.register_model(model_uri, name)
    client.set_registered_model_alias(name, CHALLENGER, str(version.version))
    return version


def version_by_alias(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version of ``name`` holding ``alias``, or None."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def load_model(name: str, settings: Settings, alias: str = CHAMPION) -> PyFuncModel:
    """The pyfunc model of ``name`` holding ``alias`` in our registry (never a path or URL)."""
    client = connect(settings)
    if version_by_alias(client, name, alias) is None:
        raise PayNudgeError(
            f"no {alias} version of model {name!r} in {settings.mlflow_tracking_uri}"
        )
    return mlflow.pyfunc.load_model(f"models:/{name}@{alias}")


def challenger_test_set(client: MlflowClient, version: ModelVersion) -> pd.DataFrame:
    """The test set logged with the challenger's run (features and 0/1 target)."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            if version.run_id is None:
                raise MlflowException(f"version {version.version} has no run")
            path = client.download_artifacts(version.run_id, TEST_SET, folder)
        except (MlflowException, OSError):
            raise DataError(
                f"run {version.run_id} of version {version.version} has no {TEST_SET} to "
                "compare models on; retrain it with `paynudge train`"
            ) from None
        return pd.read_parquet(Path(path))


def move_champion(client: MlflowClient, challenger: ModelVersion, reason: str) -> None:
    """Give the challenger the champion alias, retire its challenger alias, record why."""
    client.set_registered_model_alias(challenger.name, CHAMPION, challenger.version)
    client.delete_registered_model_alias(challenger.name, CHALLENGER)
    client.set_model_version_tag(challenger.name, challenger.version, "promotion", reason)


def compare(
    name: str, challenger: ModelVersion, champion: ModelVersion, client: MlflowClient
) -> PromotionDecision:
    """Score both versions on the challenger's test set; decide by the promotion rule."""
    test = challenger_test_set(client, challenger)
    y_true = test.pop(TARGET_COLUMN).to_numpy()
    scored = {}
    for version in (challenger, champion):
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version.version}")
        try:
            scored[version.version] = np.asarray(model.predict(test), dtype=float)
        except (MlflowException, KeyError, ValueError) as error:
            raise DataError(
                f"version {version.version} of {name!r} cannot score the challenger's test set "
                f"({error}); promote with --force if the features changed on purpose"
            ) from None
    new = classification_metrics(y_true, scored[challenger.version])
    old = classification_metrics(y_true, scored[champion.version])
    difference, low, high = bootstrap_difference(
        y_true, scored[challenger.version], scored[champion.version], "roc_auc"
    )
    return PromotionDecision(
        name=name,
        challenger_version=str(challenger.version),
        champion_version=str(champion.version),
        promoted=False,
        reason="",
        auc_difference=difference,
        auc_interval=(low, high),
        challenger_auc=new["roc_auc"],
        champion_auc=old["roc_auc"],
        challenger_ece=new["ece"],
        champion_ece=old["ece"],
    )


def verdict(decision: PromotionDecision, tolerance: float) -> tuple[bool, str]:
    """The promotion rule applied to a comparison: (promote?, the reason in words)."""
    assert decision.challenger_auc is not None and decision.champion_auc is not None
    assert decision.challenger_ece is not None and decision.champion_ece is not None
    auc = f"ROC-AUC {decision.challenger_auc:.4f} vs {decision.champion_auc:.4f}"
    ece = f"ECE {decision.challenger_ece:.4f} vs {decision.champion_ece:.4f} (+{tolerance:g})"
    if decision.challenger_auc <= decision.champion_auc:
        return False, f"not better: {auc}"
    if decision.challenger_ece > decision.champion_ece + tolerance:
        return False, f"calibration worse: {ece}"
    return True, f"better: {auc}, {ece}"


def promote(name: str, settings: Settings, force: bool = False) -> PromotionDecision:
    """Promote the challenger of ``name`` to champion when the rule holds (or when forced)."""
    client = connect(settings)
    challenger = version_by_alias(client, name, CHALLENGER)
    if challenger is None:
        raise PayNudgeError(
            f"model {name!r} has no challenger to promote; train one with `paynudge train`"
        )
    champion = version_by_alias(client, name, CHAMPION)
    if champion is None or force:
        reason = "no champion yet" if champion is None else "forced"
        move_champion(client, challenger, reason)
        previous = str(champion.version) if champion else None
        return PromotionDecision(name, str(challenger.version), previous, True, reason)
    comparison = compare(name, challenger, champion, client)
    promoted, reason = verdict(comparison, settings.promotion_ece_tolerance)
    if promoted:
        move_champion(client, challenger, reason)
    else:
        client.set_model_version_tag(name, challenger.version, "promotion", reason)
    return replace(comparison, promoted=promoted, reason=reason)


def list_models(settings: Settings) -> list[ModelSummary]:
    """Every version of every registered model, newest first, with aliases and key metrics."""
    uri = settings.mlflow_tracking_uri or ""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return []  # no store yet: nothing registered, and listing should not create one
    client = connect(settings)
    summaries = []
    for registered in client.search_registered_models(order_by=["name ASC"]):
        aliases: dict[str, list[str]] = {}
        for alias, number in registered.aliases.items():
            aliases.setdefault(str(number), []).append(alias)
        versions = client.search_model_versions(f"name = '{registered.name}'")
        for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
            metrics = client.get_run(version.run_id).data.metrics if version.run_id else {}
            summaries.append(
                ModelSummary(
                    name=version.name,
                    version=str(version.version),
                    aliases=tuple(sorted(aliases.get(str(version.version), []))),
                    run_id=version.run_id or "",
                    metrics={key: metrics[key] for key in KEY_METRICS if key in metrics},
                    created=pd.Timestamp(version.creation_timestamp, unit="ms", tz="UTC"),
                )
            )
    return summaries
