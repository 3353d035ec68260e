"""The ground truth: how a customer would respond to any reminder, as exact probabilities.

``response_probabilities`` answers, for invoices that are unpaid and not in dispute at the send
time, and assuming no further reminders after this one: the chance the message is opened
(read, answered), the chance the invoice is paid by its due date and within 7 days after it, the
chance the customer opts out of the channel, and the chance they churn within the next month.
It uses the same arithmetic as the simulator (:mod:`simulation.behaviour`,
:mod:`simulation.hazard`); the open delay is integrated by quadrature over its exponential law.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS, OFFERS, TONES
from simulation import behaviour
from simulation.clock import epoch_of, local_hour
from simulation.hazard import HazardProfile, cumulative_hazard
from simulation.logging_policy import ACTION_CHANNEL, ACTION_OFFER, ACTION_TONE, N_ACTIONS
from simulation.parameters import WorldConfig
from simulation.world import TRUTH_FOLDER, World

OPEN_DELAY_NODES = 16
DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class GroundTruth:
    """Latent traits and invoice context of a simulated world, with its parameters."""

    config: WorldConfig
    customers: pd.DataFrame
    invoices: pd.DataFrame
    opens: pd.Series | None = None
    """True open time of each message (by message_id), letters included; None if unknown."""

    @classmethod
    def from_world(cls, world: World) -> GroundTruth:
        return cls(
            config=world.config,
            customers=world.customer_traits.set_index("customer_id"),
            invoices=world.invoice_context.set_index("invoice_id"),
            opens=world.message_opens.set_index("message_id")["opened_at"],
        )

    @classmethod
    def load(cls, directory: Path) -> GroundTruth:
        """Read the ground truth written by :func:`simulation.world.write_world`."""
        folder = directory / TRUTH_FOLDER
        try:
            config = WorldConfig.model_validate_json((folder / "world_config.json").read_text())
            customers = pd.read_parquet(folder / "customer_traits.parquet")
            invoices = pd.read_parquet(folder / "invoice_context.parquet")
        except (OSError, ValueError) as error:
            raise DataError(
                f"{folder}: expected the ground truth of a simulated world "
                f"(world_config.json, customer_traits.parquet, invoice_context.parquet): {error}"
            ) from None
        opens_path = folder / "message_opens.parquet"
        opens = (
            pd.read_parquet(opens_path).set_index("message_id")["opened_at"]
            if opens_path.exists()
            else None
        )
        return cls(
            config, customers.set_index("customer_id"), invoices.set_index("invoice_id"), opens
        )

    def days(self, timestamps: pd.Series | pd.DatetimeIndex | np.ndarray) -> np.ndarray:
        """UTC timestamps as float days since the world's epoch."""
        index = pd.DatetimeIndex(pd.to_datetime(timestamps, utc=True)).as_unit("ns")
        return (index.asi8 - epoch_of(self.config.start).value) / DAY_NS


def _codes(values: object, vocabulary: tuple[str, ...], field: str, n: int) -> np.ndarray:
    series = pd.Series(np.broadcast_to(np.asarray(values, dtype=object), (n,)))
    codes = series.map({name: index for index, name in enumerate(vocabulary)})
    unknown = series.notna() & codes.isna()
    if unknown.any():
        bad = series[unknown].iloc[0]
        raise DataError(f"{field}: expected one of {vocabulary} or None, found {bad!r}")
    return codes.fillna(-1).to_numpy(dtype=np.int64)


@dataclass(frozen=True)
class _Decisions:
    """What the response to any action depends on, per decision (independent of the action)."""

    sent: np.ndarray
    start: np.ndarray
    hour: np.ndarray
    person: pd.DataFrame
    capacity: np.ndarray
    firm: np.ndarray
    active_from: np.ndarray
    debit: np.ndarray
    debit_pending: np.ndarray
    debit_success: np.ndarray
    monthly_churn: np.ndarray
    base_hazard: dict[str, np.ndarray]
    """Unreminded cumulative hazard from ``start`` to each deadline."""
    deadlines: dict[str, np.ndarray]


