"""Hard contact rules, applied before the learner chooses, each with a reason code.

:func:`apply_guardrails` turns one row per decision into the allowed actions, the send time moved
out of quiet hours and, per rule, the actions that rule removed. :func:`violations` re-checks one
chosen action at a send time, rule by rule: what the dispatcher runs before sending. It is written
apart from :func:`apply_guardrails` on purpose, so each can test the other. No contact (action 0)
is always allowed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import lru_cache
from typing import TypeAlias

import numpy as np
import pandas as pd
from numba import njit

from paynudge.config import GuardrailSettings
from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS, OFFERS, TONES, consent_column, opt_out_column
from reminder_policy.actions import ACTION_CHANNEL, ACTION_OFFER, ACTION_TONE, N_ACTIONS
from reminder_policy.local_time import (
    DAY_NS,
    HOUR_NS,
    NAT,
    local_wall,
    to_local,
    wall_instants,
    zone_rows,
    zone_table,
)

REASON_CODES: tuple[str, ...] = (
    "no_consent",
    "opted_out",
    "quiet_hours",
    "call_cap",
    "invoice_weekly_cap",
    "customer_daily_cap",
    "dispute_open",
    "hardship",
    "promise_pending",
    "letter_before_due",
    "offer_before_due",
    "paid",
)
"""Every rule's code, in the stable order :meth:`GuardrailResult.reasons` lists them."""

HARDSHIP_TONES: tuple[str, ...] = ("friendly", "neutral")
HARDSHIP_OFFERS: tuple[str, ...] = ("extension", "instalment_plan")
"""A customer in hardship hears only a friendly or neutral tone, and always with an offer."""

_CALL = CHANNELS.index("call")
_LETTER = CHANNELS.index("letter")
_NO_OFFER = OFFERS.index("none")
_HARDSHIP_TONE_CODES = [TONES.index(tone) for tone in HARDSHIP_TONES]
_HARDSHIP_OFFER_CODES = [OFFERS.index(offer) for offer in HARDSHIP_OFFERS]
_CONTACT = np.arange(N_ACTIONS) > 0
_HARDSHIP_OK = np.isin(ACTION_TONE, _HARDSHIP_TONE_CODES) & np.isin(
    ACTION_OFFER, _HARDSHIP_OFFER_CODES
)
_RULE_ACTIONS = np.array(
    [
        {
            "call_cap": ACTION_CHANNEL == _CALL,
            "hardship": _CONTACT & ~_HARDSHIP_OK,
            "letter_before_due": ACTION_CHANNEL == _LETTER,
            "offer_before_due": _CONTACT & (ACTION_OFFER != _NO_OFFER),
        }.get(code, _CONTACT)
        for code in REASON_CODES[2:]
    ]
)
"""The actions each rule after ``no_consent`` and ``opted_out`` (whose actions depend on the
customer's channels) forbids where it applies: every contact unless named here."""
_TIME_FIELDS = ("send_at", "due_at", "promise_until", "send_before")
_OPTIONAL_TIME_FIELDS = ("promise_until", "send_before")
_COUNT_FIELDS = ("calls_7d", "messages_invoice_7d", "messages_customer_24h")
_FLAG_FIELDS = ("dispute_open", "hardship", "paid")


Times: TypeAlias = pd.DatetimeIndex | np.ndarray
"""Instants: a time-zone-aware DatetimeIndex, or int64 nanoseconds since 1970 UTC with
:data:`~reminder_policy.local_time.NAT` for none (the decision path's form: no pandas
bookkeeping per call)."""


