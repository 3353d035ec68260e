"""Train / validation / test splits: out of time for simulated data, stratified for tables.

The PayNudge models score the future from the past, so they are evaluated the same way: train on
the earlier months, early-stop and calibrate on the next month, report on the latest month. A
random split would leak each customer's future into training. A table without a time column gets
a stratified holdout instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from paynudge.errors import DataError

TEST_FRACTION = 0.25
"""Share of a table held out for the test set when no test table is given."""
VALID_FRACTION = 0.2
"""Share of the remaining rows carved out (stratified) for early stopping and calibration."""
MIN_CLASS_ROWS = 10
"""Fewest rows of each label value a holdout split needs: every part must see both classes."""
MIN_MONTHS = 3
"""An out-of-time split needs a train, a validation and a test month."""


@dataclass(frozen=True)
class Split:
    """Rows for fitting, for early stopping and calibration, and for the reported metrics."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    description: str


def _months(times: pd.Series, time_column: str) -> pd.Series:
    """Calendar month (UTC for zone-aware times) of every row, as the integer ``YYYYMM``.

    Integer arithmetic on the year and month fields, not string formatting: a million rows
    take milliseconds instead of seconds.
    """
    if not pd.api.types.is_datetime64_any_dtype(times):
        raise DataError(f"time column {time_column!r} has dtype {times.dtype}, not a timestamp")
    if times.dt.tz is not None:
        times = times.dt.tz_convert("UTC")
    return times.dt.year * 100 + times.dt.month


def _month_name(month: int) -> str:
    """``YYYY-MM`` of a ``YYYYMM`` month key."""
    return f"{month // 100:04d}-{month % 100:02d}"


def out_of_time_split(frame: pd.DataFrame, time_column: str) -> Split:
    """Earlier months train, the next-to-last month validates, the latest month tests."""
    if time_column not in frame.columns:
        raise DataError(f"time column {time_column!r} is not among the dataset's columns")
    if frame[time_column].isna().any():
        raise DataError(f"time column {time_column!r} has missing values")
    month = _months(frame[time_column], time_column)
    months = sorted(int(key) for key in month.unique())
    names = [_month_name(key) for key in months]
    if len(months) < MIN_MONTHS:
        raise DataError(
            f"an out-of-time split needs at least {MIN_MONTHS} months in {time_column!r}; "
            f"found {len(months)} ({', '.join(names)})"
        )
    valid_month, test_month = months[-2], months[-1]
    train = frame[month < valid_month]
    valid = frame[month == valid_month]
    test = frame[month == test_month]
    description = (
        f"out of time on {time_column}: train {names[0]}..{names[-3]} ({len(train)} rows), "
        f"valid {names[-2]} ({len(valid)} rows), test {names[-1]} ({len(test)} rows)"
    )
    return Split(train, valid, test, description)


def _check_classes(frame: pd.DataFrame, label: str) -> None:
    counts = frame[label].value_counts()
    if len(counts) < 2 or counts.min() < MIN_CLASS_ROWS:
        found = ", ".join(f"{value!r}: {count}" for value, count in counts.items())
        raise DataError(
            f"a stratified split needs at least {MIN_CLASS_ROWS} rows of each value of label "
            f"{label!r}; found {found}"
        )


def _stratified(frame: pd.DataFrame, label: str, fraction: float, seed: int):
    return train_test_split(
        frame, test_size=fraction, stratify=frame[label], random_state=seed, shuffle=True
    )


def holdout_split(
    frame: pd.DataFrame, label: str, test: pd.DataFrame | None = None, seed: int = 0
) -> Split:
    """A stratified 25% test set unless ``test`` is given; validation carved stratified."""
    if label not in frame.columns:
        raise DataError(f"label column {label!r} is not among the table's columns")
    _check_classes(frame, label)
    if test is None:
        frame, test = _stratified(frame, label, TEST_FRACTION, seed)
        origin = f"stratified {TEST_FRACTION:.0%} holdout"
    else:
        origin = "the given test table"
    train, valid = _stratified(frame, label, VALID_FRACTION, seed)
    description = (
        f"train {len(train)} rows, valid {len(valid)} rows (stratified {VALID_FRACTION:.0%}), "
        f"test {len(test)} rows ({origin}), seed {seed}"
    )
    return Split(train, valid, test, description)
