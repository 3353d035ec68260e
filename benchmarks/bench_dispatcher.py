"""One dunning stage for 100,000 open invoices through the dispatcher, with the real service.

Starts ``bentoml serve`` for a home whose registry holds the champions and whose online store
holds the profiles (``make demo`` + ``make demo-models`` + ``paynudge policy train``; with
``--build`` a small served home is built first, as the serving tests build theirs). Then, in a
fresh SQLite dispatcher database: loads the customers and 100,000 invoices all entering the
``overdue_3`` stage, plans the stage (``/decide`` in batches of ``decide_batch_size``, local
re-check, outbox rows) and sends every scheduled message into the dry-run outbox (render, write a
file, record). Prints the time of each part, invoices per second, the share of the time spent
waiting for ``/decide`` and the ratio to the goal (under 60 s on 2 cores).

    .venv/bin/python benchmarks/bench_dispatcher.py --home .paynudge
    .venv/bin/python benchmarks/bench_dispatcher.py --build      # no demo home needed
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from dispatcher.cycle import Dispatcher
from dispatcher.loading import load_tables
from paynudge.config import Settings
from serving.client import DecisionClient

ROOT = Path(__file__).resolve().parents[1]
GOAL_SECONDS = 60.0
STAGE_OFFSET_DAYS = 3  # overdue_3
T = pd.Timestamp("2025-07-10 12:00", tz="UTC")


def build_served_home(home: Path, customers: int) -> pd.DataFrame:
    """A small served world (quick models, policy, profiles) as the serving tests build it."""
    from features.datasets import build_datasets
    from features.profiles import build_profiles
    from features.store import materialize
    from simulation.world import make_config, simulate_world
    from training.specs import SPECS

    spec = importlib.util.spec_from_file_location(
        "serving_world_helpers", ROOT / "tests" / "serving" / "conftest.py"
    )
    assert spec is not None and spec.loader is not None
    helpers = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = helpers
    spec.loader.exec_module(helpers)
    world = simulate_world(make_config(n_customers=customers, n_months=6, seed=17))
    settings = Settings(home=home)
    build_datasets(world.tables, settings.features_directory)
    build_profiles(world.tables, settings.features_directory)
    materialize(settings)
    for name in ("late_payment", "churn", "send_time"):
        estimator = helpers.fit_estimator(settings.features_directory, name)
        example = pd.read_parquet(settings.features_directory / f"{name}.parquet").head(5)
        helpers.register_champion(estimator, example[list(SPECS[name].features)], name, settings)
    helpers.register_policy(world, settings)
    return world.tables["customers"]


def stage_invoices(customers: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    due = T.normalize().tz_localize(None) - pd.Timedelta(days=STAGE_OFFSET_DAYS)
    return pd.DataFrame({
        "invoice_id": [f"B{i:07d}" for i in range(n)],
        "customer_id": rng.choice(customers["customer_id"].to_numpy(), n),
        "issue_date": due - pd.Timedelta(days=14), "due_date": due,
        "amount": np.round(rng.gamma(2.0, 30.0, n) + 5, 2),
    })  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Settings().home)
    parser.add_argument("--build", action="store_true", help="build a small served home first")
    parser.add_argument("--customers", type=int, default=2_000, help="customers of --build")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--data", type=Path, default=None, help="customers table folder")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_serving import start_service

    scratch = Path(tempfile.mkdtemp(prefix="bench_dispatcher_"))
    home = scratch / "served" if args.build else args.home
    if args.build:
        started = time.perf_counter()
        customers = build_served_home(home, args.customers)
        print(f"built a served home for {args.customers:,} customers in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
    else:
        data = args.data or Settings(home=args.home).default_data_dir
        customers = pd.read_parquet(data / "customers.parquet")
    token = secrets.token_urlsafe(24)
    process, url = start_service(home, token)
    try:
        settings = Settings(home=scratch / "dispatcher", serving_url=url, api_token=token)
        dispatcher = Dispatcher(settings, client=DecisionClient(url, token, timeout=120))
        tables = {"customers": customers,
                  "invoices": stage_invoices(customers, args.invoices, seed=1),
                  "payments": pd.DataFrame(columns=["payment_id", "invoice_id", "customer_id",
                                                    "paid_at", "amount", "method"])}  # fmt: skip
        started = time.perf_counter()
        load_tables(dispatcher.sessions, tables, dispatcher.workflow)
        loaded = time.perf_counter() - started
        first = dispatcher.run_once(T.to_pydatetime())  # plan (and send what is due now)
        second = dispatcher.run_once((T + pd.Timedelta(days=2)).to_pydatetime())  # send the rest
        dispatcher.close()
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)
    report(args.invoices, loaded, first, second)


def report(n: int, loaded: float, first, second) -> None:
    plan, stage = first.planned, first.seconds + second.seconds
    sent = first.sent.sent + second.sent.sent
    print(f"invoices                         {n:>10,}")
    print(f"load into the database           {loaded:>10.1f} s")
    print(f"plan: decide + re-check + outbox {first.seconds:>10.1f} s   "
          f"({plan.scheduled:,} scheduled, {plan.no_contact:,} no contact, "
          f"{plan.blocked:,} blocked)")  # fmt: skip
    print(f"  waiting for /decide            {plan.decide_seconds:>10.1f} s   "
          f"({plan.decide_seconds / stage:.0%} of the stage)")  # fmt: skip
    print(f"send: render + dry-run outbox    {second.seconds:>10.1f} s   ({sent:,} messages)")
    print(f"stage total                      {stage:>10.1f} s   "
          f"({n / stage:,.0f} invoices/s; goal {GOAL_SECONDS:.0f} s: "
          f"{stage / GOAL_SECONDS:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