@dataclass(frozen=True, eq=False)
class GuardrailInputs:
    """One row per decision; validated on construction (:class:`DataError` names field and row).
    The four time fields are :data:`Times`."""

    send_at: Times
    """Proposed send time."""
    timezone: np.ndarray
    """IANA time zone of each customer (``Europe/Amsterdam``)."""
    due_at: Times
    """End of the due date: the moment the invoice becomes overdue."""
    consent: np.ndarray
    """(n, len(CHANNELS)) consent per channel."""
    opted_out: np.ndarray
    """(n, len(CHANNELS)) opt-out per channel."""
    calls_7d: np.ndarray
    messages_invoice_7d: np.ndarray
    messages_customer_24h: np.ndarray
    dispute_open: np.ndarray
    hardship: np.ndarray
    paid: np.ndarray
    promise_until: Times
    """End of the promised payment date (NaT: no promise)."""
    send_before: Times
    """Latest acceptable send time (NaT: no deadline)."""
    _ns: dict[str, np.ndarray] = field(init=False, repr=False)
    """The time fields as int64 nanoseconds (NaT as NAT), for cheap comparisons."""

    def __post_init__(self) -> None:
        n = len(self.send_at) if isinstance(self.send_at, pd.DatetimeIndex | np.ndarray) else -1
        ns = {
            name: _checked_times(name, getattr(self, name), n, name not in _OPTIONAL_TIME_FIELDS)
            for name in _TIME_FIELDS
        }
        object.__setattr__(self, "_ns", ns)
        late = _after(ns["send_at"], ns["send_before"])
        if late.any():
            row = np.flatnonzero(late)[0]
            raise DataError(f"send_before: expected on or after send_at, row {row} is earlier")
        for name in ("consent", "opted_out"):
            _check_array(name, getattr(self, name), (n, len(CHANNELS)), "b")
        for name in _COUNT_FIELDS:
            _check_array(name, getattr(self, name), (n,), "iu")
            negative = getattr(self, name) < 0
            if negative.any():
                row = np.flatnonzero(negative)[0]
                raise DataError(f"{name}: expected counts >= 0, row {row} is negative")
        for name in _FLAG_FIELDS:
            _check_array(name, getattr(self, name), (n,), "b")
        _check_zones(self.timezone, n)

    @classmethod
    def trusted(cls, **values: object) -> GuardrailInputs:
        """Inputs built by a caller that guarantees what construction checks (the decision
        path, from validated requests: every field given, times as int64 UTC ns, ``send_at``
        and ``due_at`` never NaT, ``send_before`` not before ``send_at``, known zone names,
        boolean flags of the right shapes, counts >= 0), unchecked: the checks cost more than
        the rules for a single decision. Tests hold such inputs to the checks."""
        if values.keys() != _FIELD_NAMES:
            raise TypeError(f"GuardrailInputs.trusted needs exactly {sorted(_FIELD_NAMES)}")
        inputs = object.__new__(cls)
        for name, value in values.items():
            object.__setattr__(inputs, name, value)
        object.__setattr__(inputs, "_ns", {name: values[name] for name in _TIME_FIELDS})
        return inputs

    def __len__(self) -> int:
        return len(self.send_at)

    def instants(self, name: str) -> np.ndarray:
        """The time field ``name`` as int64 UTC nanoseconds (NAT: none)."""
        return self._ns[name]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> GuardrailInputs:
        """Inputs from a frame with columns named like the fields, plus ``consent_<channel>`` and
        ``opted_out_<channel>``; ``promise_until`` and ``send_before`` may be left out (none)."""
        required = [
            "send_at",
            "timezone",
            "due_at",
            *map(consent_column, CHANNELS),
            *map(opt_out_column, CHANNELS),
            *_COUNT_FIELDS,
            *_FLAG_FIELDS,
        ]
        missing = [column for column in required if column not in frame.columns]
        if missing:
            raise DataError(f"guardrail inputs: missing column(s) {missing}")
        times = {name: _frame_times(frame, name) for name in _TIME_FIELDS}
        return cls(
            timezone=frame["timezone"].to_numpy(dtype=object),
            consent=np.column_stack([_frame_flags(frame, consent_column(c)) for c in CHANNELS]),
            opted_out=np.column_stack([_frame_flags(frame, opt_out_column(c)) for c in CHANNELS]),
            **times,
            **{name: _frame_counts(frame, name) for name in _COUNT_FIELDS},
            **{name: _frame_flags(frame, name) for name in _FLAG_FIELDS},
        )


_FIELD_NAMES = {f.name for f in fields(GuardrailInputs) if f.init}


