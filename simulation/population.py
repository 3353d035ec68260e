"""Customers and their latent traits.

Latent traits (hidden from the raw tables, kept in the ground truth) drive all behaviour:

- ``ability``: standard-normal ability to pay, shifted by plan; low ability means more late bills.
- ``forgetfulness`` in (0, 1): how often a customer who could pay simply forgets; reminders help
  these customers most.
- ``channel_affinity`` (one per channel): how much more (or less) this customer opens that channel.
- ``firm_response``: > 0 means a firm tone makes them pay sooner; < 0 means it annoys them, raising
  opt-out and churn.
- ``offer_sensitivity`` in (0, 1): how much an extension or instalment plan helps when
  money is short.
- ``preferred_hour`` / ``hour_spread``: local hour they read messages, and how strict they are.
- ``bill_shock_sensitivity``: how much a bill far above their usual raises lateness and disputes.
- ``churn_monthly``: baseline monthly churn hazard.
- ``shock_start_probability``: monthly chance that an income shock starts (lower with ability).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from paynudge.vocabulary import CHANNELS, PLANS, consent_column, opt_out_column
from simulation.parameters import PopulationParameters, TraitParameters

FIRST_NAMES = {
    "nl": ("Daan", "Sanne", "Lucas", "Emma", "Sem", "Julia", "Finn", "Lotte", "Bram", "Fleur"),
    "en": ("Oliver", "Amelia", "Harry", "Isla", "Jack", "Ava", "George", "Mia", "Noah", "Grace"),
}
LAST_NAMES = {
    "nl": ("de Jong", "Jansen", "de Vries", "van Dijk", "Bakker", "Visser", "Smit", "Meijer"),
    "en": ("Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies"),
}
MANUAL_METHODS = {
    "nl": ("ideal", "card", "bank_transfer", "cash"),
    "en": ("card", "bank_transfer", "cash", "card"),
}
MANUAL_METHOD_SHARES = (0.5, 0.25, 0.22, 0.03)


@dataclass(frozen=True)
class Population:
    """Observable attributes and latent traits of every customer, as aligned arrays."""

    plan_index: np.ndarray
    monthly_fee: np.ndarray
    usage_median: np.ndarray
    discount_rate: np.ndarray
    autopay: np.ndarray
    zone_index: np.ndarray
    zones: tuple[str, ...]
    dutch: np.ndarray
    consent: np.ndarray
    signup_day: np.ndarray
    billing_day: np.ndarray
    terms_days: np.ndarray
    manual_method: np.ndarray
    ability: np.ndarray
    forgetfulness: np.ndarray
    channel_affinity: np.ndarray
    firm_response: np.ndarray
    offer_sensitivity: np.ndarray
    preferred_hour: np.ndarray
    hour_spread: np.ndarray
    bill_shock_sensitivity: np.ndarray
    churn_monthly: np.ndarray
    shock_start_probability: np.ndarray

    @property
    def size(self) -> int:
        return len(self.plan_index)


def format_ids(prefix: str, numbers: np.ndarray, width: int) -> pd.api.extensions.ExtensionArray:
    """Zero-padded string ids such as ``C00000042`` (null where ``numbers`` < 0).

    Built by Arrow's string kernels, so ten million ids take a fraction of a second and little
    memory.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    padded = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    ids = pc.binary_join_element_wise(prefix, padded, "")
    ids = pc.if_else(pa.array(numbers < 0), pa.scalar(None, pa.string()), ids)
    return pd.array(ids, dtype=pd.ArrowDtype(pa.string()))


