"""Monthly invoices: plan fee plus seasonal, noisy usage with occasional spikes, minus discounts.

Also draws the monthly income shocks (a two-state Markov chain per customer) and computes each
invoice's *capacity*: the logit-scale ability to pay this bill, lowered by income shocks, by bill
shock (a bill far above the customer's usual, scaled by their sensitivity) and by season.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulation.parameters import (
    BillingParameters,
    MarketShift,
    PaymentParameters,
    TraitParameters,
)
from simulation.population import Population


@dataclass(frozen=True)
class Invoices:
    """Every invoice the world could issue (customer x month), as aligned arrays.

    Local calendar days count from the epoch; the engine issues an invoice only when its customer
    has not churned by the issue day.
    """

    customer: np.ndarray
    month: np.ndarray
    calendar_month: np.ndarray
    issue_day: np.ndarray
    due_day: np.ndarray
    fee_cents: np.ndarray
    usage_cents: np.ndarray
    discount_cents: np.ndarray
    bill_ratio: np.ndarray
    income_shock: np.ndarray
    capacity: np.ndarray

    @property
    def size(self) -> int:
        return len(self.customer)

    @property
    def amount_cents(self) -> np.ndarray:
        return self.fee_cents + self.usage_cents - self.discount_cents


def month_start_days(start: dt.date, n_months: int) -> tuple[np.ndarray, np.ndarray]:
    """Day offsets (from ``start``) of the first of each month, and their calendar months 1-12."""
    firsts = pd.date_range(pd.Timestamp(start), periods=n_months, freq="MS")
    offsets = (firsts - pd.Timestamp(start)).days.to_numpy()
    return offsets.astype(np.int64), firsts.month.to_numpy()


def draw_income_shocks(
    population: Population, n_months: int, rng: np.random.Generator, traits: TraitParameters
) -> np.ndarray:
    """Boolean (customers x months): is the customer in an income shock that month?"""
    shocks = np.zeros((population.size, n_months), dtype=bool)
    start_probability = population.shock_start_probability
    for month in range(n_months):
        draw = rng.random(population.size)
        if month == 0:
            shocks[:, 0] = draw < start_probability
        else:
            stays = shocks[:, month - 1] & (draw < traits.income_shock_persistence)
            starts = ~shocks[:, month - 1] & (draw < start_probability)
            shocks[:, month] = stays | starts
    return shocks


def draw_invoices(
    population: Population,
    start: dt.date,
    n_months: int,
    rng: np.random.Generator,
    billing: BillingParameters,
    payment: PaymentParameters,
    traits: TraitParameters,
    shift: MarketShift | None = None,
) -> Invoices:
    """Draw every potential invoice, sorted by issue day then customer (``shift`` applied)."""
    first_days, calendar_months = month_start_days(start, n_months)
    shocks = draw_income_shocks(population, n_months, rng, traits)
    customer = np.repeat(np.arange(population.size), n_months)
    month = np.tile(np.arange(n_months), population.size)
    issue_day = first_days[month] + population.billing_day[customer] - 1
    live = issue_day > population.signup_day[customer]
    customer, month, issue_day = customer[live], month[live], issue_day[live]
    order = np.lexsort((customer, issue_day))
    customer, month, issue_day = customer[order], month[order], issue_day[order]
    calendar_month = calendar_months[month]

    n = len(customer)
    season = np.asarray(billing.usage_seasonality)[calendar_month - 1]
    spike = np.where(
        rng.random(n) < billing.spike_probability,
        rng.uniform(*billing.spike_multiplier_range, n),
        1.0,
    )
    usage = (
        population.usage_median[customer]
        * season
        * rng.lognormal(0.0, billing.usage_noise_sigma, n)
        * spike
    )
    price = np.ones(n)
    if shift is not None and shift.active:
        price = np.where(month >= shift.from_month, 1.0 + shift.price_rise, 1.0)
        usage = usage * price
    fee_cents = np.round(population.monthly_fee[customer] * price * 100).astype(np.int64)
    discount_cents = np.round(population.discount_rate[customer] * fee_cents).astype(np.int64)
    usage_cents = np.round(usage * 100).astype(np.int64)
    usual = (
        population.monthly_fee
        + population.usage_median
        - (population.discount_rate * population.monthly_fee)
    )
    amount = (fee_cents + usage_cents - discount_cents) / 100.0
    bill_ratio = amount / usual[customer]
    income_shock = shocks[customer, month]
    capacity = (
        population.ability[customer]
        + np.asarray(payment.season_capacity)[calendar_month - 1]
        - payment.income_shock_capacity * income_shock
        - payment.bill_shock_capacity
        * population.bill_shock_sensitivity[customer]
        * np.maximum(0.0, np.log(bill_ratio))
    )
    if shift is not None and shift.active:
        capacity = capacity - shift.capacity_drop * (month >= shift.from_month)
    return Invoices(
        customer=customer,
        month=month,
        calendar_month=calendar_month,
        issue_day=issue_day,
        due_day=issue_day + population.terms_days[customer],
        fee_cents=fee_cents,
        usage_cents=usage_cents,
        discount_cents=discount_cents,
        bill_ratio=bill_ratio,
        income_shock=income_shock,
        capacity=capacity,
    )