@dataclass(frozen=True, eq=False)
class GuardrailResult:
    """What the guardrails allow per decision, when to send, and which rule removed what."""

    allowed: np.ndarray
    """(n, N_ACTIONS) allowed actions; column 0 (no contact) is always True."""
    send_at_ns: np.ndarray
    """Send time moved forward into the local window (UTC ns); rows whose contacts the deadline
    dropped keep the proposed time."""
    send_at_local_ns: np.ndarray
    """:attr:`send_at_ns` as the local wall-clock time (ns) in each row's zone."""
    removed_by_rule: np.ndarray
    """(len(REASON_CODES), n, N_ACTIONS): the actions each rule forbids, rules in REASON_CODES
    order (rules overlap freely)."""

    @property
    def removed(self) -> dict[str, np.ndarray]:
        """Per reason code, the (n, N_ACTIONS) actions that rule forbids (views)."""
        return dict(zip(REASON_CODES, self.removed_by_rule, strict=True))

    @property
    def send_at(self) -> pd.DatetimeIndex:
        """:attr:`send_at_ns` as a UTC DatetimeIndex."""
        return pd.DatetimeIndex(self.send_at_ns, tz="UTC")

    def reasons(self) -> list[tuple[str, ...]]:
        """Per row, the codes of rules that removed at least one action (REASON_CODES order)."""
        return _codes_per_row(self.removed_by_rule.any(axis=2).T)


def apply_guardrails(inputs: GuardrailInputs, settings: GuardrailSettings) -> GuardrailResult:
    """The allowed actions of each decision after every rule, with its send time and reasons."""
    send_at, dropped, send_local, before_due_date = _send_times(inputs, settings.quiet_hours)
    due_at, promise_until = inputs._ns["due_at"], inputs._ns["promise_until"]
    rows = {  # the decisions each row-level rule applies to (it forbids _RULE_ACTIONS there)
        "quiet_hours": dropped,
        "call_cap": inputs.calls_7d >= settings.max_calls_per_invoice_7d,
        "invoice_weekly_cap": inputs.messages_invoice_7d >= settings.max_messages_per_invoice_week,
        "customer_daily_cap": (
            inputs.messages_customer_24h >= settings.max_messages_per_customer_day
        ),
        "dispute_open": inputs.dispute_open,
        "hardship": inputs.hardship,
        "promise_pending": send_at < promise_until,  # NaT (int64 min): no promise
        "letter_before_due": send_at < due_at,
        "offer_before_due": before_due_date & settings.offers_from_due,
        "paid": inputs.paid,
    }
    stacked = np.empty((len(REASON_CODES), len(send_at), N_ACTIONS), dtype=bool)
    channel = np.maximum(ACTION_CHANNEL, 0)
    np.logical_and(~inputs.consent[:, channel], _CONTACT, out=stacked[0])
    np.logical_and(inputs.opted_out[:, channel], _CONTACT, out=stacked[1])
    applies = np.array([rows[code] for code in REASON_CODES[2:]], dtype=bool)
    np.logical_and(applies[:, :, None], _RULE_ACTIONS[:, None, :], out=stacked[2:])
    allowed = ~stacked.any(axis=0)
    allowed[:, 0] = True
    return GuardrailResult(allowed, send_at, send_local, stacked)


def violations(
    inputs: GuardrailInputs,
    action: np.ndarray,
    send_at: Times,
    settings: GuardrailSettings,
) -> list[tuple[str, ...]]:
    """Per decision, the codes of the rules that ``action`` sent at ``send_at`` would break."""
    n = len(inputs)
    at = _checked_times("send_at", send_at, n, required=True)
    action = np.asarray(action)
    _check_array("action", action, (n,), "iu")
    outside = np.flatnonzero((action < 0) | (action >= N_ACTIONS))
    if outside.size:
        raise DataError(f"action: expected codes 0-{N_ACTIONS - 1}, row {outside[0]} is outside")
    rows = np.arange(n)
    contact = action > 0
    channel, tone, offer = ACTION_CHANNEL[action], ACTION_TONE[action], ACTION_OFFER[action]
    local = _wall_clock(inputs, at)
    hour = (local - local.astype("datetime64[D]")) // np.timedelta64(1, "h")
    start, end = settings.quiet_hours
    window_hours = [(end + k) % 24 for k in range((start - end) % 24)]
    past_deadline = _after(at, inputs._ns["send_before"])
    before_due_date = local.astype("datetime64[D]") < _local_date(inputs, inputs._ns["due_at"] - 1)
    broken = {
        "no_consent": contact & ~inputs.consent[rows, channel],
        "opted_out": contact & inputs.opted_out[rows, channel],
        "quiet_hours": contact & (~np.isin(hour, window_hours) | past_deadline),
        "call_cap": (channel == _CALL) & (inputs.calls_7d >= settings.max_calls_per_invoice_7d),
        "invoice_weekly_cap": contact
        & (inputs.messages_invoice_7d >= settings.max_messages_per_invoice_week),
        "customer_daily_cap": contact
        & (inputs.messages_customer_24h >= settings.max_messages_per_customer_day),
        "dispute_open": contact & inputs.dispute_open,
        "hardship": contact
        & inputs.hardship
        & ~(np.isin(tone, _HARDSHIP_TONE_CODES) & np.isin(offer, _HARDSHIP_OFFER_CODES)),
        "promise_pending": contact & (at < inputs._ns["promise_until"]),
        "letter_before_due": (channel == _LETTER) & (at < inputs._ns["due_at"]),
        "offer_before_due": contact
        & (offer != _NO_OFFER)
        & settings.offers_from_due
        & before_due_date,
        "paid": contact & inputs.paid,
    }
    return _codes_per_row(np.column_stack([broken[code] for code in REASON_CODES]))


