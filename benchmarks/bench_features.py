"""Late-payment dataset build: the DuckDB pipeline against a plain pandas implementation.

Simulates a population (100,000 customers x 12 months by default), writes it, then in separate
processes (so peak memory is each one's own) times:

- ``duckdb``: ``paynudge features build``'s late-payment path: load and validate the data set,
  run the Ibis/DuckDB pipeline, write the dataset with its manifest;
- ``pandas``: the same features computed by ``benchmarks/pandas_reference.py`` on the same
  loaded tables (loading not timed), the way a data scientist would write them.

Prints rows/s of both, their ratio (goal: DuckDB at least 5x faster), the whole build time
(goal: under 60 s on 2 cores) and peak memory. Usage::

    .venv/bin/python benchmarks/bench_features.py [--customers 100000] [--months 12]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_duckdb(data: Path, out: Path) -> dict[str, float]:
    import ibis.backends.duckdb  # noqa: F401  (import time is not pipeline time)

    from features.datasets import build_datasets
    from paynudge.validation import load_dataset

    started = time.perf_counter()
    tables = load_dataset(data)
    loaded = time.perf_counter()
    (manifest,) = build_datasets(tables, out, which=("late_payment",))
    done = time.perf_counter()
    rows = manifest.rows + manifest.censored_rows
    return {
        "rows": rows,
        "load_s": loaded - started,
        "features_s": done - loaded,
        "total_s": done - started,
        "peak_gib": peak_gib(),
    }


def run_pandas(data: Path) -> dict[str, float]:
    from paynudge.validation import load_dataset

    spec = importlib.util.spec_from_file_location("pandas_reference", HERE / "pandas_reference.py")
    assert spec is not None and spec.loader is not None
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    started = time.perf_counter()
    tables = load_dataset(data)
    loaded = time.perf_counter()
    frame = reference.late_payment_features(tables)
    done = time.perf_counter()
    return {
        "rows": len(frame),
        "load_s": loaded - started,
        "features_s": done - loaded,
        "total_s": done - started,
        "peak_gib": peak_gib(),
    }


def worker(kind: str, data: Path, out: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--worker", kind, "--data", str(data), "--out", str(out)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--worker", choices=("duckdb", "pandas"), default=None)
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.worker:
        run = run_duckdb(args.data, args.out) if args.worker == "duckdb" else run_pandas(args.data)
        print(json.dumps(run))
        return

    from simulation.world import make_config, simulate_world, write_world

    with tempfile.TemporaryDirectory() as scratch:
        data, out = Path(scratch) / "world", Path(scratch) / "features"
        config = make_config(n_customers=args.customers, n_months=args.months, seed=1)
        write_world(simulate_world(config), data)
        duck = worker("duckdb", data, out)
        panda = worker("pandas", data, out)
    header = ("pipeline", "rows", "load s", "features s", "rows/s", "peak GiB")
    widths = (8, 10, 7, 10, 10, 8)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for name, row in (("duckdb", duck), ("pandas", panda)):
        rate = row["rows"] / row["features_s"]
        print(
            f"{name:>8} {row['rows']:>10,.0f} {row['load_s']:>7.1f} {row['features_s']:>10.1f} "
            f"{rate:>10,.0f} {row['peak_gib']:>8.2f}"
        )
    ratio = panda["features_s"] / duck["features_s"]
    print(f"duckdb vs pandas on the features: {ratio:.1f}x faster (goal: at least 5x)")
    print(f"whole late-payment build (load + validate + features + write): {duck['total_s']:.1f} s"
          " (goal: under 60 s)")  # fmt: skip


if __name__ == "__main__":
    main()
