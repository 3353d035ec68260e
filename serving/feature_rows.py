"""Feature rows on the decision path: one numpy array per column, no data frame.

A decision for one invoice reads every feature a dozen times (three models, the policy context,
the guardrails, the send plan, the log). Through a pandas frame each column access or row
selection costs microseconds of bookkeeping: for a single decision that bookkeeping was most of
its time. So the decision path keeps its rows as a plain ``dict`` of equally long arrays:

- numbers, counts and flags (the catalogue's ``float``, ``int`` and ``bool`` kinds) as float64,
  NaN where missing (a flag is 1.0 or 0.0);
- categories and identifiers as object arrays, None where missing;
- plain numpy booleans (such as ``known``) stay booleans.

:func:`feature_records` turns rows back into typed values (ints, booleans, None) for the
explanations, as the frame they came from would give; :func:`value_arrays_json` writes them for
the decision log, a JSON array of values per row (the column names are kept once per layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import attrgetter

import numpy as np
import orjson
import pandas as pd

from features.catalog import by_name

FeatureRows = dict[str, np.ndarray]
"""Column name -> values, every array as long as the batch."""

_KINDS = {name: f.kind for name, f in by_name().items() if f.kind in ("int", "bool")}
"""Catalogue features whose float64 column reads back as ints or booleans."""


def rows_of_frame(frame: pd.DataFrame) -> FeatureRows:
    """The columns of ``frame`` as arrays (see the module docstring for the dtypes)."""
    rows: FeatureRows = {}
    for name in frame.columns:
        values = frame[name]
        dtype = values.dtype
        if dtype == np.dtype(bool):
            rows[name] = values.to_numpy()
        elif dtype.kind in "biuf" or pd.api.types.is_numeric_dtype(dtype):
            rows[name] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            rows[name] = values.to_numpy(dtype=object, na_value=None)
    return rows


def row_count(rows: Mapping[str, np.ndarray]) -> int:
    """The number of rows (0 for no columns)."""
    return len(next(iter(rows.values()))) if rows else 0


def take_rows(rows: Mapping[str, np.ndarray], index: np.ndarray) -> FeatureRows:
    """The rows at ``index`` (positions; repeats allowed), as new arrays."""
    return {name: values[index] for name, values in rows.items()}


@dataclass(frozen=True)
class RowBlock:
    """Feature rows held as one 2-D array per dtype (columns x rows), for a store of rows that
    hands out a few at a time (the profile cache): taking rows indexes each array once, not each
    of ~70 columns, and the columns handed out are row views of the taken arrays."""

    order: tuple[str, ...]
    """The column names in the rows' order."""
    groups: tuple[tuple[tuple[str, ...], np.ndarray], ...]
    """(names, array of shape (len(names), rows)) per dtype."""

    @classmethod
    def of(cls, rows: Mapping[str, np.ndarray]) -> RowBlock:
        by_dtype: dict[np.dtype, list[str]] = {}
        for name, values in rows.items():
            by_dtype.setdefault(values.dtype, []).append(name)
        groups = tuple(
            (tuple(names), np.array([rows[name] for name in names], dtype=dtype))
            for dtype, names in by_dtype.items()
        )
        return cls(tuple(rows), groups)

    def select(self, index: np.ndarray) -> RowBlock:
        """The rows at ``index`` (positions; repeats allowed) as a new block."""
        groups = tuple((names, values[:, index]) for names, values in self.groups)
        return RowBlock(self.order, groups)

    def rows(self) -> FeatureRows:
        """The columns as feature rows (views of the block), in :attr:`order`."""
        views = [row for _, values in self.groups for row in values]
        positions = _ordering(self.order, tuple(names for names, _ in self.groups))
        return dict(zip(self.order, map(views.__getitem__, positions), strict=True))

    @staticmethod
    def concat(parts: Sequence[RowBlock]) -> RowBlock:
        """The rows of ``parts`` one after the other (blocks of the same columns and dtypes)."""
        if len(parts) == 1:
            return parts[0]
        groups = tuple(
            (names, np.concatenate([part.groups[g][1] for part in parts], axis=1))
            for g, (names, _) in enumerate(parts[0].groups)
        )
        return RowBlock(parts[0].order, groups)


