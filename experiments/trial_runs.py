"""MLflow runs of a study: one parent run per tuning process, one nested run per trial.

A trial's run holds its parameters, validation metrics and Optuna tags; it ends ``FINISHED``
when the trial completes, ``KILLED`` when it is pruned and ``FAILED`` on any other error, so
the MLflow UI shows the study the way Optuna sees it. Runs are created through the client with
explicit ids (as :func:`training.tracking.start_run` does), so ``mlflow run``'s own run is never
resumed in their place.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import mlflow
import optuna
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from training import tracking

STUDY_TAG = "optuna.study_name"
TRIAL_TAG = "optuna.trial_number"
STATE_TAG = "optuna.state"


def masked_storage(url: str) -> str:
    """``url`` with any password hidden, safe to log and print."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


@contextmanager
def parent_run(
    client: MlflowClient, experiment_id: str, study_name: str, storage: str,
    params: Mapping[str, Any],
) -> Iterator[mlflow.ActiveRun]:  # fmt: skip
    """The run a tuning process logs its trials under, tagged with its study."""
    tags = {STUDY_TAG: study_name, "optuna.storage": masked_storage(storage)}
    with tracking.start_run(client, experiment_id, f"tune-{study_name}", tags) as run:
        mlflow.log_params(dict(params))
        yield run


@contextmanager
def trial_run(
    client: MlflowClient, parent: mlflow.ActiveRun, trial: optuna.Trial, params: Mapping[str, Any]
) -> Iterator[mlflow.ActiveRun]:
    """A run for ``trial`` nested under ``parent``; its status mirrors the trial's state."""
    tags = {
        MLFLOW_PARENT_RUN_ID: parent.info.run_id,
        STUDY_TAG: trial.study.study_name,
        TRIAL_TAG: str(trial.number),
    }
    created = client.create_run(
        parent.info.experiment_id, run_name=f"trial-{trial.number}", tags=tags
    )
    run = mlflow.start_run(run_id=created.info.run_id, nested=True)
    mlflow.log_params(dict(params))
    try:
        yield run
    except optuna.TrialPruned as pruned:
        mlflow.set_tags({STATE_TAG: "PRUNED", "optuna.pruned_reason": str(pruned)})
        mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException:
        mlflow.set_tag(STATE_TAG, "FAIL")
        mlflow.end_run(RunStatus.to_string(RunStatus.FAILED))
        raise
    mlflow.set_tag(STATE_TAG, "COMPLETE")
    mlflow.end_run(RunStatus.to_string(RunStatus.FINISHED))
