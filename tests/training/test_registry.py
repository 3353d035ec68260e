"""The registry: challenger on registration, champion only by the promotion rule."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from paynudge.config import Settings
from paynudge.errors import PayNudgeError
from training import tracking
from training.pipeline import TrainResult, load_spec_dataset, track
from training.registry import (
    CHALLENGER,
    CHAMPION,
    PromotionDecision,
    list_models,
    load_model,
    promote,
    verdict,
)
from training.specs import spec_for
from training.splits import Split, out_of_time_split
from training.tabular import Evaluation, fit_and_evaluate


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow store for the module; each case registers under its own model name."""
    return tmp_path_factory.mktemp("registry_home")


@pytest.fixture(scope="module")
def data(tiny_features_dir: Path) -> tuple[Split, dict]:
    spec = spec_for("late_payment")
    frame, manifest = load_spec_dataset(spec, tiny_features_dir / "late_payment.parquet")
    return out_of_time_split(frame, "cutoff"), manifest


@pytest.fixture(scope="module")
def good(data: tuple[Split, dict]) -> Evaluation:
    return fit_and_evaluate(spec_for("late_payment"), data[0])


@pytest.fixture(scope="module")
def worse(data: tuple[Split, dict]) -> Evaluation:
    """Trained on shuffled labels: it ranks no better than chance."""
    split = data[0]
    shuffled = split.train.assign(late=np.random.default_rng(0).permutation(split.train["late"]))
    return fit_and_evaluate(spec_for("late_payment"), replace(split, train=shuffled))


def settings_for(home: Path, name: str) -> Settings:
    return Settings(home=home, model_names={"late_payment": name})


def aliases(settings: Settings, name: str) -> dict[str, str]:
    registered = tracking.connect(settings).get_registered_model(name)
    return {alias: str(version) for alias, version in registered.aliases.items()}


def test_first_model_is_champion_a_worse_one_stays_challenger(
    home: Path, good: Evaluation, worse: Evaluation, data
) -> None:
    settings = settings_for(home, "kept")
    first = track(good, data[1], {}, settings)
    assert first.promoted and first.decision is not None
    assert first.decision.reason == "no champion yet"
    assert aliases(settings, "kept") == {CHAMPION: "1"}
    result: TrainResult = track(worse, data[1], {}, settings)
    decision = result.decision
    assert decision is not None and not result.promoted
    assert decision.reason.startswith("not better: ROC-AUC")
    assert decision.auc_difference is not None and decision.auc_difference < 0
    low, high = decision.auc_interval
    assert low <= decision.auc_difference <= high
    assert aliases(settings, "kept") == {CHAMPION: "1", CHALLENGER: "2"}
    again = promote("kept", settings)
    assert not again.promoted and again.auc_difference == decision.auc_difference


def test_better_challenger_is_promoted(
    home: Path, good: Evaluation, worse: Evaluation, data
) -> None:
    settings = settings_for(home, "replaced")
    track(worse, data[1], {}, settings, promote=True)
    result = track(good, data[1], {}, settings)
    decision = result.decision
    assert result.promoted and decision is not None
    assert decision.champion_version == "1" and decision.challenger_version == "2"
    assert decision.auc_difference > 0 and decision.reason.startswith("better")
    assert aliases(settings, "replaced") == {CHAMPION: "2"}
    assert decision.challenger_auc == pytest.approx(good.metrics["roc_auc"])


def test_no_promotion_without_asking_or_when_forced(
    home: Path, good: Evaluation, worse: Evaluation, data
) -> None:
    settings = settings_for(home, "manual")
    first = track(good, data[1], {}, settings, promote=False)
    assert first.decision is None and aliases(settings, "manual") == {CHALLENGER: "1"}
    promote("manual", settings)
    track(worse, data[1], {}, settings, promote=False)
    forced = promote("manual", settings, force=True)
    assert forced.promoted and forced.reason == "forced"
    assert aliases(settings, "manual") == {CHAMPION: "2"}
    with pytest.raises(PayNudgeError, match="has no challenger to promote"):
        promote("manual", settings)


COMPARED = PromotionDecision("m", "2", "1", False, "", 0.01, (0.0, 0.02), 0.80, 0.79, 0.020, 0.020)


@pytest.mark.parametrize(
    ("changes", "promoted", "reason"),
    [
        ({}, True, "better"),
        ({"challenger_auc": 0.79}, False, "not better"),
        ({"challenger_auc": 0.78}, False, "not better"),
        ({"challenger_ece": 0.025}, True, "better"),  # exactly at the tolerance
        ({"challenger_ece": 0.0251}, False, "calibration worse"),
    ],
)
def test_the_promotion_rule(changes: dict, promoted: bool, reason: str) -> None:
    decided, why = verdict(replace(COMPARED, **changes), tolerance=0.005)
    assert decided is promoted and why.startswith(reason)


def test_list_models_shows_aliases_runs_and_metrics(home: Path) -> None:
    summaries = {(s.name, s.version): s for s in list_models(Settings(home=home))}
    kept = summaries[("kept", "1")]
    assert kept.aliases == (CHAMPION,) and kept.run_id
    assert summaries[("kept", "2")].aliases == (CHALLENGER,)
    assert set(kept.metrics) == {"roc_auc", "pr_auc", "ece", "brier"}


def test_load_model_only_by_alias_from_our_registry(home: Path) -> None:
    settings = Settings(home=home)
    assert load_model("kept", settings).metadata.run_id
    with pytest.raises(PayNudgeError, match="no champion version of model 'nothing'"):
        load_model("nothing", settings)


def test_manifest_is_logged_unchanged(home: Path, data) -> None:
    run_id = list_models(Settings(home=home))[0].run_id
    client = tracking.connect(Settings(home=home))
    path = client.download_artifacts(run_id, "dataset_manifest.json", str(home / "download"))
    assert json.loads(Path(path).read_text()) == data[1]
