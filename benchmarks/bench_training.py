"""Late-payment training: the full tracked pipeline against a bare ``lightgbm.train``.

Builds a simulated late-payment dataset (100,000 customers x 12 months by default, ~1M invoices;
or reuses ``--data FOLDER`` holding ``late_payment.parquet``), then in one process times:

- ``bare``: read the dataset, split it out of time, build the LightGBM matrices and
  ``lightgbm.train`` with early stopping on the validation month: what a data scientist writes;
- ``pipeline``: ``training.pipeline.train_model`` with MLflow on a temporary SQLite store: the
  same booster with the same parameters, plus calibration, the logistic and rule baselines,
  metrics, plots (ROC/PR, calibration, SHAP), the pyfunc model, registration and promotion;
  timed twice: the first model of the store (no champion: promoted at once), then a second
  training whose challenger is scored against that champion on its test rows (the comparison
  and its bootstrap interval). The store's tables are created before timing: a tracking store
  exists once, not per run.

Both use the same LightGBM parameters (the tuned config if there is one, else the trainer's
defaults) and stop after the same number of rounds; the script checks it. Prints both times and
the overhead of each pipeline run (goal: tracking, calibration and artifacts add under 30%). Usage::

    .venv/bin/python benchmarks/bench_training.py [--customers 100000] [--months 12] [--data DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import pandas as pd

from training.model import CalibratedLightGBM

GOAL = 0.30  # the pipeline may add at most this share on top of a bare lightgbm.train
DATASET = "late_payment"


def build_dataset(folder: Path, customers: int, months: int) -> None:
    """Simulate a world and write its late-payment dataset (with manifest) into ``folder``."""
    from features.datasets import build_datasets
    from paynudge.validation import load_dataset
    from simulation.world import make_config, simulate_world, write_world

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        world = simulate_world(make_config(n_customers=customers, n_months=months, seed=1))
        tables = load_dataset(write_world(world, Path(scratch) / "world"))
        build_datasets(tables, folder, which=(DATASET,))
    print(f"built {folder / DATASET}.parquet in {time.perf_counter() - started:.0f} s")


def bare_train(path: Path, estimator: CalibratedLightGBM) -> lightgbm.Booster:
    """Read, split, build the matrices and boost with the estimator's parameters and patience."""
    from training.specs import binary_target, spec_for
    from training.splits import out_of_time_split

    spec = spec_for(DATASET)
    frame = pd.read_parquet(path)
    split = out_of_time_split(frame, "cutoff")
    columns = list(spec.features)

    def matrix(rows: pd.DataFrame) -> pd.DataFrame:  # as the trainer sees it: float32, categories
        kinds = {name: "category" if name in spec.categorical else "float32" for name in columns}
        return rows[columns].astype(kinds)

    train = lightgbm.Dataset(matrix(split.train), binary_target(split.train, spec))
    valid = lightgbm.Dataset(matrix(split.valid), binary_target(split.valid, spec), reference=train)
    params, rounds = estimator.booster_params(n_rows=len(split.train))
    stop = lightgbm.early_stopping(
        estimator.early_stopping_rounds, first_metric_only=True, verbose=False
    )
    return lightgbm.train(params, train, rounds, valid_sets=[valid], callbacks=[stop])


def timed(label: str, work: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``work()``, print its wall and CPU time, return the wall time and the result."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    seconds = time.perf_counter() - started
    print(f"{label:>22}: {seconds:7.1f} s wall, {time.process_time() - cpu:7.1f} s CPU")
    return seconds, result


def report(label: str, seconds: float, bare_s: float) -> None:
    """One line: the pipeline time, its overhead on the bare training, and the verdict."""
    overhead = seconds / bare_s - 1
    verdict = "met" if overhead < GOAL else "missed"
    print(f"{label}: {seconds:.1f} s, {overhead:+.0%} on bare (goal: under {GOAL:.0%}, {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--data", type=Path, default=None, help="Reuse or build the dataset here.")
    parser.add_argument("--repeats", type=int, default=1, help="Alternate runs; keep the fastest.")
    args = parser.parse_args()

    from paynudge.config import Settings
    from training import tracking
    from training.pipeline import train_model, tuned_params

    with tempfile.TemporaryDirectory() as scratch:
        data = args.data if args.data is not None else Path(scratch) / "features"
        path = data / f"{DATASET}.parquet"
        if not path.exists():
            build_dataset(data, args.customers, args.months)
        rows = len(pd.read_parquet(path, columns=["cutoff"]))  # also warms the file cache
        tuned = tuned_params(DATASET)
        estimator = CalibratedLightGBM(params=tuned)
        print(f"{rows:,} rows; params: {'tuned config' if tuned else 'trainer defaults'}")
        times: dict[str, list[float]] = {"bare": [], "first": [], "challenger": []}
        for repeat in range(args.repeats):
            settings = Settings(home=Path(scratch) / f"home{repeat}", features_dir=data)
            tracking.connect(settings).search_experiments()  # create the store's tables untimed
            seconds, booster = timed("bare", lambda: bare_train(path, estimator))
            times["bare"].append(seconds)

            def pipeline(settings: Settings = settings) -> Any:
                return train_model(DATASET, settings, data=path, params=tuned)

            seconds, result = timed("pipeline, no champion", pipeline)
            times["first"].append(seconds)
            seconds, second = timed("pipeline vs champion", pipeline)
            times["challenger"].append(seconds)
    bare_s = min(times["bare"])
    rounds, auc = result.metrics["best_iteration"], result.metrics["roc_auc"]
    decision = second.decision.reason if second.decision is not None else "not compared"
    print(
        f"best iteration: bare {booster.best_iteration}, pipeline {rounds:.0f}; "
        f"pipeline test ROC-AUC {auc:.4f}; second training: {decision}"
    )
    print(f"fastest of {args.repeats}: bare lightgbm.train {bare_s:.1f} s")
    report("full pipeline, first model (no champion)", min(times["first"]), bare_s)
    report("full pipeline, challenger vs champion", min(times["challenger"]), bare_s)


if __name__ == "__main__":
    main()
