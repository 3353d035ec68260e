"""Reading customer profiles from the online store: Feast's public path against ours, one run.

For the home's online store (the demo's SQLite store by default; Redis when the settings say so)
checks first that :func:`features.online.online_features` returns the frame of the public path
(``get_online_features(...).to_dict()``, kept in ``benchmarks/feast_reference.py``) for a batch
with unknown and repeated ids, then times both, interleaved, for 1 and 1,000 customers (other
customers each round), and Feast's ``online_read`` alone on 1,000 (the floor of our path).
Prints median and best per path and the ratios to the goals (1,000 customers >= 4x faster; one
customer ~1 ms). Every loop is bounded. Usage::

    .venv/bin/python benchmarks/bench_profiles.py --home .paynudge [--rounds 15]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from benchmarks.feast_reference import public_online_features
from features.catalog import ALL_FEATURES
from features.feature_repo.definitions import ENTITY_KEY, VIEW_NAME, profile_path
from features.online import online_features
from features.store import FeatureStore, feast_sqlite_times, open_store
from paynudge.config import Settings

BATCH_GOAL_RATIO, SINGLE_GOAL_MS = 4.0, 1.0
SIZES = {1: 20, 1_000: 1}
"""Customers per read -> reads per round (one-customer reads are short: more of them)."""


def seconds(read: Callable[[list[str]], object], ids: list[str], reads: int) -> float:
    """Mean wall time of one of ``reads`` calls of ``read(ids)``."""
    start = time.perf_counter()
    for _ in range(reads):
        read(ids)
    return (time.perf_counter() - start) / reads


def online_read(store: FeatureStore, ids: list[str]) -> None:
    """Only the online store's read, as ``online_features`` calls it (cached time converter,
    collector paused), without decoding or building the frame: what no change of ours saves."""
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    keys = [EntityKey(join_keys=[ENTITY_KEY], entity_values=[Value(string_val=i)]) for i in ids]
    view = store.get_feature_view(VIEW_NAME, allow_registry_cache=True)
    names = [feature.name for feature in ALL_FEATURES]
    gc.disable()
    try:
        with feast_sqlite_times(read_cache=True):
            store.provider.online_store.online_read(store.config, view, keys, names)
    finally:
        gc.enable()


def report(label: str, old: list[float], new: list[float], goal: str) -> None:
    old_ms, new_ms = 1e3 * statistics.median(old), 1e3 * statistics.median(new)
    print(
        f"{label}: public path median {old_ms:.2f} ms (best {1e3 * min(old):.2f}), "
        f"online_read path median {new_ms:.2f} ms (best {1e3 * min(new):.2f}): "
        f"{old_ms / new_ms:.1f}x faster ({goal})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Settings().home)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    settings = Settings(home=args.home)
    store = open_store(settings)
    customers = pd.read_parquet(profile_path(settings), columns=[ENTITY_KEY])[ENTITY_KEY]
    customers = customers.drop_duplicates().sample(frac=1.0, random_state=7).tolist()
    print(f"{len(customers):,} customers in {store.config.online_store.type} at {args.home}")
    check = [*customers[:998], "no-such-customer", customers[0]]
    pd.testing.assert_frame_equal(
        online_features(check, settings), public_online_features(store, check)
    )
    print("same frame as the public path for 1,000 ids (one unknown, one repeated)")
    for size, reads in SIZES.items():
        old: list[float] = []
        new: list[float] = []
        for round_number in range(args.rounds):
            start = (round_number * size) % max(1, len(customers) - size)
            ids = customers[start : start + size]
            old.append(seconds(lambda batch: public_online_features(store, batch), ids, reads))
            new.append(seconds(lambda batch: online_features(batch, settings), ids, reads))
        goal = f"goal {SINGLE_GOAL_MS:.0f} ms" if size == 1 else f"goal >= {BATCH_GOAL_RATIO:.0f}x"
        report(f"{size:,} customer(s)", old, new, goal)
    batch = customers[:1_000]
    floor = [seconds(lambda ids: online_read(store, ids), batch, 1) for _ in range(args.rounds)]
    print(f"Feast's online_read alone on 1,000: median {1e3 * statistics.median(floor):.1f} ms")


if __name__ == "__main__":
    main()
