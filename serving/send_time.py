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

from features.labels import OBSERVED_OPEN_CHANNELS
from reminder_policy.local_time import DAY_NS, NAT, aware_local, wall_clock_instants
from serving.feature_rows import FeatureRows
from training.model import CalibratedLightGBM

NS_PER_HOUR = 3_600 * 10**9
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


def _to_utc(wall: np.ndarray, zones: np.ndarray) -> np.ndarray:
    """UTC ns of local wall-clock times (n, k); NaT-as-int for times a DST change skips or
    repeats (never at reminder hours in practice; such candidates are simply dropped)."""
    k = wall.shape[1]
    found = wall_clock_instants(wall.reshape(-1), np.repeat(zones, k))
    utc = np.where(found.ambiguous, NAT, found.earliest)
    return utc.reshape(wall.shape)


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
    n = len(earliest)
    send_at, send_at_local = earliest.copy(), earliest_local.copy()
    probability = np.full(n, np.nan)
    observed = [channel in _OBSERVED for channel in message["channel"].tolist()]
    rows = np.flatnonzero(observed)
    if rows.size == 0:
        return SendPlan(send_at, send_at_local, probability)
    first = earliest[rows]
    local = earliest_local[rows]
    day = local // DAY_NS * DAY_NS
    utc = np.empty((rows.size, len(hours) + 1), dtype=np.int64)
    utc[:, 0] = first
    walls = day[:, None] + hours[None, :] * NS_PER_HOUR
    utc[:, 1:] = _to_utc(walls, zones[rows])
    first_hour = (local - day) // NS_PER_HOUR
    deadline = send_before[rows]
    valid = (utc >= first[:, None]) & (utc != NAT)
    valid &= (deadline == NAT)[:, None] | (utc <= deadline[:, None])
    hour_ok = valid[:, 1:].any(axis=1)
    # The earliest time competes when it is a send hour itself, or when no whole hour is left.
    is_send_hour = np.zeros(24, dtype=bool)
    is_send_hour[hours] = True
    valid[:, 0] = is_send_hour[first_hour] | ~hour_ok
    # Only valid candidates are scored (earlier hours of the day are the most common misses).
    # Candidates of a message differ only in the hour: each message's row is built once and
    # the model walks it once per tree, splitting its candidates where a tree splits on hours.
    message_of, candidate_of = np.nonzero(valid)
    unset = np.zeros(n)
    base = {**features, "send_hour": unset, "send_weekday": unset}
    base.update({column: message[column] for column in _MESSAGE_COLUMNS})
    if source is None:
        matrix = model.feature_matrix(base)[rows]
    else:
        matrix = model.feature_matrix_from(*source, base)[rows]
    matrix[:, model.feature_index("send_weekday")] = weekday(day)
    hour_of = np.concatenate([[0], hours])[candidate_of]
    candidate_hour = np.where(candidate_of == 0, first_hour[message_of], hour_of)
    segments = np.concatenate([[0], np.cumsum(valid.sum(axis=1))])
    scores = np.full(utc.shape, -np.inf)
    scores[message_of, candidate_of] = model.candidate_probabilities(
        matrix, "send_hour", candidate_hour, segments
    )
    best = np.argmax(scores, axis=1)
    picked = np.arange(rows.size)
    send_at[rows] = utc[picked, best]
    # A valid hour's wall-clock time maps to one instant (skipped and repeated ones are dropped).
    send_at_local[rows] = np.where(best == 0, local, walls[picked, best - 1])
    probability[rows] = scores[picked, best]
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
