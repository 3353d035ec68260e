"""``monitor check --retrain``: after a market shift, a challenger trained on fresh data wins."""

from __future__ import annotations

from pathlib import Path

from monitoring.checks import run_check
from tests.monitoring.conftest import SHIFT, SINCE, UNTIL, log_window, train_champion, world
from training.registry import CHAMPION, version_by_alias
from training.tracking import connect


def test_a_challenger_trained_after_the_shift_is_promoted_by_the_rule(tmp_path: Path) -> None:
    settings = train_champion(tmp_path)
    log, shifted_dataset = log_window(world(6, SHIFT), settings, tmp_path, "shifted")
    outcome = run_check(
        "late_payment", settings, SINCE, UNTIL, log, retrain=True, data=shifted_dataset
    )
    assert outcome.check.alarms
    result = outcome.retrained
    assert result is not None and result.decision is not None
    decision = result.decision
    assert decision.promoted and decision.champion_version == "1"
    assert decision.challenger_auc > decision.champion_auc  # the registry's rule, on new rows
    champion = version_by_alias(connect(settings), "late_payment", CHAMPION)
    assert champion is not None and str(champion.version) == result.version == "2"
