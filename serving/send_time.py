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
from functools import lru_cache

import numpy as np
from numba import njit

from features.labels import OBSERVED_OPEN_CHANNELS
from reminder_policy.local_time import DAY_NS, HOUR_NS, NAT, aware_local, wall_instants, zone_rows
from serving.feature_rows import FeatureRows
from training.model import CalibratedLightGBM

_OBSERVED = frozenset(OBSERVED_OPEN_CHANNELS)
_MESSAGE_COLUMNS = ("channel", "tone", "offer", "stage")


@dataclass(frozen=True)
class SendPlan:
    """Per decision: when to send (UTC ns, and local) and the open probability there (NaN if
    none)."""

    send_at: np.ndarray
    send_at_local: np.ndarray
    """``send_at`` as local wall-clock ns in each row's zone."""
    open_probability: np.ndarray


@lru_cache(maxsize=16)
def candidate_hours(send_hours: tuple[int, int], quiet_hours: tuple[int, int]) -> np.ndarray:
    """The local hours a message may be planned at: within ``send_hours``, outside quiet hours
    (computed once per setting; read-only)."""
    first, last = send_hours
    start, end = quiet_hours
    hours = np.arange(first, last + 1)
    quiet = (hours >= start) | (hours < end) if start > end else (hours >= start) & (hours < end)
    allowed = hours[~quiet]
    allowed.flags.writeable = False
    return allowed


@dataclass(frozen=True)
class CandidateGrid:
    """The candidate send times of messages: column 0 the earliest allowed time, column
    ``1 + j`` whole hour ``hours[j]`` of its local day."""

    day: np.ndarray
    """Each message's local day: its local midnight as wall-clock ns."""
    utc: np.ndarray
    """(m, 1 + len(hours)) UTC ns; NaT where the hour is skipped or repeated that day."""
    valid: np.ndarray
    """(m, 1 + len(hours)) which candidates compete (see the module docstring)."""
    hours: np.ndarray
    """The local hour of each valid candidate, row by row (what the model rates)."""
    segments: np.ndarray
    """Valid candidates ``segments[i]:segments[i + 1]`` are message ``i``'s."""


def candidate_grid(
    earliest: np.ndarray,
    earliest_local: np.ndarray,
    send_before: np.ndarray,
    zones: np.ndarray,
    hours: np.ndarray,
) -> CandidateGrid:
    """The candidates of messages whose earliest allowed times are ``earliest`` (UTC ns) and
    ``earliest_local`` (local wall-clock ns in each row's zone), ``send_before`` their deadlines
    (NAT: none), ``hours`` the allowed local hours. Each zone's rows go through one compiled
    loop, then every row through another: a message's few dozen candidates cost less than
    the numpy calls that would build them."""
    day = earliest_local // DAY_NS * DAY_NS
    hour_utc = np.empty((len(day), len(hours)), dtype=np.int64)
    for table, rows in zone_rows(zones):
        hour_utc[rows] = _hour_instants(day[rows], hours, table.transitions, table.offsets)
    is_send_hour = np.zeros(24, dtype=np.bool_)
    is_send_hour[hours] = True
    return CandidateGrid(
        day, *_candidates(earliest, earliest_local, day, send_before, hour_utc, hours, is_send_hour)
    )


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _hour_instants(day, hours, transitions, offsets):  # type: ignore[no-untyped-def]
    """``[i, j]``: the UTC ns of local time ``day[i] + hours[j]``, NaT if that wall-clock time
    is skipped or repeated (never at reminder hours in practice; dropped)."""
    out = np.empty((day.size, hours.size), dtype=np.int64)
    for i in range(day.size):
        for j in range(hours.size):
            earliest, latest, _ = wall_instants(day[i] + hours[j] * HOUR_NS, transitions, offsets)
            out[i, j] = earliest if earliest == latest else NAT
    return out


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _candidates(earliest, local, day, deadline, hour_utc, hours, is_send_hour):  # type: ignore[no-untyped-def]
    """The fields of :class:`CandidateGrid` after ``day``. A whole hour is valid when it exists
    once, is not before the earliest time and not after the deadline; the earliest time is
    valid when it is in a send hour itself, or when no whole hour is left."""
    m, k = hour_utc.shape
    utc = np.empty((m, k + 1), dtype=np.int64)
    valid = np.zeros((m, k + 1), dtype=np.bool_)
    first_hours = (local - day) // HOUR_NS
    segments = np.zeros(m + 1, dtype=np.int64)
    for i in range(m):
        first = earliest[i]
        utc[i, 0] = first
        hour_left = False
        for j in range(k):
            t = hour_utc[i, j]
            utc[i, j + 1] = t
            ok = t != NAT and t >= first and (deadline[i] == NAT or t <= deadline[i])
            valid[i, j + 1] = ok
            hour_left |= ok
        valid[i, 0] = is_send_hour[first_hours[i]] or not hour_left
        segments[i + 1] = segments[i] + valid[i].sum()
    rated_hours = np.empty(segments[m], dtype=np.float64)
    at = 0
    for i in range(m):
        for j in range(k + 1):
            if valid[i, j]:
                rated_hours[at] = first_hours[i] if j == 0 else hours[j - 1]
                at += 1
    return utc, valid, rated_hours, segments


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _best(utc, valid, local, day, hours, probabilities):  # type: ignore[no-untyped-def]
    """Per message, the first best-rated valid candidate: its UTC ns, local wall-clock ns and
    probability (``probabilities`` of the valid candidates, row by row)."""
    m, columns = valid.shape
    send_at = np.empty(m, dtype=np.int64)
    send_at_local = np.empty(m, dtype=np.int64)
    best_probability = np.empty(m, dtype=np.float64)
    at = 0
    for i in range(m):
        best = -1
        for j in range(columns):
            if valid[i, j]:
                if best < 0 or probabilities[at] > best_probability[i]:
                    best = j
                    best_probability[i] = probabilities[at]
                at += 1
        send_at[i] = utc[i, best]
        send_at_local[i] = local[i] if best == 0 else day[i] + hours[best - 1] * HOUR_NS
    return send_at, send_at_local, best_probability