def _prepare(
    truth: GroundTruth,
    invoice_id: object,
    send_time: object,
    start: object | None,
    deadlines: dict[str, object],
    history: pd.DataFrame | None = None,
) -> _Decisions:
    ids = pd.Index(np.asarray(invoice_id, dtype=object))
    missing = ~ids.isin(truth.invoices.index)
    if missing.any():
        raise DataError(f"invoice_id: unknown invoice {ids[missing][0]!r} in the ground truth")
    n = len(ids)
    bill = truth.invoices.loc[ids]
    person = truth.customers.loc[bill["customer_id"]]
    params = truth.config.parameters
    sent = truth.days(send_time)
    begin = sent if start is None else truth.days(start)
    zones = tuple(sorted(person["timezone"].unique()))
    zone_index = pd.Categorical(person["timezone"], categories=zones).codes.astype(np.int64)
    capacity = bill["capacity"].to_numpy()
    forgetful = person["forgetfulness"].to_numpy()
    due = truth.days(bill["due_at"])
    debit = truth.days(bill["debit_at"])
    autopay = person["autopay"].to_numpy(dtype=bool)
    active_from = np.where(autopay, debit, truth.days(bill["issued_at"]))
    unreminded = HazardProfile(
        due_at=due,
        segment_edges=np.asarray(params.payment.segment_edges_days),
        base_log_rates=behaviour.base_log_rates(capacity, forgetful, params.payment),
        active_from=active_from,
        lift_rate=np.zeros((n, 1)),
        lift_start=np.full((n, 1), np.inf),
        lift_end=np.full((n, 1), np.inf),
        pause_start=np.full(n, np.inf),
        pause_end=np.full(n, np.inf),
    )
    ends = {name: _deadline_days(truth, value, due, n) for name, value in deadlines.items()}
    base_hazard = {name: cumulative_hazard(unreminded, begin, end) for name, end in ends.items()}
    if history is not None:
        rate, lift_start = _prior_lift(truth, ids, begin, history)
        floor = np.maximum(begin, active_from)
        for name, end in ends.items():
            lift_end = lift_start + params.payment.lift_days
            overlap = np.minimum(end, lift_end) - np.maximum(floor, lift_start)
            base_hazard[name] = base_hazard[name] + rate * np.maximum(overlap, 0.0)
    return _Decisions(
        sent=sent,
        start=begin,
        hour=local_hour(sent, zone_index, zones, epoch_of(truth.config.start)),
        person=person,
        capacity=capacity,
        firm=person["firm_response"].to_numpy(),
        active_from=active_from,
        debit=debit,
        debit_pending=autopay & (begin < debit),
        debit_success=1.0 - behaviour.autopay_failure_probability(capacity, params.payment),
        monthly_churn=person["churn_monthly"].to_numpy()
        * behaviour.churn_bill_shock_multiplier(
            bill["bill_ratio"].to_numpy(), person["bill_shock_sensitivity"].to_numpy(), params.churn
        ),
        base_hazard=base_hazard,
        deadlines=ends,
    )


