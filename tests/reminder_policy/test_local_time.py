"""Local times on int64 arrays equal pandas' conversions, in the awkward zones too."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from paynudge.errors import DataError
from reminder_policy.local_time import NAT, instant_ns, to_local, wall_clock_instants

ZONES = (
    "Europe/Amsterdam",  # DST at 02:00/03:00 local
    "America/Sao_Paulo",  # DST changes at midnight (until 2019)
    "Australia/Lord_Howe",  # a half-hour DST shift
    "Asia/Kathmandu",  # +05:45, changed in 1986
    "Pacific/Apia",  # skipped 30 December 2011 entirely
    "America/St_Johns",  # -03:30 / -02:30
    "UTC",
    "Etc/GMT+3",
)
HOUR_NS = 3_600 * 10**9


def instants(seed: int, n: int = 4_000) -> np.ndarray:
    """Random instants 1975-2036, half of them a few hours around a DST change in spring or
    autumn, on whole or half hours (where clocks change), some to the nanosecond."""
    rng = np.random.default_rng(seed)
    start, end = pd.Timestamp("1975-01-01").value, pd.Timestamp("2036-12-31").value
    times = rng.integers(start, end, n)
    years = rng.integers(1975, 2037, n // 2)
    months = rng.choice([3, 4, 9, 10, 11, 12], n // 2)
    around = pd.to_datetime({"year": years, "month": months, "day": rng.integers(1, 29, n // 2)})
    half_hours = rng.integers(0, 48, n // 2) * HOUR_NS // 2
    times[: n // 2] = around.to_numpy().astype(np.int64) + half_hours
    times[::7] += rng.integers(0, HOUR_NS, len(times[::7]))
    return times


@pytest.mark.parametrize("zone", ZONES)
def test_utc_to_local_equals_pandas(zone: str) -> None:
    utc = instants(1)
    expected = pd.DatetimeIndex(utc, tz="UTC").tz_convert(zone).tz_localize(None).asi8
    zones = np.full(len(utc), zone, dtype=object)
    np.testing.assert_array_equal(to_local(utc, zones), expected)


@pytest.mark.parametrize("zone", ZONES)
def test_local_to_utc_equals_pandas_for_repeated_and_skipped_times(zone: str) -> None:
    wall = instants(2)
    index = pd.DatetimeIndex(wall)
    dst = index.tz_localize(zone, ambiguous=np.ones(len(wall), bool), nonexistent="NaT").asi8
    std = index.tz_localize(zone, ambiguous=np.zeros(len(wall), bool), nonexistent="NaT").asi8
    zones = np.full(len(wall), zone, dtype=object)
    found = wall_clock_instants(wall, zones)
    np.testing.assert_array_equal(found.earliest, np.minimum(dst, std))
    np.testing.assert_array_equal(found.latest, np.maximum(dst, std))
    skipped = found.earliest == NAT
    assert (found.gap_end[~skipped] == NAT).all()
    # A skipped time's gap ends at the first instant whose local time passes it. (Not pandas'
    # nonexistent="shift_forward": it lands an hour late in Apia's 2011 gap, pandas#40915.)
    end = found.gap_end[skipped]
    assert (to_local(end, zones[skipped]) > wall[skipped]).all()
    assert (to_local(end - 1, zones[skipped]) < wall[skipped]).all()


def test_rows_of_many_zones_and_nat_keep_their_places() -> None:
    utc = instants(3, 200)
    utc[5] = NAT
    zones = np.array([ZONES[i % len(ZONES)] for i in range(200)], dtype=object)
    local = to_local(utc, zones)
    assert local[5] == NAT
    for i in (0, 1, 2, 7, 199):
        expected = pd.Timestamp(utc[i], tz="UTC").tz_convert(zones[i]).tz_localize(None).value
        assert local[i] == expected
    back = wall_clock_instants(local, zones)
    assert back.earliest[5] == NAT
    assert ((back.earliest == utc) | (back.latest == utc))[utc != NAT].all()


def test_an_unknown_zone_is_named() -> None:
    with pytest.raises(DataError, match="Mars/Olympus_Mons"):
        to_local(np.zeros(1, np.int64), np.array(["Mars/Olympus_Mons"], dtype=object))


def test_a_missing_zone_is_refused_with_its_row() -> None:
    zones = np.array(["UTC", "Asia/Tokyo", None], dtype=object)
    with pytest.raises(DataError, match="expected an IANA zone name, row 2 has"):
        to_local(np.zeros(3, np.int64), zones)


@pytest.mark.parametrize("zone", ZONES)
def test_instants_of_aware_naive_and_pandas_times_are_their_utc_nanoseconds(zone: str) -> None:
    utc = pd.DatetimeIndex(instants(5, 300) // 1000 * 1000, tz="UTC")  # datetimes hold us
    for stamp in utc.tz_convert(zone):
        expected = stamp.value
        assert instant_ns(stamp) == expected
        assert instant_ns(stamp.to_pydatetime()) == expected  # pytz, zoneinfo or fixed tzinfo
        assert instant_ns(stamp.tz_convert("UTC").tz_localize(None).to_pydatetime()) == expected
        assert instant_ns(stamp.to_pydatetime().astimezone(ZoneInfo(zone))) == expected
    assert instant_ns(None) == NAT
