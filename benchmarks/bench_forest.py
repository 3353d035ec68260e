"""Packed forest against LightGBM's own predict, on the same boosters in the same run.

For each model: raw margins of one row with the CPU caches warm (the same row again and again)
and cold (64 MB read between calls, as the HTTP layer and other requests do in the service),
and of 1,000 and 10,000 rows (the packed forest split over the cores, LightGBM on its default
threads). Prints microseconds or milliseconds per call and LightGBM / packed ratios. Then the
send plan's case: candidate rows that differ from a base row in one column (13 candidates of
one row; 1,000 rows with 0-13 each), scored as full rows against the candidate walk
(``candidate_raw_scores``), on the column the trees split on most (the walk's worst case) or
``send_hour`` where the booster has it. With ``--home`` the registry's champions are used;
without, three boosters of 355, 1,972 and 606 trees (the sizes of the ``make demo``
champions) are trained on random rows first.

    .venv/bin/python benchmarks/bench_forest.py --home .paynudge
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import lightgbm as lgb
import numpy as np

from training.forest import PackedForest

DEMO_TREES = {"late_payment": 355, "churn": 1972, "send_time": 606}


def champions(home: Path) -> dict[str, tuple[lgb.Booster, int]]:
    from paynudge.config import Settings
    from serving.loading import MODELS, load_score_model

    settings = Settings(home=home)
    models = {spec: load_score_model(spec, settings, "champion").estimator for spec in MODELS}
    return {name: (model.booster_, model.best_iteration_) for name, model in models.items()}


def synthetic() -> dict[str, tuple[lgb.Booster, int]]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(20_000, 60))
    X[:, :4] = rng.integers(0, 12, size=(20_000, 4))
    y = (X[:, 4] + np.sin(X[:, 5] * 3) + rng.normal(size=20_000) > 0).astype(int)
    data = lgb.Dataset(X, y, categorical_feature=[0, 1, 2, 3])
    params = {"objective": "binary", "num_leaves": 15, "learning_rate": 0.02, "verbosity": -1}
    return {
        name: (lgb.train(params, data, num_boost_round=trees), trees)
        for name, trees in DEMO_TREES.items()
    }


def median_seconds(call: Callable[[], object], repeats: int, evict: np.ndarray | None) -> float:
    times = []
    for _ in range(repeats):
        if evict is not None:
            evict.sum()
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="a home with champions (else synthetic)")
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    boosters = champions(args.home) if args.home else synthetic()
    evict = np.ones(8_000_000)
    rng = np.random.default_rng(1)
    threads = os.cpu_count() or 1
    for name, (booster, iterations) in boosters.items():
        packed = PackedForest.from_booster(booster, iterations)
        print(f"{name}: {iterations} trees, {len(packed.feature):,} split nodes")
        for rows, cold in ((1, False), (1, True), (1_000, False), (10_000, False)):
            X = rng.normal(size=(rows, packed.n_features))
            repeats = args.repeats if rows == 1 else max(3, args.repeats // 100)
            split = 1 if rows < 500 else threads
            flush = evict if cold else None
            ours = median_seconds(partial(packed.raw_scores, X, split), repeats, flush)
            lightgbm = partial(
                booster.predict, X, raw_score=True, num_iteration=iterations,
                num_threads=1 if rows < 500 else 0,
            )  # fmt: skip
            theirs = median_seconds(lightgbm, repeats, flush)
            label = f"{rows:>6,} row{'s' if rows > 1 else ' '}{' (cold caches)' if cold else ''}"
            unit, scale = ("us", 1e6) if rows == 1 else ("ms", 1e3)
            print(f"  {label:28s} packed {ours * scale:8.1f} {unit}  LightGBM "
                  f"{theirs * scale:8.1f} {unit}  ratio {theirs / ours:5.1f}x")  # fmt: skip
        candidates(booster, packed, rng, threads, args.repeats)


def full_rows(
    packed: PackedForest,
    base: np.ndarray,
    counts: np.ndarray,
    column: int,
    values: np.ndarray,
    threads: int,
) -> np.ndarray:
    """Every candidate as a full row (``counts`` copies of each base row, ``column`` set)."""
    matrix = base[np.repeat(np.arange(len(base)), counts)]
    matrix[:, column] = values
    return packed.raw_scores(matrix, threads)


def candidates(
    booster: lgb.Booster, packed: PackedForest, rng: np.random.Generator, threads: int, repeats: int
) -> None:
    """Full candidate rows through ``raw_scores`` against ``candidate_raw_scores``."""
    names = booster.feature_name()
    most = int(np.bincount(packed.feature, minlength=packed.n_features).argmax())
    column = names.index("send_hour") if "send_hour" in names else most
    for rows in (1, 1_000):
        counts = np.full(rows, 13) if rows == 1 else rng.integers(0, 14, rows)
        segments = np.concatenate([[0], np.cumsum(counts)])
        base = rng.normal(size=(rows, packed.n_features))
        values = rng.integers(6, 22, segments[-1]).astype(float)
        split = 1 if segments[-1] < 500 else threads

        full = partial(full_rows, packed, base, counts, column, values, split)
        walk = partial(packed.candidate_raw_scores, base, column, values, segments, split)
        n = max(3, repeats // 100) if rows > 1 else repeats
        ours, theirs = median_seconds(walk, n, None), median_seconds(full, n, None)
        unit, scale = ("us", 1e6) if rows == 1 else ("ms", 1e3)
        label = f"{rows:>6,} row{'s' if rows > 1 else ' '} x candidates ({segments[-1]:,})"
        print(f"  {label:28s} walk   {ours * scale:8.1f} {unit}  full rows "
              f"{theirs * scale:8.1f} {unit}  ratio {theirs / ours:5.1f}x  "
              f"(column {names[column]})")  # fmt: skip


if __name__ == "__main__":
    main()
