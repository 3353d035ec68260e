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

    @classmethod
    def from_world(cls, world: World) -> GroundTruth:
        return cls(
            config=world.config,
            customers=world.customer_traits.set_index("customer_id"),
            invoices=world.invoice_context.set_index("invoice_id"),
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
        return cls(config, customers.set_index("customer_id"), invoices.set_index("invoice_id"))

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


def response_probabilities(
    truth: GroundTruth,
    invoice_id: np.ndarray | pd.Series | list[str],
    channel: object,
    tone: object,
    offer: object,
    send_time: pd.Series | pd.DatetimeIndex | np.ndarray,
    attempts: int | np.ndarray = 0,
) -> pd.DataFrame:
    """True response probabilities of each invoice to the given action sent at ``send_time``.

    ``channel``, ``tone`` and ``offer`` are names (or arrays of names); ``channel=None`` means
    no contact. Returns columns ``p_open``, ``p_pay_by_due``, ``p_pay_within_7d``, ``p_opt_out``
    and ``p_churn`` (within 30.4 days), one row per invoice.
    """
    ids = pd.Index(np.asarray(invoice_id, dtype=object))
    missing = ~ids.isin(truth.invoices.index)
    if missing.any():
        raise DataError(f"invoice_id: unknown invoice {ids[missing][0]!r} in the ground truth")
    n = len(ids)
    bill = truth.invoices.loc[ids]
    person = truth.customers.loc[bill["customer_id"]]
    params = truth.config.parameters
    ch = _codes(channel, CHANNELS, "channel", n)
    tn = _codes(tone, TONES, "tone", n)
    of = _codes(offer, OFFERS, "offer", n)
    incomplete = (ch >= 0) & ((tn < 0) | (of < 0))
    if incomplete.any():
        raise DataError("tone/offer: a contact needs a tone and an offer (use offer 'none')")
    attempts_arr = np.broadcast_to(np.asarray(attempts, dtype=np.int64), (n,))
    sent = truth.days(send_time)
    zones = tuple(sorted(person["timezone"].unique()))
    zone_index = pd.Categorical(person["timezone"], categories=zones).codes.astype(np.int64)
    hour = local_hour(sent, zone_index, zones, epoch_of(truth.config.start))
    affinity = person[[f"affinity_{c}" for c in CHANNELS]].to_numpy()
    capacity = bill["capacity"].to_numpy()
    firm = person["firm_response"].to_numpy()

    delivered = behaviour.delivery_probability(ch, params.engagement)
    p_open = delivered * behaviour.open_probability(
        ch,
        hour,
        person["preferred_hour"].to_numpy(),
        person["hour_spread"].to_numpy(),
        affinity,
        attempts_arr,
        params.engagement,
    )
    reminder, offer_part = behaviour.reminder_lift(
        ch,
        tn,
        of,
        capacity,
        person["forgetfulness"].to_numpy(),
        firm,
        person["offer_sensitivity"].to_numpy(),
        params.payment,
    )
    due = truth.days(bill["due_at"])
    debit = truth.days(bill["debit_at"])
    autopay = person["autopay"].to_numpy(dtype=bool)
    base = behaviour.base_log_rates(capacity, person["forgetfulness"].to_numpy(), params.payment)
    active_from = np.where(autopay, debit, truth.days(bill["issued_at"]))
    opens_after = sent + behaviour.open_delay_days(ch, params.engagement)
    debit_pending = autopay & (sent < debit)
    debit_success = 1.0 - behaviour.autopay_failure_probability(capacity, params.payment)

    def pay_by(deadline: np.ndarray) -> np.ndarray:
        def survival(lift_start: np.ndarray) -> np.ndarray:
            profile = HazardProfile(
                due_at=due,
                segment_edges=np.asarray(params.payment.segment_edges_days),
                base_log_rates=base,
                active_from=active_from,
                lift_rate=(reminder + offer_part)[:, None],
                lift_start=lift_start[:, None],
                lift_end=lift_start[:, None] + params.payment.lift_days,
                pause_start=np.full(n, np.inf),
                pause_end=np.full(n, np.inf),
            )
            return np.exp(-cumulative_hazard(profile, sent, deadline))

        unopened = survival(np.full(n, np.inf))
        quantiles = (np.arange(OPEN_DELAY_NODES) + 0.5) / OPEN_DELAY_NODES
        delays = -np.log1p(-quantiles) * params.engagement.open_delay_mean_hours / 24.0
        opened = np.mean([survival(opens_after + delay) for delay in delays], axis=0)
        manual = 1.0 - ((1.0 - p_open) * unopened + p_open * opened)
        by_debit = debit_pending & (deadline >= debit)
        return np.where(by_debit, debit_success + (1.0 - debit_success) * manual, manual)

    annoyance = delivered * behaviour.churn_annoyance(ch, tn, firm, attempts_arr, params.churn)
    monthly = person["churn_monthly"].to_numpy() * behaviour.churn_bill_shock_multiplier(
        bill["bill_ratio"].to_numpy(), person["bill_shock_sensitivity"].to_numpy(), params.churn
    )
    return pd.DataFrame(
        {
            "p_open": p_open,
            "p_pay_by_due": pay_by(due),
            "p_pay_within_7d": pay_by(due + 7.0),
            "p_opt_out": delivered
            * behaviour.opt_out_probability(ch, tn, firm, attempts_arr, params.engagement),
            "p_churn": 1.0 - np.exp(-(monthly + annoyance)),
        },
        index=ids,
    )
