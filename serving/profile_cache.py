"""A time-bounded cache of customer profiles in front of the online store.

Reading profiles from the online store costs ~1 ms for one customer and ~0.15-0.2 s for 1,000
(SQLite store, ``benchmarks/bench_profiles.py``): more than the rest of a decision. Profiles
are snapshots materialised at intervals (daily in practice), so reusing one for ``ttl_seconds``
changes no decision made within that time of a materialisation; a reload of the service builds
a new, empty cache. Unknown customers are cached too (as unknown): a profile materialised later
is seen once their entry expires.

Rows are kept as the store returned them ("chunks", turned once into a
:class:`~serving.feature_rows.RowBlock`), located through a dict by customer id: a hash lookup
per id is what a cache is, and it never copies the cached table on a miss. When chunks pile up
(many small misses) the live rows are compacted into one chunk.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from serving.feature_rows import FeatureRows, RowBlock, rows_of_frame

ProfileLookup = Callable[[list[str]], pd.DataFrame]
MAX_CHUNKS = 32
"""Compact the live rows into one frame beyond this many chunks."""
EVICT_TO = 0.9
"""A full cache drops its least recently read rows down to this share of the limit (so that
the sort is not paid on every miss)."""


class ProfileCache:
    """``lookup`` with each customer's row reused for ``ttl_seconds`` (at most ``max_customers``
    kept; the least recently read go first). Called with ids, it returns their rows in order, as
    :data:`~serving.feature_rows.FeatureRows`."""

    def __init__(
        self,
        lookup: ProfileLookup,
        ttl_seconds: float,
        max_customers: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lookup = lookup
        self.ttl_seconds = ttl_seconds
        self.max_customers = max_customers
        self.clock = clock
        self._chunks: dict[int, RowBlock] = {}
        self._where: dict[str, tuple[int, int, float]] = {}
        """customer id -> (chunk, row in it, when it was read)."""
        self._next_chunk = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __call__(self, customer_ids: Sequence[str]) -> FeatureRows:
        ids = list(customer_ids)
        if self.ttl_seconds <= 0 or not ids:
            return rows_of_frame(self.lookup(ids))
        with self._lock:
            now = self.clock()
            limit = now - self.ttl_seconds
            stale = [i for i in dict.fromkeys(ids) if self._where.get(i, (0, 0, limit))[2] <= limit]
            self.misses += len(stale)
            self.hits += len(ids) - len(stale)
            if stale:
                self._add(RowBlock.of(rows_of_frame(self.lookup(stale))), stale, now)
            return self._rows(ids)

    def _add(self, fetched: RowBlock, ids: list[str], now: float) -> None:
        chunk = self._next_chunk
        self._next_chunk += 1
        self._chunks[chunk] = fetched
        for row, customer_id in enumerate(ids):
            self._where[customer_id] = (chunk, row, now)
        if len(self._where) > self.max_customers:
            oldest = sorted(self._where, key=lambda key: self._where[key][2])
            keep = min(int(EVICT_TO * self.max_customers), self.max_customers - len(ids))
            for customer_id in oldest[: len(self._where) - max(keep, len(ids))]:
                del self._where[customer_id]
        if len(self._chunks) > MAX_CHUNKS:
            self._compact()

    def _rows(self, ids: list[str]) -> FeatureRows:
        """The cached rows of ``ids`` in order."""
        return self._block(ids).rows()

    def _block(self, ids: list[str]) -> RowBlock:
        """The cached rows of ``ids`` as one block, in order (each chunk indexed once)."""
        where = [self._where[i] for i in ids]
        if len({chunk for chunk, _, _ in where}) == 1:  # the common case: one chunk
            rows = np.fromiter((row for _, row, _ in where), dtype=np.int64, count=len(where))
            return self._chunks[where[0][0]].select(rows)
        located = np.array([entry[:2] for entry in where], dtype=np.int64).reshape(-1, 2)
        chunks = located[:, 0]
        parts, order = [], []
        for chunk in np.unique(chunks):
            selected = np.flatnonzero(chunks == chunk)
            parts.append(self._chunks[int(chunk)].select(located[selected, 1]))
            order.append(selected)
        return RowBlock.concat(parts).select(np.argsort(np.concatenate(order), kind="stable"))

    def _compact(self) -> None:
        """Move the live rows into one chunk; drop the rest."""
        ids = list(self._where)
        read_at = [self._where[i][2] for i in ids]
        merged = self._block(ids)
        chunk = self._next_chunk
        self._next_chunk += 1
        self._chunks = {chunk: merged}
        pairs = enumerate(zip(ids, read_at, strict=True))
        self._where = {i: (chunk, row, t) for row, (i, t) in pairs}
