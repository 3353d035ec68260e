"""Turn CSV text or loosely typed Parquet into the contract types, marking what does not parse.

A value that cannot become its contract type is never dropped: its cell becomes null and a
:class:`CoercionFailure` marks its row, so the report quotes the original value and the schema
does not report the same cell again as empty. Columns already stored with the contract type
(as the simulator writes them) take a fast path; everything else is read as text, the one
representation every CSV export and every Parquet writer agrees on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
from pandas.api.types import (
    infer_dtype,
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_float_dtype,
    is_numeric_dtype,
)

from paynudge.schemas import TIMESTAMP_DTYPE, ColumnKind, column_kind

EXPECTED_NUMBER = "a number"
EXPECTED_FLAG = "true or false (or 1/0, yes/no)"
EXPECTED_DATE = "a date (YYYY-MM-DD)"
EXPECTED_MIDNIGHT = "a date without a time of day"
EXPECTED_ZONE = "a timestamp with a time zone (e.g. 2025-03-01T09:30:00+01:00)"
EXPECTED_TIMESTAMP = "an ISO 8601 timestamp (e.g. 2025-03-01T09:30:00+01:00)"
EXPECTED_IN_RANGE = "a date between 1677-09-22 and 2262-04-11"

FLAG_WORDS: dict[str, bool] = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}
"""Spellings of a flag in CSV exports, compared lower-cased."""

_ZONED = r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$"
"""A time of day followed by ``Z`` or a UTC offset: the text names its time zone."""
_NAIVE_DATE_TIME = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?$"


@dataclass(frozen=True)
class CoercionFailure:
    """Rows of ``column`` (a boolean mask) whose value is not ``expected``."""

    column: str
    expected: str
    failed: np.ndarray


@dataclass(frozen=True)
class _Coerced:
    values: pd.Series
    failures: tuple[tuple[str, pd.Series], ...] = ()


def coerce_table(
    raw: pd.DataFrame, schema: pa.DataFrameSchema
) -> tuple[pd.DataFrame, list[CoercionFailure]]:
    """``raw`` with every contract column in its contract type, and the cells that failed.

    Contract columns come first in contract order; columns the contract does not know follow
    untouched so the schema can report them.
    """
    columns: dict[str, pd.Series] = {}
    failures: list[CoercionFailure] = []
    for name, column in schema.columns.items():
        if name not in raw.columns:
            continue
        coerced = COERCERS[column_kind(column)](raw[name])
        columns[name] = coerced.values
        for expected, failed in coerced.failures:
            mask = failed.to_numpy(dtype=bool, na_value=False)
            if mask.any():
                failures.append(CoercionFailure(name, expected, mask))
    extras = {name: raw[name] for name in raw.columns if name not in schema.columns}
    return pd.DataFrame({**columns, **extras}, index=raw.index), failures


def numpy_flags(table: pd.DataFrame, schema: pa.DataFrameSchema) -> pd.DataFrame:
    """``table`` with its flag columns as numpy ``bool``, once validation has ruled out nulls."""
    flags = [name for name, column in schema.columns.items() if column_kind(column) == "flag"]
    return table.astype(dict.fromkeys(flags, bool))


def as_text(raw: pd.Series) -> pd.Series:
    """Non-null values as ``str`` in an object column; blank cells become None (empty).

    Whole floats lose their ``.0`` so ids written as numbers (``7.0`` in a column with gaps)
    read as ``"7"``.
    """
    present = raw.notna()
    if raw.dtype == object and infer_dtype(raw, skipna=True) in ("string", "empty"):
        text = raw.copy()  # already text (CSV cells, simulator ids): no conversion needed
        text[~present] = None
    else:
        source = raw.astype("Int64") if _whole_floats(raw) else raw
        text = pd.Series(np.full(len(raw), None, dtype=object), index=raw.index)
        text[present] = source[present].astype(str)
    text[_blank(text)] = None
    return text


def _blank(text: pd.Series) -> np.ndarray:
    """Cells holding only whitespace, found in Arrow: a Python strip per cell is slow."""
    trimmed = pc.utf8_trim_whitespace(pyarrow.array(text, type=pyarrow.string(), from_pandas=True))
    return pc.fill_null(pc.equal(trimmed, ""), False).to_numpy(zero_copy_only=False)


def _whole_floats(raw: pd.Series) -> bool:
    if not is_float_dtype(raw):
        return False
    values = raw.dropna().to_numpy()
    return bool(np.isfinite(values).all() and (values == np.floor(values)).all())


def _to_text(raw: pd.Series) -> _Coerced:
    return _Coerced(as_text(raw))


def _to_number(raw: pd.Series) -> _Coerced:
    if is_numeric_dtype(raw) and not is_bool_dtype(raw):
        present = raw.notna()
        values = raw.astype("float64")
    else:
        text = as_text(raw)
        present = text.notna()
        values = pd.to_numeric(text.str.strip(), errors="coerce").astype("float64")
    failed = present & ~np.isfinite(values)
    return _Coerced(values.where(~failed), ((EXPECTED_NUMBER, failed),))


def _to_flag(raw: pd.Series) -> _Coerced:
    if is_bool_dtype(raw):
        return _Coerced(raw.astype("boolean"))
    text = as_text(raw).str.strip().str.lower()
    values = text.map(FLAG_WORDS)
    failed = text.notna() & values.isna()
    return _Coerced(values.astype("boolean"), ((EXPECTED_FLAG, failed),))


def _to_date(raw: pd.Series) -> _Coerced:
    if is_datetime64_any_dtype(raw):
        wall_clock = raw.dt.tz_localize(None) if raw.dt.tz is not None else raw
        values, out_of_range = _as_nanoseconds(wall_clock)
        failures: tuple[tuple[str, pd.Series], ...] = ((EXPECTED_IN_RANGE, out_of_range),)
    else:
        text = as_text(raw).str.strip()
        values = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
        with_time = values.isna() & text.str.match(_NAIVE_DATE_TIME, na=False)
        values[with_time] = pd.to_datetime(text[with_time], format="ISO8601", errors="coerce")
        failures = ((EXPECTED_DATE, text.notna() & values.isna()),)
    timed = values.notna() & (values != values.dt.normalize())
    return _Coerced(values.where(~timed), (*failures, (EXPECTED_MIDNIGHT, timed)))


def _to_timestamp(raw: pd.Series) -> _Coerced:
    if is_datetime64_any_dtype(raw) and raw.dt.tz is None:
        return _Coerced(_no_timestamps(raw.index), ((EXPECTED_ZONE, raw.notna()),))
    if is_datetime64_any_dtype(raw):
        values, out_of_range = _as_nanoseconds(raw.dt.tz_convert("UTC").dt.tz_localize(None))
        return _Coerced(values.dt.tz_localize("UTC"), ((EXPECTED_IN_RANGE, out_of_range),))
    text = as_text(raw).str.strip()
    zoned = text.str.contains(_ZONED, case=False, na=False)
    values = _no_timestamps(raw.index)
    values[zoned] = pd.to_datetime(text[zoned], format="ISO8601", utc=True, errors="coerce")
    naive = text.notna() & ~zoned
    unparsed = zoned & values.isna()
    return _Coerced(values, ((EXPECTED_ZONE, naive), (EXPECTED_TIMESTAMP, unparsed)))


def _no_timestamps(index: pd.Index) -> pd.Series:
    return pd.Series(pd.NaT, index=index, dtype=TIMESTAMP_DTYPE)


def _as_nanoseconds(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Naive date-times in nanoseconds, and the ones outside the range nanoseconds can hold."""
    if values.dt.unit == "ns":
        return values, pd.Series(False, index=values.index)
    outside = (values < pd.Timestamp.min) | (values > pd.Timestamp.max)
    return values.where(~outside).dt.as_unit("ns"), outside


COERCERS: dict[ColumnKind, Callable[[pd.Series], _Coerced]] = {
    "text": _to_text,
    "number": _to_number,
    "flag": _to_flag,
    "date": _to_date,
    "timestamp": _to_timestamp,
}
"""How each kind of contract column is read."""
