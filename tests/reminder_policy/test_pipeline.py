"""Training, registering and loading the policy; the ``paynudge policy`` commands."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from paynudge.cli import app
from paynudge.config import Settings, get_settings
from paynudge.errors import PayNudgeError
from reminder_policy.actions import ACTION_NAMES
from reminder_policy.dataset import DecisionSet, decision_set
from reminder_policy.pipeline import train_policy, update_policy
from reminder_policy.policy_registry import load_policy
from reminder_policy.pyfunc import MASK_PREFIX
from simulation.world import World, make_config, simulate_world, write_world


@pytest.fixture(scope="module")
def tiny_world() -> World:
    return simulate_world(make_config(n_customers=800, n_months=5, seed=21))


@pytest.fixture(scope="module")
def tiny_decisions(tiny_world: World) -> DecisionSet:
    return decision_set(tiny_world.tables, Settings().policy)


def test_train_registers_promotes_and_loads_as_pyfunc(
    tiny_decisions: DecisionSet, tmp_path: Path
) -> None:
    settings = Settings(home=tmp_path)
    first = train_policy(tiny_decisions, settings, seed=0)
    assert first.promoted and first.version == "1"
    assert {"learned", "ladder", "logging"} <= set(first.evaluation["policy"])
    model = mlflow.pyfunc.load_model("models:/reminder_policy@champion")
    example = tiny_decisions.contexts.head(50)
    dist = model.predict(example)
    assert list(dist.columns) == list(ACTION_NAMES)
    np.testing.assert_allclose(dist.sum(axis=1), 1.0)
    masked = example.copy()
    mask = pd.DataFrame(
        tiny_decisions.mask[:50], columns=[f"{MASK_PREFIX}{a}" for a in ACTION_NAMES]
    )
    masked[mask.columns] = mask.to_numpy()
    limited = model.predict(masked).to_numpy()
    assert (limited[~tiny_decisions.mask[:50]] == 0).all()

    second = train_policy(tiny_decisions, settings, seed=1)
    assert second.version == "2"
    assert "DR value difference" in second.reason
    policy, version = load_policy(settings)
    assert version == f"reminder_policy/{2 if second.promoted else 1}"
    assert policy.spec_["context_columns"] == list(tiny_decisions.contexts.columns)

    updated = update_policy(tiny_decisions, settings)
    assert updated.version == "3" and "DR value difference" in updated.reason
    newer = mlflow.pyfunc.load_model("models:/reminder_policy/3").unwrap_python_model()
    assert pd.Timestamp(newer.spec_["trained_until"]) > pd.Timestamp(policy.spec_["trained_until"])
    with pytest.raises(PayNudgeError, match="nothing to learn from yet"):
        update_policy(tiny_decisions.subset(np.arange(100)), settings)


def test_policy_commands_run_end_to_end(
    tiny_world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_world(tiny_world, tmp_path / "data")
    monkeypatch.setenv("PAYNUDGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        missing = runner.invoke(app, ["policy", "evaluate-offline", "--data", str(data)])
        assert missing.exit_code == 1
        assert "no champion version of 'reminder_policy'" in missing.output
        trained = runner.invoke(app, ["policy", "train", "--data", str(data)])
        assert trained.exit_code == 0, trained.output
        assert "promoted to champion" in trained.output
        evaluated = runner.invoke(app, ["policy", "evaluate-offline", "--data", str(data)])
        assert evaluated.exit_code == 0, evaluated.output
        assert "dr" in evaluated.output
        simulated = runner.invoke(
            app, ["policy", "simulate", "--customers", "400", "--months", "3"]
        )
        assert simulated.exit_code == 0, simulated.output
        assert "oracle" in simulated.output and "ladder-to-oracle" in simulated.output
    finally:
        get_settings.cache_clear()
