"""Every behavioural constant of the simulated world, with its meaning and default.

Units: rates are per day, log-rates are natural logs, "capacity" is a logit-scale score of how
able a customer is to pay this bill (0 = average; +1 = comfortably able). Nothing random here:
randomness comes from the seed in :class:`WorldConfig`.
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, field_validator

from paynudge.errors import ConfigError
from paynudge.vocabulary import CHANNELS, PLANS, TONES

ChannelMap = dict[str, float]


class PopulationParameters(BaseModel):
    """Who the customers are: plans, fees, autopay, places, languages and consent."""

    model_config = ConfigDict(frozen=True)

    plan_shares: dict[str, float] = {
        "basic": 0.35,
        "standard": 0.35,
        "premium": 0.20,
        "business": 0.10,
    }
    plan_fee: dict[str, float] = {
        "basic": 15.0,
        "standard": 30.0,
        "premium": 55.0,
        "business": 90.0,
    }
    plan_median_usage: dict[str, float] = {
        "basic": 6.0,
        "standard": 14.0,
        "premium": 24.0,
        "business": 60.0,
    }
    plan_ability_shift: dict[str, float] = {
        "basic": -0.35,
        "standard": 0.0,
        "premium": 0.25,
        "business": 0.45,
    }
    plan_payment_terms_days: dict[str, int] = {
        "basic": 14,
        "standard": 14,
        "premium": 14,
        "business": 30,
    }
    usage_sigma: float = 0.5
    autopay_share: dict[str, float] = {
        "basic": 0.25,
        "standard": 0.35,
        "premium": 0.45,
        "business": 0.55,
    }
    promo_share: float = 0.2
    promo_discount_range: tuple[float, float] = (0.1, 0.25)
    timezone_shares: dict[str, float] = {
        "Europe/Amsterdam": 0.58,
        "Europe/Brussels": 0.10,
        "Europe/London": 0.20,
        "America/New_York": 0.04,
        "America/Curacao": 0.04,
        "Asia/Singapore": 0.04,
    }
    dutch_speaking_zones: tuple[str, ...] = (
        "Europe/Amsterdam",
        "Europe/Brussels",
        "America/Curacao",
    )
    dutch_share_in_dutch_zones: float = 0.85
    dutch_share_elsewhere: float = 0.05
    consent_share: ChannelMap = {
        "email": 0.92,
        "sms": 0.75,
        "push": 0.35,
        "call": 0.60,
        "letter": 0.98,
    }
    tenure_mean_years: float = 3.0
    max_tenure_years: float = 12.0
    joiners_share: float = Field(default=0.08, description="Share who sign up during the window.")

    @field_validator("plan_shares", "timezone_shares")
    @classmethod
    def _shares_sum_to_one(cls, shares: dict[str, float]) -> dict[str, float]:
        total = sum(shares.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"shares must sum to 1, found {total:.4f}")
        return shares


class TraitParameters(BaseModel):
    """Distributions of the latent traits (see :mod:`simulation.population`)."""

    model_config = ConfigDict(frozen=True)

    forgetfulness_beta: tuple[float, float] = (2.0, 5.0)
    channel_affinity_sd: float = 0.8
    preferred_hour_modes: tuple[float, ...] = (8.0, 12.5, 19.5)
    preferred_hour_mode_shares: tuple[float, ...] = (0.3, 0.3, 0.4)
    preferred_hour_mode_sd: float = 1.0
    hour_spread_range: tuple[float, float] = (1.5, 4.0)
    bill_shock_sensitivity_gamma: tuple[float, float] = (2.0, 0.5)
    churn_monthly_median: float = 0.012
    churn_monthly_sigma: float = 0.5
    income_shock_start: float = Field(
        default=0.02, description="Monthly chance a shock starts (avg)."
    )
    income_shock_ability_slope: float = 0.5
    income_shock_persistence: float = Field(
        default=0.5, description="Chance a shock lasts another month."
    )


class BillingParameters(BaseModel):
    """How invoices are made: seasonality, noise and bill-shock spikes."""

    model_config = ConfigDict(frozen=True)

    usage_seasonality: tuple[float, ...] = (
        1.25, 1.2, 1.1, 1.0, 0.95, 0.9, 0.95, 1.0, 0.95, 1.0, 1.1, 1.25,
    )  # fmt: skip
    usage_noise_sigma: float = 0.15
    spike_probability: float = Field(default=0.04, description="Monthly chance of a usage spike.")
    spike_multiplier_range: tuple[float, float] = (2.5, 5.0)

    @field_validator("usage_seasonality")
    @classmethod
    def _twelve_months(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if len(values) != 12:
            raise ValueError(f"expected 12 monthly factors, found {len(values)}")
        return values


class PaymentParameters(BaseModel):
    """The payment-time hazard: when an unreminded customer pays, and what a reminder adds.

    The daily hazard of paying is ``exp(segment_log_rate + capacity_slope * capacity +
    forgetfulness_slope * forgetfulness)``; segments are in days relative to the due moment.
    """

    model_config = ConfigDict(frozen=True)

    segment_edges_days: tuple[float, ...] = (-7.0, 0.0, 7.0, 30.0, 60.0)
    segment_log_rates: tuple[float, ...] = (-1.45, -1.15, -2.1, -2.9, -3.3, -4.2)
    capacity_slope: float = 1.0
    forgetfulness_slope: float = -3.0
    season_capacity: tuple[float, ...] = (
        -0.35, -0.1, 0.0, 0.0, 0.0, 0.0, -0.1, -0.15, 0.0, 0.0, 0.0, -0.25,
    )  # fmt: skip
    income_shock_capacity: float = 1.5
    bill_shock_capacity: float = 1.0
    autopay_failure_log_odds: float = -4.0
    autopay_failure_capacity_slope: float = -0.8
    autopay_debit_local_hour: float = 6.0
    lift_days: float = Field(default=4.0, description="How long an opened reminder keeps working.")
    lift_log_rate: float = -1.5
    lift_forgetfulness_slope: float = 3.0
    lift_forgetfulness_centre: float = 0.3
    lift_capacity_offset: float = 1.0
    channel_urgency: ChannelMap = {
        "email": 0.0,
        "sms": 0.2,
        "push": 0.1,
        "call": 0.6,
        "letter": 0.4,
    }
    tone_friendly_lift: float = 0.1
    tone_firm_slope: float = 0.5
    offer_log_rate: dict[str, float] = {"extension": -1.2, "instalment_plan": -0.8}
    instalment_count: int = 3
    instalment_spacing_days: float = 30.0
    partial_payment_share: float = 0.25
    partial_fraction_range: tuple[float, float] = (0.3, 0.7)
    partial_lead_days: float = 20.0
    non_payment_disconnect_days: float = 60.0
    non_payment_disconnect_share: float = 0.12

    @field_validator("segment_log_rates")
    @classmethod
    def _one_rate_per_segment(cls, values: tuple[float, ...]) -> tuple[float, ...]:
        if len(values) != 6:
            raise ValueError(f"expected 6 segment log-rates (5 edges), found {len(values)}")
        return values


class EngagementParameters(BaseModel):
    """Delivery, opening, clicking, replying and opting out."""

    model_config = ConfigDict(frozen=True)

    delivery_share: ChannelMap = {
        "email": 0.96,
        "sms": 0.98,
        "push": 0.93,
        "call": 1.0,
        "letter": 0.99,
    }
    open_log_odds: ChannelMap = {"email": 0.4, "sms": 2.4, "push": 0.8, "call": 0.6, "letter": 1.0}
    hour_penalty: float = Field(default=0.5, description="Open log-odds lost per squared spread.")
    fatigue_per_attempt: float = 0.25
    open_delay_mean_hours: float = 2.0
    letter_delivery_days: float = 2.0
    link_channels: tuple[str, ...] = ("email", "sms", "push")
    click_if_paying_share: float = 0.8
    click_otherwise_share: float = 0.08
    click_paying_window_days: float = 2.0
    opt_out_log_odds: ChannelMap = {
        "email": -5.0,
        "sms": -4.2,
        "push": -4.5,
        "call": -4.8,
        "letter": -6.5,
    }
    opt_out_per_attempt: float = 0.35
    opt_out_firm_annoyance: float = 0.8
    dispute_log_odds: float = -5.0
    dispute_bill_shock_slope: float = 2.0
    dispute_open_days: tuple[float, float] = (1.0, 5.0)
    dispute_min_days: float = 2.0
    dispute_mean_extra_days: float = 10.0
    hardship_share_when_shocked: float = 0.2
    hardship_memory_days: float = 90.0
    promise_base_share: float = 0.03
    promise_constrained_share: float = 0.12
    promise_horizon_days: float = 14.0
    broken_promise_days: tuple[float, float] = (3.0, 10.0)


class ChurnParameters(BaseModel):
    """Churn hazard: a monthly base, bill shock, and the annoyance of reminders."""

    model_config = ConfigDict(frozen=True)

    bill_shock_slope: float = 0.5
    annoyance_per_message: float = 0.0015
    annoyance_firm_slope: float = 1.0
    annoyance_call: float = 0.5
    annoyance_per_attempt: float = 0.15
    reason_shares: dict[str, float] = {"contract_end": 0.5, "competitor": 0.3, "moved": 0.2}


class LoggingPolicyParameters(BaseModel):
    """The historical biller's policy that produced the ``messages`` log (see logging_policy)."""

    model_config = ConfigDict(frozen=True)

    name: str = "ladder-epsilon-0.3"
    epsilon: float = Field(default=0.3, gt=0.0, le=1.0, description="Share of uniform exploration.")
    stage_offsets_days: tuple[int, ...] = (-5, 0, 3, 10, 30)
    stage_names: tuple[str, ...] = ("pre_due", "due", "overdue_3", "overdue_10", "overdue_30")
    ladder: tuple[tuple[str, str, str], ...] = (
        ("email", "friendly", "none"),
        ("sms", "friendly", "none"),
        ("email", "neutral", "none"),
        ("sms", "firm", "none"),
        ("call", "firm", "instalment_plan"),
    )
    fallback_channels: tuple[str, ...] = ("email", "sms", "letter", "push", "call")
    decision_local_hour: float = 7.0
    send_hours: tuple[int, int] = Field(
        default=(8, 21), description="Local [first, last) send hour."
    )
    letter_post_local_hour: float = 17.0
    offers_from_stage: int = Field(default=1, description="Offers only from this stage index on.")


