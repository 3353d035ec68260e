"""Simulation time: float days since the world's epoch (midnight UTC of the start date).

Customers live in IANA time zones, so "07:00 on the due date" means local wall-clock time; these
helpers convert whole arrays between local wall time and UTC, one vectorised pass per zone.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

NS_PER_DAY = 86_400 * 10**9


def epoch_of(start: dt.date) -> pd.Timestamp:
    """The world's epoch: midnight UTC of ``start``."""
    return pd.Timestamp(start, tz="UTC")


def local_to_utc_days(
    local_days: np.ndarray, zone_index: np.ndarray, zones: tuple[str, ...], epoch: pd.Timestamp
) -> np.ndarray:
    """Convert local wall-clock times (days since the epoch, read as local) to UTC days.

    Non-existent local times (spring-forward gap) move forward; ambiguous ones (fall-back hour)
    read as standard time.
    """
    out = np.empty(len(local_days), dtype=np.float64)
    base = epoch.tz_localize(None)
    for index, zone in enumerate(zones):
        rows = np.flatnonzero(zone_index == index)
        if rows.size == 0:
            continue
        ns = base.value + np.round(local_days[rows] * NS_PER_DAY).astype(np.int64)
        aware = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize(
            zone, ambiguous=np.zeros(rows.size, dtype=bool), nonexistent="shift_forward"
        )
        utc_ns = aware.tz_convert("UTC").tz_localize(None).asi8 - base.value
        out[rows] = utc_ns / NS_PER_DAY
    return out


def utc_to_local_days(
    utc_days: np.ndarray, zone_index: np.ndarray, zones: tuple[str, ...], epoch: pd.Timestamp
) -> np.ndarray:
    """Convert UTC days to local wall-clock days (same origin), e.g. to read the local hour."""
    out = np.empty(len(utc_days), dtype=np.float64)
    base = epoch
    for index, zone in enumerate(zones):
        rows = np.flatnonzero(zone_index == index)
        if rows.size == 0:
            continue
        ns = base.value + np.round(utc_days[rows] * NS_PER_DAY).astype(np.int64)
        aware = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(zone)
        local_ns = aware.tz_localize(None).asi8 - base.tz_localize(None).value
        out[rows] = local_ns / NS_PER_DAY
    return out


def local_hour(
    utc_days: np.ndarray, zone_index: np.ndarray, zones: tuple[str, ...], epoch: pd.Timestamp
) -> np.ndarray:
    """Local hour of day (fractional, 0 <= h < 24) of each UTC instant."""
    local = utc_to_local_days(utc_days, zone_index, zones, epoch)
    return (local - np.floor(local)) * 24.0


def to_timestamps(days: np.ndarray, epoch: pd.Timestamp) -> pd.DatetimeIndex:
    """UTC timestamps to the second, as exports carry them (NaT where ``days`` is not finite)."""
    finite = np.isfinite(days)
    seconds = np.round(np.where(finite, days, 0.0) * 86_400.0).astype(np.int64)
    ns = seconds * 10**9 + epoch.value
    values = np.where(finite, ns, np.iinfo(np.int64).min).astype("datetime64[ns]")
    return pd.DatetimeIndex(values).tz_localize("UTC")


def to_dates(days: np.ndarray, epoch: pd.Timestamp) -> pd.DatetimeIndex:
    """Calendar dates (naive ``datetime64[ns]`` at midnight) of whole local day numbers."""
    ns = np.asarray(days, dtype=np.int64) * NS_PER_DAY + epoch.tz_localize(None).value
    return pd.DatetimeIndex(ns.astype("datetime64[ns]"))
