"""Load the decision components from our own MLflow registry, by alias (``champion``).

Each model's alias is resolved to a version first and that exact version is loaded, so the
versions reported with every decision are the ones that made it, even if an alias moves while
loading. Pickled models run code when loaded: only our own registry is ever read.
"""

from __future__ import annotations

import mlflow

from features.online import online_features
from paynudge.config import Settings
from paynudge.errors import PayNudgeError
from reminder_policy.policy_registry import load_policy
from serving.decision import Components, ScoreModel
from serving.profile_cache import ProfileCache
from training.model import CalibratedLightGBM
from training.registry import CHAMPION, version_by_alias
from training.tracking import connect

MODELS = ("late_payment", "churn", "send_time")


def load_score_model(spec: str, settings: Settings, alias: str) -> ScoreModel:
    """The estimator of model ``spec`` holding ``alias``, with its name/version and URI."""
    client = connect(settings)
    name = settings.registered_model_name(spec)
    version = version_by_alias(client, name, alias)
    if version is None:
        raise PayNudgeError(
            f"no {alias} version of model {name!r} in {settings.mlflow_tracking_uri}; "
            f"train one with `paynudge train {spec}`"
        )
    uri = f"models:/{name}/{version.version}"
    estimator = mlflow.pyfunc.load_model(uri).unwrap_python_model().estimator_
    if not isinstance(estimator, CalibratedLightGBM):
        raise PayNudgeError(f"{uri} is not a PayNudge LightGBM model")
    estimator.packed_forest()  # packed at load, not on the first request
    return ScoreModel(estimator=estimator, version=f"{name}/{version.version}", uri=uri)


def load_components(settings: Settings, alias: str = CHAMPION) -> Components:
    """The three models and the policy holding ``alias``, and the online profile lookup."""
    models = {spec: load_score_model(spec, settings, alias) for spec in MODELS}
    policy, policy_version = load_policy(settings, alias)
    name, _, number = policy_version.rpartition("/")
    return Components(
        models=models,
        bandit=policy.bandit_,
        policy_spec=policy.spec_,
        policy_version=policy_version,
        policy_uri=f"models:/{name}/{number}",
        settings=settings,
        profiles=ProfileCache(
            lambda ids: online_features(ids, settings),
            settings.serving.profile_cache_seconds,
            settings.serving.profile_cache_customers,
        ),
        alias=alias,
    )


def missing_components(settings: Settings, alias: str = CHAMPION) -> list[str]:
    """Registered names with no version holding ``alias`` (empty when the service can load):
    a quick check before starting a server that would otherwise fail in its workers."""
    client = connect(settings)
    names = [settings.registered_model_name(spec) for spec in MODELS]
    names.append(settings.policy.registered_name)
    return [name for name in names if version_by_alias(client, name, alias) is None]