def customer_ids(index: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """Public customer ids of customer row numbers (``C`` + 8 digits, from 1)."""
    return format_ids("C", np.asarray(index) + 1, 8)


def draw_population(
    n: int,
    horizon_days: int,
    rng: np.random.Generator,
    people: PopulationParameters,
    traits: TraitParameters,
) -> Population:
    """Draw ``n`` customers; signup days are relative to the epoch (negative = before it)."""
    plan_index = rng.choice(len(PLANS), size=n, p=[people.plan_shares[p] for p in PLANS])
    fee = np.array([people.plan_fee[p] for p in PLANS])[plan_index]
    median_usage = np.array([people.plan_median_usage[p] for p in PLANS])[plan_index]
    usage_median = median_usage * rng.lognormal(0.0, people.usage_sigma, n)
    promo = rng.random(n) < people.promo_share
    discount_rate = np.where(promo, rng.uniform(*people.promo_discount_range, n), 0.0)
    autopay = rng.random(n) < np.array([people.autopay_share[p] for p in PLANS])[plan_index]
    zones = tuple(people.timezone_shares)
    zone_index = rng.choice(len(zones), size=n, p=list(people.timezone_shares.values()))
    dutch_zone = np.isin(np.array(zones)[zone_index], people.dutch_speaking_zones)
    dutch_share = np.where(
        dutch_zone, people.dutch_share_in_dutch_zones, people.dutch_share_elsewhere
    )
    dutch = rng.random(n) < dutch_share
    consent = rng.random((n, len(CHANNELS))) < np.array([people.consent_share[c] for c in CHANNELS])
    tenure_days = np.minimum(
        rng.exponential(people.tenure_mean_years * 365.25, n), people.max_tenure_years * 365.25
    )
    joiner = rng.random(n) < people.joiners_share
    signup_day = np.where(
        joiner, rng.integers(0, max(horizon_days - 31, 1), n), -np.ceil(tenure_days)
    ).astype(np.int64)
    ability = (
        rng.standard_normal(n) + np.array([people.plan_ability_shift[p] for p in PLANS])[plan_index]
    )
    method_index = rng.choice(len(MANUAL_METHOD_SHARES), size=n, p=MANUAL_METHOD_SHARES)
    manual_method = np.where(
        dutch,
        np.array(MANUAL_METHODS["nl"])[method_index],
        np.array(MANUAL_METHODS["en"])[method_index],
    )
    mode = rng.choice(len(traits.preferred_hour_modes), size=n, p=traits.preferred_hour_mode_shares)
    preferred_hour = np.mod(
        np.array(traits.preferred_hour_modes)[mode]
        + rng.normal(0.0, traits.preferred_hour_mode_sd, n),
        24.0,
    )
    shock_start = traits.income_shock_start * np.exp(-traits.income_shock_ability_slope * ability)
    return Population(
        plan_index=plan_index,
        monthly_fee=fee,
        usage_median=usage_median,
        discount_rate=discount_rate,
        autopay=autopay,
        zone_index=zone_index,
        zones=zones,
        dutch=dutch,
        consent=consent,
        signup_day=signup_day,
        billing_day=rng.integers(1, 29, n),
        terms_days=np.array([people.plan_payment_terms_days[p] for p in PLANS])[plan_index],
        manual_method=manual_method,
        ability=ability,
        forgetfulness=rng.beta(*traits.forgetfulness_beta, n),
        channel_affinity=rng.normal(0.0, traits.channel_affinity_sd, (n, len(CHANNELS))),
        firm_response=rng.standard_normal(n),
        offer_sensitivity=rng.uniform(0.0, 1.0, n),
        preferred_hour=preferred_hour,
        hour_spread=rng.uniform(*traits.hour_spread_range, n),
        bill_shock_sensitivity=rng.gamma(*traits.bill_shock_sensitivity_gamma, n),
        churn_monthly=traits.churn_monthly_median
        * rng.lognormal(0.0, traits.churn_monthly_sigma, n),
        shock_start_probability=np.clip(shock_start, 0.0, 0.5),
    )


def customers_table(
    population: Population, opted_out: np.ndarray, signup_dates: pd.Series, rng: np.random.Generator
) -> pd.DataFrame:
    """The raw ``customers`` table (observable attributes and synthetic contact details)."""
    n = population.size
    language = np.where(population.dutch, "nl", "en")
    first = np.where(
        population.dutch,
        np.array(FIRST_NAMES["nl"])[rng.integers(0, len(FIRST_NAMES["nl"]), n)],
        np.array(FIRST_NAMES["en"])[rng.integers(0, len(FIRST_NAMES["en"]), n)],
    )
    last = np.where(
        population.dutch,
        np.array(LAST_NAMES["nl"])[rng.integers(0, len(LAST_NAMES["nl"]), n)],
        np.array(LAST_NAMES["en"])[rng.integers(0, len(LAST_NAMES["en"]), n)],
    )
    number = np.char.zfill(np.arange(1, n + 1).astype(str), 8)
    domain = np.where(population.dutch, "example.nl", "example.com")
    local_part = np.char.replace(np.char.lower(np.char.add(np.char.add(first, "."), last)), " ", "")
    email = np.char.add(np.char.add(np.char.add(local_part, number), "@"), domain)
    has_email = population.consent[:, CHANNELS.index("email")] | (rng.random(n) < 0.5)
    phone = np.char.add(np.where(population.dutch, "+316", "+447"), number)
    table = pd.DataFrame(
        {
            "customer_id": customer_ids(np.arange(n)),
            "signup_date": signup_dates.to_numpy(),
            "plan": np.array(PLANS)[population.plan_index],
            "monthly_fee": population.monthly_fee,
            "autopay": population.autopay,
            "timezone": np.array(population.zones)[population.zone_index],
            "language": language,
        }
    )
    for index, channel in enumerate(CHANNELS):
        table[consent_column(channel)] = population.consent[:, index]
    for index, channel in enumerate(CHANNELS):
        table[opt_out_column(channel)] = opted_out[:, index]
    table["name"] = np.char.add(np.char.add(first, " "), last).astype(object)
    table["email"] = pd.Series(email.astype(object)).where(has_email, None)
    table["phone"] = phone.astype(object)
    return table
