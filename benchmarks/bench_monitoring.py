"""A drift report over 1,000,000 decision-log rows and 40 features: time and peak memory.

Set-up (not timed): a simulated late-payment dataset (20,000 customers x 6 months by default),
a LightGBM model on its first 40 catalogue features, the reference (the training months, scored),
and a SQLite decision log of ``--rows`` shadow decisions drawn from the dataset's rows with a
market shift on three columns (bills 30% higher, two more known late bills), each with its
JSON feature row as the service logs it.

Timed, in a fresh process (so its peak RSS is the report's own): reading the window from the
log (DuckDB parses the JSON rows), the Evidently drift report on ``monitoring.max_rows`` sampled
rows (200,000 by default) and, for comparison, on every row, then saving the HTML and JSON.
The sampled and full scores are compared: the loss of sensitivity of sampling (goal: the whole
report under 60 s and 4 GiB on 2 cores). Usage::

    .venv/bin/python benchmarks/bench_monitoring.py [--rows 1000000] [--customers 20000]
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

FEATURES = 40
GOAL_SECONDS, GOAL_GIB = 60.0, 4.0
SHIFTED = {"amount": 1.3, "amount_to_fee": 1.3}


def build(folder: Path, rows: int, customers: int) -> None:
    """Dataset, model, reference and decision log of the benchmark, into ``folder``."""
    from features.datasets import build_datasets
    from monitoring.reference import MonitoredModel, Reference
    from monitoring.replay import shadow_rows, write_shadow_log
    from simulation.world import make_config, simulate_world
    from training.model import CalibratedLightGBM
    from training.specs import SPECS, binary_target
    from training.splits import out_of_time_split

    world = simulate_world(make_config(n_customers=customers, n_months=6, seed=3))
    build_datasets(world.tables, folder, which=["late_payment"])
    frame = pd.read_parquet(folder / "late_payment.parquet")
    spec = SPECS["late_payment"]
    spec = dataclasses.replace(
        spec,
        features=spec.features[:FEATURES],
        categorical=tuple(c for c in spec.categorical if c in spec.features[:FEATURES]),
    )
    split = out_of_time_split(frame, "cutoff")
    columns = list(spec.features)
    estimator = CalibratedLightGBM(params={"learning_rate": 0.1, "num_boost_round": 100})
    estimator.fit(split.train[columns], binary_target(split.train, spec), split.valid[columns],
                  binary_target(split.valid, spec), categorical=spec.categorical)  # fmt: skip
    model = MonitoredModel(spec, "late_payment", "1", "bench", estimator, {"roc_auc": 0.8})
    reference = Reference(
        split.train[columns].reset_index(drop=True), binary_target(split.train, spec),
        estimator.predict_proba(split.train[columns])[:, 1], "benchmark training rows",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    current = frame.iloc[rng.integers(0, len(frame), rows)].reset_index(drop=True)
    for column, factor in SHIFTED.items():
        current[column] = current[column] * factor
    current["known_invoices"] = current["known_invoices"] + 2
    probability = estimator.predict_proba(current[columns])[:, 1]
    zones = world.tables["customers"].set_index("customer_id")["timezone"]
    log = folder / "decisions.db"
    for start in range(0, rows, 200_000):
        part = current.iloc[start : start + 200_000]
        decisions = shadow_rows(part, probability[start : start + 200_000], zones,
                                {"late_payment": "late_payment/1"}, seed=start)  # fmt: skip
        write_shadow_log(log, decisions)
    (folder / "model.pkl").write_bytes(pickle.dumps((model, reference)))


def measure(folder: Path) -> None:
    """Time the report on the log in ``folder``; print the figures (run in a fresh process)."""
    from monitoring.decision_window import read_window
    from monitoring.drift import drift_report
    from paynudge.config import MonitoringSettings

    model, reference = pickle.loads((folder / "model.pkl").read_bytes())
    settings = MonitoringSettings()
    started = time.perf_counter()
    since = pd.Timestamp("2020-01-01", tz="UTC")
    log = folder / "decisions.db"
    window = read_window(log, since, max_rows=settings.max_rows, seed=settings.seed)
    read = time.perf_counter() - started
    result = drift_report(model, reference, window, settings)
    result.drift.save_html(str(folder / "drift.html"))
    result.drift.save_json(str(folder / "drift.json"))
    sampled_total = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    t = time.perf_counter()
    del window
    everything = read_window(log, since)
    full_settings = settings.model_copy(update={"max_rows": len(everything)})
    full = drift_report(model, reference, everything, full_settings)
    full_seconds = time.perf_counter() - t
    full_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    sampled = {c.column: c for c in result.summary.features}
    gaps = np.array([abs(c.score - sampled[c.column].score) for c in full.summary.features])
    agree = sum(c.drifted == sampled[c.column].drifted for c in full.summary.features)
    print(f"decision-log rows: {result.summary.current_rows:,}; features: {FEATURES}")
    print(f"read the window's sample (SQLite + DuckDB JSON): {read:.1f} s")
    print(
        f"report on {result.summary.sampled_rows:,} sampled rows, read + Evidently + HTML/JSON: "
        f"{sampled_total:.1f} s, peak RSS {peak:.2f} GiB "
        f"(goal {GOAL_SECONDS:.0f} s, {GOAL_GIB:.0f} GiB): "
        f"{'met' if sampled_total < GOAL_SECONDS and peak < GOAL_GIB else 'MISSED'}"
    )
    print(
        f"read + report on all {len(everything):,} rows (no sampling): {full_seconds:.1f} s, "
        f"peak RSS {full_peak:.2f} GiB"
    )
    print(
        f"sampling's loss: |score gap| max {gaps.max():.4f}, mean {gaps.mean():.4f}; "
        f"verdicts agree on {agree} of {len(gaps)} features; drifted share "
        f"{result.summary.drifted_share:.3f} sampled vs {full.summary.drifted_share:.3f} full"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure)
        return
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        build(Path(folder), args.rows, args.customers)
        print(f"set-up (simulate, features, model, write the log): "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        subprocess.run([sys.executable, __file__, "--measure", folder], check=True)


if __name__ == "__main__":
    main()
