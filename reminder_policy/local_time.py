"""Customers' local wall-clock times, on int64 nanoseconds since 1970 (UTC instants).

pandas converts between UTC and a named zone with pytz's transition table: the UTC instants at
which the zone's offset changes and the offset from each on, looked up by binary search. Every
``DatetimeIndex`` operation also costs ~10 microseconds of bookkeeping, which made time zones
a quarter of a single decision's time. This module does the same lookups on plain arrays with
the very tables pandas reads (the zone's pytz object), so its results equal pandas' (the tests
compare them over decades, in zones with half-hour offsets, skipped days and midnight changes).
Each zone's rows go through one compiled loop: a dozen numpy calls per conversion cost more
than the conversion itself for the few rows of one decision.

``NAT`` (int64 minimum, how pandas stores NaT) passes through as NaT.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache

import numpy as np
import pandas as pd
from numba import njit

from paynudge.errors import DataError

NAT = np.iinfo(np.int64).min
"""NaT as pandas stores it in int64."""
DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
_EPOCH = datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def instant_ns(value: datetime | None) -> int:
    """Nanoseconds since 1970 UTC of an aware time (a naive one is taken as UTC); None is NaT."""
    if value is None:
        return NAT
    if isinstance(value, pd.Timestamp):
        return (value if value.tz else value.tz_localize("UTC")).as_unit("ns").value
    if value.tzinfo is not None:  # aware minus aware is the UTC difference
        return _nanoseconds(value - _EPOCH_UTC)
    return _nanoseconds(value - _EPOCH)


def utc_datetime(utc: int) -> datetime:
    """The instant ``utc`` (ns) as an aware UTC datetime (to the microsecond)."""
    return _EPOCH_UTC + timedelta(microseconds=utc // 1000)


def aware_local(wall: int, utc: int) -> datetime:
    """The local wall-clock time ``wall`` (ns) of the instant ``utc`` (ns), as an aware datetime
    at the zone's offset then."""
    offset = _fixed_offset((wall - utc) // 1000)
    return (_EPOCH + timedelta(microseconds=wall // 1000)).replace(tzinfo=offset)


@lru_cache(maxsize=256)
def _fixed_offset(microseconds: int) -> timezone:
    return timezone(timedelta(microseconds=microseconds))


@dataclass(frozen=True)
class ZoneTable:
    """A zone's offsets: ``offsets[i]`` applies from ``transitions[i]`` (UTC ns) on."""

    transitions: np.ndarray
    offsets: np.ndarray


def _nanoseconds(delta: timedelta) -> int:
    return delta // _MICROSECOND * 1000


@lru_cache(maxsize=1024)
def zone_table(zone: str) -> ZoneTable:
    """The transition table pandas uses for ``zone`` (a :class:`DataError` for unknown zones)."""
    try:
        tz = pd.Timestamp(0, tz=zone).tz
    except Exception as error:  # pytz, zoneinfo and dateutil each raise their own
        raise DataError(f"timezone: unknown IANA zone {zone!r}") from error
    if hasattr(tz, "_utc_transition_times"):  # pytz zones with changes (DstTzInfo)
        starts = [_nanoseconds(time - _EPOCH) for time in tz._utc_transition_times[1:]]
        offsets = [_nanoseconds(info[0]) for info in tz._transition_info]
        return ZoneTable(np.array([NAT, *starts], dtype=np.int64), np.array(offsets, np.int64))
    offset = tz.utcoffset(None)  # fixed zones: UTC, Etc/GMT+3, pytz StaticTzInfo
    if offset is None:
        raise DataError(f"timezone: {zone!r} has neither transitions nor a fixed offset")
    return ZoneTable(np.array([NAT], np.int64), np.array([_nanoseconds(offset)], np.int64))


def zone_rows(zones: np.ndarray) -> Iterator[tuple[ZoneTable, np.ndarray | slice]]:
    """Each distinct zone's table and the rows in that zone (all rows as a slice when there is
    one zone: a single decision, or a batch of one country)."""
    values = zones.tolist()
    if not values:
        return
    if all(zone == values[0] for zone in values):
        yield zone_table(str(values[0])), slice(None)
        return
    codes, distinct = pd.factorize(np.asarray(zones, dtype=object), use_na_sentinel=False)
    for code, zone in enumerate(distinct):
        rows = np.flatnonzero(codes == code)
        if not isinstance(zone, str):
            raise DataError(f"timezone: expected an IANA zone name, row {rows[0]} has {zone!r}")
        yield zone_table(zone), rows


def to_local(utc: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """Local wall-clock times (int64 ns) of UTC instants, each in its row's zone."""
    utc = np.asarray(utc, dtype=np.int64)
    out = utc.copy()
    for table, rows in zone_rows(zones):
        out[rows] = _local(utc[rows], table.transitions, table.offsets)
    return out


@dataclass(frozen=True)
class WallClockInstants:
    """The UTC instants showing a local wall-clock time: one, two (a repeated hour) or none (a
    skipped one). ``earliest``/``latest`` are equal for one and NaT for none; ``gap_end`` is the
    first instant after a skipped time's gap (NaT where the time exists)."""

    earliest: np.ndarray
    latest: np.ndarray
    gap_end: np.ndarray

    @property
    def ambiguous(self) -> np.ndarray:
        return self.earliest != self.latest


def wall_clock_instants(wall: np.ndarray, zones: np.ndarray) -> WallClockInstants:
    """:class:`WallClockInstants` of local times (int64 ns) in each row's zone, as pandas'
    ``tz_localize`` finds them: the offsets in force a day before and a day after each time are
    the only candidates, each kept if it maps back to the same wall-clock time."""
    wall = np.asarray(wall, dtype=np.int64)
    found = np.full((3, *wall.shape), NAT, dtype=np.int64)
    for table, rows in zone_rows(zones):
        times = wall[rows]
        part = np.empty((3, times.size), dtype=np.int64)
        _instants(times.reshape(-1), table.transitions, table.offsets, part)
        found[:, rows] = part.reshape(3, *times.shape)
    return WallClockInstants(found[0], found[1], found[2])


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _local(utc, transitions, offsets):  # type: ignore[no-untyped-def]
    out = np.empty_like(utc)
    for i in range(utc.size):
        out[i] = local_wall(utc[i], transitions, offsets)
    return out


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def local_wall(t, transitions, offsets):  # type: ignore[no-untyped-def]
    """The local wall-clock time (ns) of the UTC instant ``t`` in the zone of
    ``transitions``/``offsets`` (NaT in -> NaT out), for compiled callers."""
    if t == NAT:
        return NAT
    return t + offsets[np.searchsorted(transitions, t, side="right") - 1]


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _instants(wall, transitions, offsets, out):  # type: ignore[no-untyped-def]
    """Rows of ``out``: earliest, latest and gap end of each wall-clock time (NaT in -> NaT)."""
    for i in range(wall.size):
        out[0, i], out[1, i], out[2, i] = wall_instants(wall[i], transitions, offsets)


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def wall_instants(t, transitions, offsets):  # type: ignore[no-untyped-def]
    """(earliest, latest, gap end) of the wall-clock time ``t`` (ns) in the zone of
    ``transitions``/``offsets`` (see :class:`WallClockInstants`; NaT in -> NaT out), for
    compiled callers: the offsets in force a day before and a day after are the only
    candidates, each kept if it maps back to ``t``."""
    if t == NAT:
        return NAT, NAT, NAT
    before = t - offsets[np.searchsorted(transitions, t - DAY_NS, side="right") - 1]
    after = t - offsets[np.searchsorted(transitions, t + DAY_NS, side="right") - 1]
    start = np.searchsorted(transitions, before, side="right") - 1
    before_ok = offsets[start] == t - before
    after_ok = offsets[np.searchsorted(transitions, after, side="right") - 1] == t - after
    if before_ok and after_ok:
        return min(before, after), max(before, after), NAT
    if before_ok:
        return before, before, NAT
    if after_ok:
        return after, after, NAT
    return NAT, NAT, transitions[start]  # skipped: the gap ends where the offset before ended