@lru_cache(maxsize=64)
def _ordering(order: tuple[str, ...], groups: tuple[tuple[str, ...], ...]) -> tuple[int, ...]:
    """The position of each column of ``order`` among those of ``groups``, one group after the
    other."""
    position = {name: i for i, name in enumerate(name for names in groups for name in names)}
    return tuple(position[name] for name in order)


def flags(values: np.ndarray) -> np.ndarray:
    """A flag column as booleans, unknown as False (no consent unless known: the safe side)."""
    if values.dtype == bool:
        return values
    return np.asarray(values == 1, dtype=bool)


def flag_block(rows: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray:
    """(n, len(names)) flag columns as :func:`flags` reads each (unknown is False), in one
    comparison."""
    return np.array([rows[name] for name in names]).T == 1


def _plain(values: np.ndarray) -> list[object]:
    """Python values of a column that is not float64 (objects, booleans): a float NaN inside an
    object column is missing too."""
    if values.dtype == object:
        return [None if v != v else v for v in values.tolist()]
    return values.tolist()


@dataclass(frozen=True)
class _RecordPlan:
    """How :func:`feature_records` converts rows of given column names and dtypes."""

    numbers: tuple[str, ...]
    """The float64 columns, converted as one block ..."""
    number_positions: np.ndarray
    """... their positions among all columns ..."""
    ints: np.ndarray
    """... and which of them read back as ints, which as booleans (catalogue kinds)."""
    bools: np.ndarray
    others: tuple[tuple[int, str], ...]
    """(position, name) of the other columns (objects, booleans), converted one by one."""


@lru_cache(maxsize=64)
def _record_plan(names: tuple[str, ...], dtypes: tuple[np.dtype, ...]) -> _RecordPlan:
    numbers = [i for i, dtype in enumerate(dtypes) if dtype.kind == "f"]
    kinds = [_KINDS.get(names[i]) for i in numbers]
    return _RecordPlan(
        numbers=tuple(names[i] for i in numbers),
        number_positions=np.array(numbers, dtype=np.int64),
        ints=np.array([kind == "int" for kind in kinds], dtype=bool),
        bools=np.array([kind == "bool" for kind in kinds], dtype=bool),
        others=tuple((i, names[i]) for i, dtype in enumerate(dtypes) if dtype.kind != "f"),
    )


def _typed_numbers(block: np.ndarray, ints: np.ndarray, bools: np.ndarray) -> np.ndarray:
    """Python values of float64 columns ``block`` (k, n) as an object array: NaN as None, the
    ``ints`` rows as ints and the ``bools`` rows as booleans (one numpy pass per kind, not a
    Python loop per value)."""
    missing = np.isnan(block)
    values = block.astype(object)
    if ints.any():
        values[ints] = np.where(missing[ints], 0.0, block[ints]).astype(np.int64).astype(object)
    if bools.any():
        values[bools] = (block[bools] == 1.0).astype(object)
    values[missing] = None
    return values


_DTYPE = attrgetter("dtype")


def feature_records(rows: Mapping[str, np.ndarray]) -> list[dict[str, object]]:
    """One dict per row with typed Python values (JSON-ready), columns in ``rows`` order. The
    conversion plan is made once per set of column names and dtypes."""
    order = tuple(rows)
    if not order:
        return []
    plan = _record_plan(order, tuple(map(_DTYPE, rows.values())))
    out = np.empty((row_count(rows), len(order)), dtype=object)
    if plan.numbers:
        block = np.array([rows[name] for name in plan.numbers], dtype=np.float64)
        out[:, plan.number_positions] = _typed_numbers(block, plan.ints, plan.bools).T
    for position, name in plan.others:
        out[:, position] = _plain(rows[name])
    return [dict(zip(order, values, strict=True)) for values in out.tolist()]


def value_arrays_json(rows: Mapping[str, np.ndarray]) -> list[str]:
    """One JSON array per row of its values in column order, as the decision log stores them:
    float64 columns as JSON numbers (whole numbers as ``3.0``, flags as ``1.0``/``0.0``), NaN and
    None as null, booleans as true/false, objects as they are. One numpy call turns every value
    into a Python value (no typing per catalogue kind: the reader types by the catalogue)."""
    if not rows:
        return []
    values = np.array(list(rows.values()), dtype=object)
    return [orjson.dumps(row).decode() for row in values.T.tolist()]


def rows_frame(rows: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """The rows as a frame of typed columns (for analysis and tests, not the decision path)."""
    return pd.DataFrame.from_records(feature_records(rows), columns=list(rows))
