"""The send plan against a plain per-message reference: pandas' time zones and LightGBM's own
predictions on every candidate row, on days with daylight-saving changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.labels import OBSERVED_OPEN_CHANNELS
from paynudge.vocabulary import CHANNELS, OFFERS, TONES
from reminder_policy.local_time import NAT, to_local
from serving.decision import Components, decide_batch
from serving.feature_rows import rows_frame, take_rows
from serving.send_time import candidate_grid, candidate_hours, plan_send_times
from training.model import CalibratedLightGBM

STAGES = ("pre_due", "due", "overdue_3", "overdue_10", "overdue_30")
DST_DAYS = {  # zone -> days on which its clocks change (2025)
    "America/Havana": ("2025-03-09", "2025-11-02"),  # at midnight: 00:00 skipped / repeated
    "Australia/Lord_Howe": ("2025-04-06", "2025-10-05"),  # half-hour changes
    "Europe/London": ("2025-03-30", "2025-10-26"),
    "America/New_York": ("2025-03-09", "2025-11-02"),
    "Asia/Kolkata": ("2025-03-09",),  # no changes, a half-hour offset
    "UTC": ("2025-06-01",),
}


def reference_candidates(
    earliest: int, send_before: int, zone: str, hours: np.ndarray
) -> list[tuple[int, int, float]]:
    """(UTC ns, local wall-clock ns, local hour) of a message's candidates, by pandas: the
    earliest time and each whole hour of its local day that exists once, is not earlier and
    not past the deadline; the earliest time first, and only when it is in a send hour
    itself or no hour is left."""
    first = pd.Timestamp(earliest, tz="UTC")
    local = first.tz_convert(zone).tz_localize(None)
    day = local.normalize()
    deadline = None if send_before == NAT else pd.Timestamp(send_before, tz="UTC")
    walls = pd.DatetimeIndex([day + pd.Timedelta(hours=int(h)) for h in hours])
    instants = walls.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").tz_convert("UTC")
    candidates = [
        (utc.value, wall.value, float(hour))
        for utc, wall, hour in zip(instants, walls, hours, strict=True)
        if utc is not pd.NaT and utc >= first and (deadline is None or utc <= deadline)
    ]
    if local.hour in hours.tolist() or not candidates:
        candidates.insert(0, (first.value, local.value, float(local.hour)))
    return candidates


def reference_plan(
    features: dict[str, np.ndarray],
    message: dict[str, np.ndarray],
    earliest: np.ndarray,
    send_before: np.ndarray,
    zones: np.ndarray,
    model: CalibratedLightGBM,
    hours: np.ndarray,
) -> list[tuple[int, int, float]]:
    """(send at UTC ns, local wall-clock ns, open probability or NaN) per message, one by one:
    LightGBM rates every candidate row; the first best wins."""
    frame = rows_frame(features)
    plans = []
    for i, zone in enumerate(zones.tolist()):
        if message["channel"][i] not in OBSERVED_OPEN_CHANNELS:
            first = pd.Timestamp(int(earliest[i]), tz="UTC")
            plans.append((first.value, first.tz_convert(zone).tz_localize(None).value, np.nan))
            continue
        candidates = reference_candidates(int(earliest[i]), int(send_before[i]), zone, hours)
        rows = frame.iloc[[i] * len(candidates)].reset_index(drop=True)
        weekday = pd.Timestamp(candidates[0][1]).weekday()  # every candidate's day
        rows = rows.assign(
            **{column: message[column][i] for column in ("channel", "tone", "offer", "stage")},
            send_hour=[hour for _, _, hour in candidates],
            send_weekday=float(weekday),
        )
        rated = model.predict_proba(rows)[:, 1]
        best = int(np.argmax(rated))
        plans.append((candidates[best][0], candidates[best][1], float(rated[best])))
    return plans


@dataclass(frozen=True)
class Messages:
    earliest: np.ndarray
    send_before: np.ndarray
    zones: np.ndarray
    days: list[str]


def messages_around_dst_changes(n: int, seed: int) -> Messages:
    """Earliest times from the evening before to the evening of a clock change (to the
    second; a few on whole hours), 40% with a deadline up to 30 hours later."""
    rng = np.random.default_rng(seed)
    zone_names = list(DST_DAYS)
    zones = np.array([zone_names[k] for k in rng.integers(0, len(zone_names), n)], dtype=object)
    days = [DST_DAYS[zone][rng.integers(0, len(DST_DAYS[zone]))] for zone in zones.tolist()]
    offsets = pd.to_timedelta(rng.integers(-6 * 3600, 22 * 3600, n), unit="s")
    earliest = np.array(
        [
            (pd.Timestamp(day) + offset).tz_localize(zone, nonexistent="shift_forward",
                                                     ambiguous=True).value
            for day, offset, zone in zip(days, offsets, zones.tolist(), strict=True)
        ],
        dtype=np.int64,
    )  # fmt: skip
    earliest[:5] = earliest[:5] // 3_600_000_000_000 * 3_600_000_000_000
    deadline = earliest + rng.integers(0, 30 * 3600, n) * 10**9
    send_before = np.where(rng.random(n) < 0.4, deadline, NAT)
    return Messages(earliest, send_before, zones, days)


def test_candidates_are_the_hours_of_the_local_day_that_exist_once_in_time() -> None:
    messages = messages_around_dst_changes(400, seed=3)
    hours = np.arange(24)
    local = to_local(messages.earliest, messages.zones)
    grid = candidate_grid(messages.earliest, local, messages.send_before, messages.zones, hours)
    assert grid.segments[-1] == len(grid.hours) == grid.valid.sum()
    for i, zone in enumerate(messages.zones.tolist()):
        expected = reference_candidates(
            int(messages.earliest[i]), int(messages.send_before[i]), zone, hours
        )
        utc = grid.utc[i][grid.valid[i]]
        assert utc.tolist() == [t for t, _, _ in expected], (i, zone, messages.days[i])
        rated = grid.hours[grid.segments[i] : grid.segments[i + 1]]
        assert rated.tolist() == [hour for _, _, hour in expected]
    skipped_or_repeated = (grid.utc[:, 1:] == NAT).sum()
    assert skipped_or_repeated >= 20  # the test reaches the changes


@pytest.fixture(scope="module")
def features(served_world: Any, make_requests: Any, components: Components):
    requests = make_requests(served_world.profiles, 60, seed=5)
    return decide_batch(requests, components, seed=1).features


@pytest.mark.parametrize("all_hours", [False, True], ids=["send hours", "every hour"])
def test_send_plan_equals_the_per_message_reference_across_dst_changes(
    features: dict[str, np.ndarray], components: Components, all_hours: bool
) -> None:
    rng = np.random.default_rng(11 + all_hours)
    n = 240
    rows = rng.integers(0, len(next(iter(features.values()))), n)
    messages = messages_around_dst_changes(n, seed=12 + all_hours)
    earliest, send_before, zones = messages.earliest, messages.send_before, messages.zones
    message = {
        "channel": np.array([CHANNELS[k] for k in rng.integers(0, len(CHANNELS), n)], object),
        "tone": np.array([TONES[k] for k in rng.integers(0, len(TONES), n)], object),
        "offer": np.array([OFFERS[k] for k in rng.integers(0, len(OFFERS), n)], object),
        "stage": np.array([STAGES[k] for k in rng.integers(0, len(STAGES), n)], object),
    }
    settings = components.settings
    hours = (
        np.arange(24)
        if all_hours
        else candidate_hours(settings.send_hours, settings.policy.guardrails.quiet_hours)
    )
    model = components.models["send_time"].estimator
    taken = take_rows(features, rows)
    plan = plan_send_times(
        taken, message, earliest, to_local(earliest, zones), send_before, zones, model, hours
    )
    expected = reference_plan(taken, message, earliest, send_before, zones, model, hours)
    for i, (send_at, local, probability) in enumerate(expected):
        assert plan.send_at[i] == send_at, (i, zones[i], messages.days[i])
        assert plan.send_at_local[i] == local, (i, zones[i], messages.days[i])
        np.testing.assert_allclose(plan.open_probability[i], probability, rtol=0, atol=1e-12)
    observed = np.isin(message["channel"], OBSERVED_OPEN_CHANNELS)
    assert np.isnan(plan.open_probability[~observed]).all() and observed.sum() > n // 2
    moved = observed & (plan.send_at != earliest)
    assert moved.sum() > n // 4
