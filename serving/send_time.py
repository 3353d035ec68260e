"""The send hour: the allowed local hour the send-time model rates best for the chosen message.

The guardrails give the earliest allowed send time (out of quiet hours). The candidates are that
time itself and each whole local hour of ``settings.send_hours`` on the same local day that is
not quiet, not earlier and not past the request's ``send_before``. Moving a message later on the
same local day keeps every guardrail satisfied (caps and consent do not depend on the hour; the
due-date, promise and letter rules only get easier later that day). The send-time model scores
every candidate with the message's channel, tone, offer and stage; the best wins. Channels whose
opens are never observed (letters) are sent at the earliest allowed time, with no open
probability.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from features.labels import OBSERVED_OPEN_CHANNELS
from reminder_policy.local_time import NAT, aware_local, to_local, wall_clock_instants
from serving.feature_rows import FeatureRows, take_rows
from training.model import CalibratedLightGBM

NS_PER_HOUR = 3_600 * 10**9


@dataclass(frozen=True)
class SendPlan:
    """Per decision: when to send (UTC) and the open probability there (NaN if none)."""

    send_at: pd.DatetimeIndex
    open_probability: np.ndarray


def candidate_hours(send_hours: tuple[int, int], quiet_hours: tuple[int, int]) -> np.ndarray:
    """The local hours a message may be planned at: within ``send_hours``, outside quiet hours."""
    first, last = send_hours
    start, end = quiet_hours
    hours = np.arange(first, last + 1)
    quiet = (hours >= start) | (hours < end) if start > end else (hours >= start) & (hours < end)
    return hours[~quiet]


def _wall_clock(times: pd.DatetimeIndex, zones: np.ndarray) -> np.ndarray:
    """Local wall-clock times (naive ns) of UTC ``times`` in each row's zone."""
    return to_local(times.as_unit("ns").asi8, zones).view("datetime64[ns]")


def _to_utc(wall: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """UTC ns of local wall-clock times (n, k); NaT-as-int for times a DST change skips or
    repeats (never at reminder hours in practice; such candidates are simply dropped)."""
    k = wall.shape[1]
    found = wall_clock_instants(wall.reshape(-1).astype(np.int64), np.repeat(zones, k))
    utc = np.where(found.ambiguous, NAT, found.earliest)
    return utc.reshape(wall.shape)


def plan_send_times(
    features: FeatureRows,
    message: Mapping[str, np.ndarray],
    earliest: pd.DatetimeIndex,
    send_before: pd.DatetimeIndex,
    zones: np.ndarray,
    model: CalibratedLightGBM,
    hours: np.ndarray,
) -> SendPlan:
    """The best candidate send time of each message (``message``: channel, tone, offer, stage
    arrays; rows with no channel are no contact and keep ``earliest``)."""
    n = len(earliest)
    send_at = earliest.as_unit("ns").asi8.copy()
    probability = np.full(n, np.nan)
    channel = np.asarray(message["channel"], dtype=object)
    rows = np.flatnonzero(np.isin(channel, OBSERVED_OPEN_CHANNELS))
    if rows.size == 0:
        return SendPlan(pd.DatetimeIndex(send_at, tz="UTC"), probability)
    local = _wall_clock(earliest[rows], zones[rows])
    day = local.astype("datetime64[D]").astype("datetime64[ns]")
    walls = day[:, None] + (hours[None, :] * NS_PER_HOUR).astype("timedelta64[ns]")
    utc = np.column_stack([earliest[rows].as_unit("ns").asi8, _to_utc(walls, zones[rows])])
    first_hour = (local - day) // np.timedelta64(1, "h")
    deadline = send_before[rows].as_unit("ns").asi8
    no_deadline = send_before[rows].isna()
    valid = (utc >= utc[:, :1]) & (utc != pd.NaT.value)
    valid &= no_deadline[:, None] | (utc <= deadline[:, None])
    hour_ok = valid[:, 1:].any(axis=1)
    # The earliest time competes when it is a send hour itself, or when no whole hour is left.
    valid[:, 0] = np.isin(first_hour, hours) | ~hour_ok
    k = utc.shape[1]
    candidate_hours = np.column_stack([first_hour, np.broadcast_to(hours, (rows.size, k - 1))])
    # Candidates of a message differ only in the hour: build each message's row once, then
    # repeat it per candidate and set the hour column.
    candidates = take_rows(features, rows)
    candidates["send_hour"] = np.zeros(rows.size)
    candidates["send_weekday"] = weekday(day)
    for column in ("channel", "tone", "offer", "stage"):
        candidates[column] = np.asarray(message[column], dtype=object)[rows]
    # Only valid candidates are scored (earlier hours of the day are the most common misses).
    message_of, candidate_of = np.nonzero(valid)
    matrix = model.feature_matrix(candidates)[message_of]
    matrix[:, model.feature_index("send_hour")] = candidate_hours[message_of, candidate_of]
    scores = np.full((rows.size, k), -np.inf)
    scores[message_of, candidate_of] = model.predict_proba_matrix(matrix)[:, 1]
    best = np.argmax(scores, axis=1)
    picked = np.arange(rows.size)
    send_at[rows] = utc[picked, best]
    probability[rows] = scores[picked, best]
    return SendPlan(pd.DatetimeIndex(send_at, tz="UTC"), probability)


def weekday(day: np.ndarray) -> np.ndarray:
    """Day of the week of datetime64 dates, Monday 0 (1 January 1970 was a Thursday)."""
    days = day.astype("datetime64[D]").astype(np.int64)
    return ((days + 3) % 7).astype(np.float64)


def local_times(times: pd.DatetimeIndex, zones: np.ndarray) -> list[datetime]:
    """Each UTC time (never NaT) as an aware datetime at its zone's offset then: what the
    decision shows as the local send time (JSON carries the offset, not the zone's name)."""
    utc = times.as_unit("ns").asi8
    local = to_local(utc, zones)
    return [
        aware_local(wall, instant)
        for wall, instant in zip(local.tolist(), utc.tolist(), strict=True)
    ]
