"""End to end: a small simulated population runs two months through the real decision function
(in-process), the dispatcher and the inbound webhooks; then the same customers on the ladder."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from dispatcher.database import connect
from dispatcher.simulate import decision_log_path, run_simulation
from dispatcher.state import CaseTask, Invoice, Message, Outcome, Promise, Reply, Suppression
from paynudge.config import Settings
from serving.decision_log import DecisionLog
from serving.loading import load_components
from simulation.world import make_config, simulate_world

SERVING_CONFTEST = Path(__file__).parents[1] / "serving" / "conftest.py"


def _serving_helpers():
    spec = importlib.util.spec_from_file_location("serving_conftest", SERVING_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """Real small models and policy, trained on a small history world."""
    from features.datasets import build_datasets
    from features.profiles import build_profiles
    from features.store import materialize
    from training.specs import SPECS

    helpers = _serving_helpers()
    history = simulate_world(make_config(n_customers=500, n_months=6, seed=31))
    settings = Settings(home=tmp_path_factory.mktemp("sim_home"),
                        dispatcher={"link_secret": "s" * 32, "decision_seed": 3})  # fmt: skip
    build_datasets(history.tables, settings.features_directory)
    build_profiles(history.tables, settings.features_directory)
    materialize(settings)
    for name in ("late_payment", "churn", "send_time"):
        estimator = helpers.fit_estimator(settings.features_directory, name)
        example = pd.read_parquet(settings.features_directory / f"{name}.parquet").head(5)
        helpers.register_champion(estimator, example[list(SPECS[name].features)], name, settings)
    helpers.register_policy(history, settings)
    return settings, load_components(settings)


def test_two_simulated_months_close_the_loop(served) -> None:
    settings, components = served
    world = simulate_world(make_config(n_customers=120, n_months=3, seed=5))
    run = run_simulation(world, settings, components, months=2, name="policy", seed=1)
    engine = connect(f"sqlite:///{settings.home / 'simulate' / 'policy' / 'dispatcher.db'}")
    with engine.connect() as db:
        messages = pd.DataFrame(
            db.execute(
                select(Message.invoice_id, Message.status, Message.sent_at, Message.decision_id)
            ).all()
        )
        paid = pd.DataFrame(run.tables["payments"])
        outcomes = pd.DataFrame(
            db.execute(select(Outcome.decision_id, Outcome.kind, Outcome.posted_at)).all()
        )
        replies = pd.DataFrame(db.execute(select(Reply.intent)).all(), columns=["intent"])
        tasks = pd.DataFrame(db.execute(select(CaseTask.stage)).all(), columns=["stage"])
        suppressed = len(db.execute(select(Suppression.customer_id)).all())
        promises = len(db.execute(select(Promise.promise_id)).all())
    # payments stop sequences: nothing is sent about an invoice after it was paid
    settled = paid.groupby("invoice_id")["paid_at"].min()
    sent = messages[messages["status"] == "sent"].copy()
    sent["paid_at"] = sent["invoice_id"].map(settled)
    assert len(sent) > 0 and len(settled) > 0
    assert not (pd.to_datetime(sent["sent_at"], utc=True) > sent["paid_at"]).any()
    assert (messages["status"] == "blocked").any()
    # replies had their effects
    assert len(replies) > 0 and (suppressed > 0 or run.events.get("opt_out", 0) == 0)
    assert (
        promises == (replies["intent"].isin(["promise_to_pay", "paid_already"])).sum()
        or promises > 0
    )
    if (replies["intent"] == "dispute").any():
        assert (tasks["stage"] == "dispute").any()
    # KPIs produced
    summary = run.kpis.summary
    assert 0 < summary.on_time_rate <= 1 and summary.collected > 0
    # every outcome reached the feedback log
    assert outcomes["posted_at"].notna().all()
    kinds = set(outcomes["kind"])
    assert {"delivered", "opened", "paid"} <= kinds
    log = DecisionLog(decision_log_path(settings, "policy")).feedback()
    logged = set(log["decision_id"])
    assert set(outcomes["decision_id"]) <= logged
    baseline = run_simulation(world, settings, components, months=2, name="ladder", ladder=True,
                              seed=1)  # fmt: skip
    assert baseline.kpis.summary.invoices == summary.invoices


def test_a_second_run_of_another_world_starts_afresh(served) -> None:
    """Rerunning in the same home with another seed replaces the first run's state (its event
    ids and invoices would otherwise collide with the new world's)."""
    settings, components = served
    for seed in (7, 8):
        world = simulate_world(make_config(n_customers=40, n_months=2, seed=seed))
        run_simulation(world, settings, components, months=1, name="rerun", seed=seed)
        engine = connect(f"sqlite:///{settings.home / 'simulate' / 'rerun' / 'dispatcher.db'}")
        with engine.connect() as db:
            loaded = dict(db.execute(select(Invoice.invoice_id, Invoice.amount)).all())
        engine.dispose()
        invoices = world.tables["invoices"]
        expected = dict(zip(invoices["invoice_id"], invoices["amount"], strict=True))
        assert loaded == pytest.approx(expected)


def test_the_same_world_and_seed_give_the_same_run(served) -> None:
    """Without a configured decision seed the policy's draws follow the run's seed: KPIs and
    world events repeat exactly."""
    settings, components = served
    unseeded = settings.model_copy(
        update={"dispatcher": settings.dispatcher.model_copy(update={"decision_seed": None})}
    )
    world = simulate_world(make_config(n_customers=60, n_months=2, seed=9))
    runs = [
        run_simulation(world, unseeded, components, months=1, name=f"same-{i}", seed=4)
        for i in range(2)
    ]
    assert runs[0].kpis.summary == runs[1].kpis.summary
    assert runs[0].events == runs[1].events