class MarketShift(BaseModel):
    """A change of the world injected from one billing month on; none by default.

    Used to test drift monitoring for real: an *economic shock* lowers every customer's capacity
    to pay (more late bills), a *price rise* raises fees and usage prices, so bills land above
    the customer's usual amount and bill shock lowers capacity too. The shift draws no random
    numbers: a world with and without it shares every draw, and the default changes nothing.
    """

    model_config = ConfigDict(frozen=True)

    from_month: int | None = Field(
        default=None, ge=0, description="First shifted billing month (0-based); None: no shift."
    )
    capacity_drop: float = Field(
        default=0.0, description="Economic shock: logit-scale capacity lost on shifted bills."
    )
    price_rise: float = Field(
        default=0.0, gt=-1.0, description="Relative rise of fees and usage prices (0.3 = +30%)."
    )

    @property
    def active(self) -> bool:
        """Whether the shift changes anything."""
        return self.from_month is not None and (self.capacity_drop != 0 or self.price_rise != 0)


class WorldParameters(BaseModel):
    """All behavioural constants, grouped by the idea they govern."""

    model_config = ConfigDict(frozen=True)

    population: PopulationParameters = PopulationParameters()
    traits: TraitParameters = TraitParameters()
    billing: BillingParameters = BillingParameters()
    payment: PaymentParameters = PaymentParameters()
    engagement: EngagementParameters = EngagementParameters()
    churn: ChurnParameters = ChurnParameters()
    logging_policy: LoggingPolicyParameters = LoggingPolicyParameters()
    shift: MarketShift = Field(
        default=MarketShift(), exclude_if=lambda shift: not shift.active
    )  # written out only when it changes the world: unshifted configs read as before


