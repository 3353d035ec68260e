"""``paynudge monitor``, ``paynudge explain``, ``paynudge reports index``, and the market shift."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from paynudge.cli import app
from simulation.parameters import MarketShift, WorldParameters
from simulation.world import make_config, simulate_world
from tests.monitoring.conftest import Monitored

runner = CliRunner()


def test_monitor_drift_and_check_print_the_evidence(monitored: Monitored) -> None:
    window = ["--since", "2023-12-31", "--until", "2024-05-01"]
    drift = runner.invoke(app, ["monitor", "drift", *window, "--log", str(monitored.shifted_log)])
    assert drift.exit_code == 0, drift.output
    assert "alarm" in drift.output and "drift.html" in drift.output
    check = runner.invoke(app, ["monitor", "check", *window, "--log", str(monitored.same_log)])
    assert check.exit_code == 0, check.output
    assert "no alarm" in check.output


def test_bad_input_is_one_clear_line(monitored: Monitored) -> None:
    bad_date = runner.invoke(app, ["monitor", "drift", "--since", "yesterday-ish"])
    assert bad_date.exit_code == 1 and "--since: expected a date" in bad_date.output
    empty = runner.invoke(
        app, ["monitor", "drift", "--since", "2030-01-01", "--log", str(monitored.same_log)]
    )
    assert empty.exit_code == 1 and "needs at least" in empty.output
    missing = runner.invoke(app, ["monitor", "drift", "--since", "2024-01-01", "--log", "no.db"])
    assert missing.exit_code == 1 and "no decision log" in missing.output


def test_explain_and_the_index(monitored: Monitored) -> None:
    rows = pd.read_parquet(monitored.features_dir / "late_payment.parquet")
    invoice = str(rows["invoice_id"].iloc[0])
    explained = runner.invoke(app, ["explain", "late_payment", "--invoice", invoice])
    assert explained.exit_code == 0, explained.output
    assert "index.html" in explained.output and f"{invoice}.html" in explained.output
    index = runner.invoke(app, ["reports", "index"])
    assert index.exit_code == 0 and "reports/index.html" in index.output


def test_the_market_shift_changes_nothing_by_default_and_raises_lateness_when_set() -> None:
    def late_share(shift: MarketShift) -> tuple[float, object]:
        config = make_config(n_customers=500, n_months=4, seed=2,
                             parameters=WorldParameters(shift=shift))  # fmt: skip
        world = simulate_world(config)
        context = world.invoice_context
        late = context["resolved_at"] > context["due_at"] + pd.Timedelta(days=1)
        return float(late.mean()), world

    plain, plain_world = late_share(MarketShift())
    default_world = simulate_world(make_config(n_customers=500, n_months=4, seed=2))
    for name, table in default_world.tables.items():
        pd.testing.assert_frame_equal(table, plain_world.tables[name])
    assert '"shift":' not in default_world.config.model_dump_json()
    shocked, _ = late_share(MarketShift(from_month=1, capacity_drop=1.0, price_rise=0.3))
    assert shocked > plain + 0.03