def plan_send_times(
    features: FeatureRows,
    message: Mapping[str, np.ndarray],
    earliest: np.ndarray,
    earliest_local: np.ndarray,
    send_before: np.ndarray,
    zones: np.ndarray,
    model: CalibratedLightGBM,
    hours: np.ndarray,
    source: tuple[CalibratedLightGBM, np.ndarray] | None = None,
) -> SendPlan:
    """The best candidate send time of each message (``message``: channel, tone, offer, stage
    arrays; rows with no channel are no contact and keep ``earliest``). Times are UTC ns
    (``send_before`` NAT: no deadline); ``earliest_local`` is ``earliest`` as local wall-clock
    ns in each row's zone. ``source``, another model and its feature matrix of
    ``features``, lends the columns the send-time model reads alike
    (:meth:`CalibratedLightGBM.feature_matrix_from`)."""
    send_at, send_at_local = earliest.copy(), earliest_local.copy()
    probability = np.full(len(earliest), np.nan)
    rows = np.flatnonzero([channel in _OBSERVED for channel in message["channel"].tolist()])
    if rows.size == 0:
        return SendPlan(send_at, send_at_local, probability)
    local = earliest_local[rows]
    grid = candidate_grid(earliest[rows], local, send_before[rows], zones[rows], hours)
    # Candidates of a message differ only in the hour: each message's row is built once and
    # the model walks it once per tree, splitting its candidates where a tree splits on hours.
    unset = np.zeros(len(earliest))
    base = {**features, "send_hour": unset, "send_weekday": unset}
    base.update({column: message[column] for column in _MESSAGE_COLUMNS})
    if source is None:
        matrix = model.feature_matrix(base)[rows]
    else:
        matrix = model.feature_matrix_from(*source, base)[rows]
    matrix[:, model.feature_index("send_weekday")] = weekday(grid.day)
    rated = model.candidate_probabilities(matrix, "send_hour", grid.hours, grid.segments)
    send_at[rows], send_at_local[rows], probability[rows] = _best(
        grid.utc, grid.valid, local, grid.day, hours, rated
    )
    return SendPlan(send_at, send_at_local, probability)


def weekday(day: np.ndarray) -> np.ndarray:
    """Day of the week of local midnights (int64 ns), Monday 0 (1 January 1970 was a
    Thursday)."""
    return ((day // DAY_NS + 3) % 7).astype(np.float64)


def local_times(utc: np.ndarray, local: np.ndarray) -> list[datetime]:
    """Each UTC time (ns, never NaT) with its local wall-clock time (ns) as an aware datetime at
    its zone's offset then: what the decision shows as the local send time (JSON carries the
    offset, not the zone's name)."""
    return [
        aware_local(wall, instant)
        for wall, instant in zip(local.tolist(), utc.tolist(), strict=True)
    ]