class WorldConfig(BaseModel):
    """What to simulate: size, horizon, start and seed (plus optional parameter overrides)."""

    model_config = ConfigDict(frozen=True)

    n_customers: int = Field(default=20_000, ge=1)
    n_months: int = Field(default=18, ge=1, le=120)
    seed: int = 7
    start: dt.date = dt.date(2024, 1, 1)
    parameters: WorldParameters = WorldParameters()

    @field_validator("start", mode="before")
    @classmethod
    def _parse_start(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                raise ConfigError(f"start: expected a date YYYY-MM-DD, found {value!r}") from None
        return value

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, value: dt.date) -> dt.date:
        if value.day != 1:
            raise ValueError(f"start must be the first day of a month, found {value}")
        return value


def check_vocabulary(parameters: WorldParameters) -> None:
    """Fail early when a parameter names a channel, tone or plan we do not know."""
    for name, keys in (
        ("consent_share", parameters.population.consent_share),
        ("channel_urgency", parameters.payment.channel_urgency),
        ("open_log_odds", parameters.engagement.open_log_odds),
    ):
        if set(keys) != set(CHANNELS):
            raise ConfigError(
                f"{name}: expected one value per channel {CHANNELS}, found {set(keys)}"
            )
    if set(parameters.population.plan_shares) != set(PLANS):
        raise ConfigError(f"plan_shares: expected the plans {PLANS}")
    for channel, tone, _ in parameters.logging_policy.ladder:
        if channel not in CHANNELS or tone not in TONES:
            raise ConfigError(f"logging_policy.ladder: unknown channel/tone {channel}/{tone}")