def _send_times(
    inputs: GuardrailInputs, quiet_hours: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Send times (UTC ns) moved to the next local opening hour when in quiet hours, the rows
    whose moved time would pass their ``send_before`` deadline (those keep the proposed time),
    the send times' local wall-clock times (ns), and whether each is on a local date before
    the due date. Each zone's rows go through one compiled loop (:func:`_clock_rows`)."""
    start, end = quiet_hours
    times = (inputs._ns["send_at"], inputs._ns["send_before"], inputs._ns["due_at"])
    n = len(times[0])
    found = (np.empty(n, np.int64), np.empty(n, bool), np.empty(n, np.int64), np.empty(n, bool))
    for table, rows in zone_rows(inputs.timezone):
        part = _clock_rows(*(t[rows] for t in times), table.transitions, table.offsets, start, end)
        for out, values in zip(found, part, strict=True):
            out[rows] = values
    return found


@njit(cache=True, nogil=True)  # type: ignore[untyped-decorator]
def _clock_rows(proposed, send_before, due_at, transitions, offsets, start, end):  # type: ignore[no-untyped-def]
    """:func:`_send_times` of rows in one zone. A quiet time moves to the next opening hour
    (``end``): a repeated opening to its earliest occurrence not before the proposed time, one
    skipped by a DST gap to the end of the gap (half-hour gaps included, where pandas'
    ``nonexistent="shift_forward"`` lands late: pandas#40915)."""
    n = proposed.size
    send_at = proposed.copy()
    dropped = np.zeros(n, dtype=np.bool_)
    wall = np.empty(n, dtype=np.int64)
    before_due_date = np.empty(n, dtype=np.bool_)
    for i in range(n):
        local = local_wall(proposed[i], transitions, offsets)
        wall[i] = local
        day = local // DAY_NS * DAY_NS
        hour = (local - day) // HOUR_NS
        quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
        if quiet:
            opening = day + end * HOUR_NS
            if opening <= local:
                opening += DAY_NS
            earliest, latest, gap_end = wall_instants(opening, transitions, offsets)
            moved = latest if earliest < proposed[i] else earliest
            if earliest == NAT:
                moved = gap_end
            dropped[i] = send_before[i] != NAT and moved > send_before[i]
            if not dropped[i]:
                send_at[i] = moved
                wall[i] = local_wall(moved, transitions, offsets)
        due_day = local_wall(due_at[i] - 1, transitions, offsets) // DAY_NS
        before_due_date[i] = wall[i] // DAY_NS < due_day
    return send_at, dropped, wall, before_due_date


def _wall_clock(inputs: GuardrailInputs, times: np.ndarray) -> np.ndarray:
    """Local wall-clock times (naive datetime64[ns]) of UTC ns ``times`` in each row's zone."""
    return to_local(times, inputs.timezone).view("datetime64[ns]")


def _local_date(inputs: GuardrailInputs, times: np.ndarray) -> np.ndarray:
    """Local calendar dates (datetime64[D]) of UTC ns ``times`` in each row's time zone."""
    return _wall_clock(inputs, times).astype("datetime64[D]")


def _after(times: np.ndarray, deadline: np.ndarray) -> np.ndarray:
    """``times`` later than ``deadline`` (never where the deadline is NaT: no deadline)."""
    return (deadline != NAT) & (times > deadline)


def _codes_per_row(flags: np.ndarray) -> list[tuple[str, ...]]:
    """Per row of an (n, len(REASON_CODES)) flag matrix, the flagged codes in stable order."""
    bits = flags.astype(np.int64) @ (1 << np.arange(len(REASON_CODES), dtype=np.int64))
    return [_codes_of(pattern) for pattern in bits.tolist()]


@lru_cache(maxsize=4096)
def _codes_of(pattern: int) -> tuple[str, ...]:
    """The codes whose bits are set in ``pattern`` (a few distinct patterns recur)."""
    return tuple(code for j, code in enumerate(REASON_CODES) if pattern >> j & 1)


def _check_zones(timezone: object, n: int) -> None:
    """An array of ``n`` known IANA zone names (a :class:`DataError` naming the first bad row)."""
    if not isinstance(timezone, np.ndarray) or timezone.shape != (n,):
        raise DataError(f"timezone: expected an array of {n} IANA zone names")
    values = timezone.tolist()
    missing = [i for i, zone in enumerate(values) if not isinstance(zone, str) and pd.isna(zone)]
    if missing:
        raise DataError(f"timezone: row {missing[0]} is missing")
    for zone in set(values):
        try:
            zone_table(str(zone))
        except DataError as error:
            row = np.flatnonzero(timezone == zone)[0]
            raise DataError(f"{error} (row {row})") from error


def _checked_times(name: str, values: object, n: int, required: bool) -> np.ndarray:
    """:data:`Times` of ``n`` rows (without NaT when ``required``) as int64 UTC nanoseconds."""
    if isinstance(values, pd.DatetimeIndex) and values.tz is not None:
        ns = values.as_unit("ns").asi8
    elif isinstance(values, np.ndarray) and values.dtype == np.int64 and values.ndim == 1:
        ns = values
    else:
        raise DataError(
            f"{name}: expected a time-zone-aware (UTC) DatetimeIndex or int64 UTC nanoseconds"
        )
    if len(ns) != n:
        raise DataError(f"{name}: expected {n} rows (one per decision), found {len(ns)}")
    if required and (ns == NAT).any():
        raise DataError(f"{name}: row {np.flatnonzero(ns == NAT)[0]} is missing (NaT)")
    return ns


def _check_array(name: str, values: object, shape: tuple[int, ...], kinds: str) -> None:
    """A numpy array of ``shape`` whose dtype kind is one of ``kinds`` (b: bool, iu: integer)."""
    expected = "booleans" if kinds == "b" else "integers"
    if not isinstance(values, np.ndarray) or values.dtype.kind not in kinds:
        found = values.dtype if isinstance(values, np.ndarray) else type(values).__name__
        raise DataError(f"{name}: expected a numpy array of {expected}, found {found}")
    if values.shape != shape:
        raise DataError(
            f"{name}: expected shape {shape} (a row per decision), found {values.shape}"
        )


def _frame_times(frame: pd.DataFrame, name: str) -> pd.DatetimeIndex:
    """A column of time-zone-aware timestamps in UTC; an absent or all-null optional one is NaT."""
    if name not in frame.columns or (name in _OPTIONAL_TIME_FIELDS and frame[name].isna().all()):
        return pd.DatetimeIndex(np.full(len(frame), np.datetime64("NaT", "ns")), tz="UTC")
    column = frame[name]
    if not isinstance(column.dtype, pd.DatetimeTZDtype):
        raise DataError(f"{name}: expected time-zone-aware timestamps, found dtype {column.dtype}")
    return pd.DatetimeIndex(column).tz_convert("UTC")


def _frame_flags(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column of booleans (True/False or 1/0, no missing values)."""
    column = frame[name]
    bad = np.flatnonzero(~column.isin([True, False]).to_numpy())
    if bad.size:
        value = column.iloc[bad[0]]
        raise DataError(f"{name}: expected booleans, found {value!r} (row {bad[0]})")
    return column.to_numpy().astype(bool)


def _frame_counts(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A column of whole counts (their sign is checked on construction)."""
    column = frame[name]
    numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.flatnonzero(~np.isfinite(numbers) | (numbers != np.round(numbers)))
    if bad.size:
        value = column.iloc[bad[0]]
        raise DataError(f"{name}: expected whole counts, found {value!r} (row {bad[0]})")
    return numbers.astype(np.int64)