def _prior_lift(
    truth: GroundTruth, ids: pd.Index, begin: np.ndarray, history: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """The still-working lift of the newest earlier opened reminder of each invoice.

    ``history`` holds the logged messages (message_id, invoice_id, channel, tone, offer,
    sent_at); their true open times come from ``truth.opens``. Returns the lift rate and its
    start per decision (0 and +inf without one). With lifts lasting ``lift_days`` (shorter than
    the gaps between stages) at most one earlier reminder still works at a decision.
    """
    n = len(ids)
    rate, start = np.zeros(n), np.full(n, np.inf)
    if truth.opens is None:
        raise DataError("the ground truth lacks message_opens: re-simulate the world")
    sent = history[history["channel"].notna()]
    opened_at = sent["message_id"].map(truth.opens)
    sent = sent[opened_at.notna().to_numpy()].assign(open_days=truth.days(opened_at.dropna()))
    if sent.empty:
        return rate, start
    decisions = pd.DataFrame({"invoice_id": np.asarray(ids, dtype=object), "begin": begin})
    pairs = decisions.reset_index(names="row").merge(
        sent.assign(invoice_id=sent["invoice_id"].astype(object)), on="invoice_id"
    )
    pairs = pairs[truth.days(pairs["sent_at"]) < pairs["begin"]]
    newest = pairs.sort_values("open_days").groupby("row").tail(1)
    if newest.empty:
        return rate, start
    bill = truth.invoices.loc[newest["invoice_id"]]
    person = truth.customers.loc[bill["customer_id"]]
    reminder, offer_part = behaviour.reminder_lift(
        _codes(newest["channel"], CHANNELS, "channel", len(newest)),
        _codes(newest["tone"], TONES, "tone", len(newest)),
        _codes(newest["offer"], OFFERS, "offer", len(newest)),
        bill["capacity"].to_numpy(),
        person["forgetfulness"].to_numpy(),
        person["firm_response"].to_numpy(),
        person["offer_sensitivity"].to_numpy(),
        truth.config.parameters.payment,
    )
    rows = newest["row"].to_numpy()
    rate[rows] = reminder + offer_part
    start[rows] = newest["open_days"].to_numpy()
    return rate, start


def _deadline_days(truth: GroundTruth, value: object, due: np.ndarray, n: int) -> np.ndarray:
    """A deadline given as days after the due moment (a number) or as UTC timestamps."""
    if isinstance(value, int | float):
        return due + float(value)
    days = truth.days(value)
    return np.broadcast_to(days, (n,)).astype(np.float64)


def _outcomes(
    truth: GroundTruth,
    d: _Decisions,
    ch: np.ndarray,
    tn: np.ndarray,
    of: np.ndarray,
    attempts: np.ndarray,
) -> dict[str, np.ndarray]:
    """Response probabilities of every decision to one action per decision (codes, -1 = none).

    The hazard is the unreminded one plus a constant lift while an opened reminder works, so
    the cumulative hazard is the precomputed base part plus ``lift x overlap``: exact, and cheap
    enough to evaluate every action for every decision.
    """
    params = truth.config.parameters
    person = d.person
    delivered = behaviour.delivery_probability(ch, params.engagement)
    p_open = delivered * behaviour.open_probability(
        ch,
        d.hour,
        person["preferred_hour"].to_numpy(),
        person["hour_spread"].to_numpy(),
        person[[f"affinity_{c}" for c in CHANNELS]].to_numpy(),
        attempts,
        params.engagement,
    )
    reminder, offer_part = behaviour.reminder_lift(
        ch,
        tn,
        of,
        d.capacity,
        person["forgetfulness"].to_numpy(),
        d.firm,
        person["offer_sensitivity"].to_numpy(),
        params.payment,
    )
    lift = reminder + offer_part
    opens_after = d.sent + behaviour.open_delay_days(ch, params.engagement)
    quantiles = (np.arange(OPEN_DELAY_NODES) + 0.5) / OPEN_DELAY_NODES
    delays = -np.log1p(-quantiles) * params.engagement.open_delay_mean_hours / 24.0
    floor = np.maximum(d.start, d.active_from)
    out = {"p_open": p_open}
    for name, deadline in d.deadlines.items():
        base = d.base_hazard[name]
        opened = np.zeros_like(base)
        for delay in delays:
            lift_start = opens_after + delay
            lift_end = lift_start + params.payment.lift_days
            overlap = np.minimum(deadline, lift_end) - np.maximum(floor, lift_start)
            opened += np.exp(-(base + lift * np.maximum(overlap, 0.0)))
        opened /= len(delays)
        manual = 1.0 - ((1.0 - p_open) * np.exp(-base) + p_open * opened)
        by_debit = d.debit_pending & (deadline >= d.debit)
        out[name] = np.where(by_debit, d.debit_success + (1.0 - d.debit_success) * manual, manual)
    annoyance = delivered * behaviour.churn_annoyance(ch, tn, d.firm, attempts, params.churn)
    out["p_opt_out"] = delivered * behaviour.opt_out_probability(
        ch, tn, d.firm, attempts, params.engagement
    )
    out["p_churn"] = 1.0 - np.exp(-(d.monthly_churn + annoyance))
    return out


def response_probabilities(
    truth: GroundTruth,
    invoice_id: np.ndarray | pd.Series | list[str],
    channel: object,
    tone: object,
    offer: object,
    send_time: pd.Series | pd.DatetimeIndex | np.ndarray,
    attempts: int | np.ndarray = 0,
    *,
    start: pd.Series | pd.DatetimeIndex | np.ndarray | None = None,
    deadlines: dict[str, object] | None = None,
) -> pd.DataFrame:
    """True response probabilities of each invoice to the given action sent at ``send_time``.

    ``channel``, ``tone`` and ``offer`` are names (or arrays of names); ``channel=None`` means
    no contact. Returns columns ``p_open``, ``p_pay_by_due``, ``p_pay_within_7d``, ``p_opt_out``
    and ``p_churn`` (within 30.4 days), one row per invoice. Payment chances are for an invoice
    unpaid at ``start`` (default: the send time; a decision time before the send is allowed).
    ``deadlines`` adds a column ``p_<name>`` per extra deadline (UTC timestamps, or days after
    the due moment).
    """
    n = len(np.asarray(invoice_id, dtype=object))
    ch = _codes(channel, CHANNELS, "channel", n)
    tn = _codes(tone, TONES, "tone", n)
    of = _codes(offer, OFFERS, "offer", n)
    incomplete = (ch >= 0) & ((tn < 0) | (of < 0))
    if incomplete.any():
        raise DataError("tone/offer: a contact needs a tone and an offer (use offer 'none')")
    named = {"pay_by_due": 0.0, "pay_within_7d": 7.0}
    extra = {f"p_{name}": name for name in deadlines or {}}
    d = _prepare(truth, invoice_id, send_time, start, {**named, **(deadlines or {})})
    attempts_arr = np.broadcast_to(np.asarray(attempts, dtype=np.int64), (n,))
    out = _outcomes(truth, d, ch, tn, of, attempts_arr)
    columns = {
        "p_open": out["p_open"],
        "p_pay_by_due": out["pay_by_due"],
        "p_pay_within_7d": out["pay_within_7d"],
        "p_opt_out": out["p_opt_out"],
        "p_churn": out["p_churn"],
        **{column: out[name] for column, name in extra.items()},
    }
    return pd.DataFrame(columns, index=pd.Index(np.asarray(invoice_id, dtype=object)))


def action_probabilities(
    truth: GroundTruth,
    invoice_id: np.ndarray | pd.Series | list[str],
    send_time: pd.Series | pd.DatetimeIndex | np.ndarray,
    attempts: int | np.ndarray = 0,
    *,
    start: pd.Series | pd.DatetimeIndex | np.ndarray | None = None,
    deadlines: dict[str, object] | None = None,
    history: pd.DataFrame | None = None,
) -> dict[str, np.ndarray]:
    """Response probabilities of every decision to *every* action, each an (n, n_actions) array.

    Actions are coded as in :mod:`simulation.logging_policy` (0 = no contact). Keys: ``p_open``,
    ``p_opt_out``, ``p_churn`` and ``p_<name>`` for each deadline (default ``pay_by_due``).
    Given the logged ``history`` (messages), the lift of an earlier reminder still working at
    the decision is part of the payment chances.
    """
    n = len(np.asarray(invoice_id, dtype=object))
    d = _prepare(truth, invoice_id, send_time, start, deadlines or {"pay_by_due": 0.0}, history)
    attempts_arr = np.broadcast_to(np.asarray(attempts, dtype=np.int64), (n,))
    columns: dict[str, list[np.ndarray]] = {}
    for code in range(N_ACTIONS):
        one = np.full(n, code)
        out = _outcomes(
            truth, d, ACTION_CHANNEL[one], ACTION_TONE[one], ACTION_OFFER[one], attempts_arr
        )
        for name, values in out.items():
            columns.setdefault(name if name.startswith("p_") else f"p_{name}", []).append(values)
    return {name: np.column_stack(values) for name, values in columns.items()}
