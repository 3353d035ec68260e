"""How fast does the billing world simulate? Goal: 1,000,000 customers x 12 months in minutes.

Prints wall time, throughput (invoices and customer-months per second) and peak memory for a
sequence of sizes, and the scaling ratio between the largest and a reference size measured in the
same run (near 1.0 means linear). Usage::

    .venv/bin/python benchmarks/bench_simulation.py                 # 1M customers x 12 months
    .venv/bin/python benchmarks/bench_simulation.py --customers 100000 --write /tmp/world
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from simulation.world import make_config, simulate_world, write_world


def measure(customers: int, months: int, seed: int, write: Path | None) -> dict[str, float]:
    started = time.perf_counter()
    world = simulate_world(make_config(n_customers=customers, n_months=months, seed=seed))
    simulated = time.perf_counter() - started
    written = 0.0
    if write is not None:
        started = time.perf_counter()
        write_world(world, write)
        written = time.perf_counter() - started
    return {
        "customers": customers,
        "invoices": len(world.tables["invoices"]),
        "messages": len(world.tables["messages"]),
        "seconds": simulated,
        "write_seconds": written,
        "customer_months_per_s": customers * months / simulated,
        "invoices_per_s": len(world.tables["invoices"]) / simulated,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--reference", type=int, default=50_000, help="Size of the reference run.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, default=None, help="Also time writing Parquet here.")
    args = parser.parse_args()

    reference = measure(args.reference, args.months, args.seed, None)
    with tempfile.TemporaryDirectory() as scratch:
        target = args.write or Path(scratch)
        full = measure(args.customers, args.months, args.seed, target)
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"{'run':>10} {'customers':>10} {'invoices':>11} {'messages':>10} {'seconds':>8} "
          f"{'invoices/s':>11} {'write s':>8}")  # fmt: skip
    for name, row in (("reference", reference), ("full", full)):
        print(
            f"{name:>10} {row['customers']:>10,} {row['invoices']:>11,} {row['messages']:>10,} "
            f"{row['seconds']:>8.1f} {row['invoices_per_s']:>11,.0f} {row['write_seconds']:>8.1f}"
        )
    scaling = reference["invoices_per_s"] / full["invoices_per_s"]
    print(f"time per invoice, full vs reference: {scaling:.2f}x (1.0 = linear scaling)")
    print(f"peak memory: {peak_gib:.1f} GiB")
    print(f"goal: {args.customers:,} customers x {args.months} months in minutes -> "
          f"{full['seconds'] / 60:.1f} min")  # fmt: skip


if __name__ == "__main__":
    main()
