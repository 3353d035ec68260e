"""The HTTP contract of the decision service: requests, decisions, scores and feedback.

Every field is validated here, at the edge, so a bad request is refused with the field's
location (``requests.0.timezone``) before any model runs. The same models are the input and
output of :func:`serving.decision.decide`, of batch scoring and of :mod:`serving.client`.
"""

from __future__ import annotations

import math
from collections.abc import KeysView
from datetime import date
from functools import cache
from typing import Annotated, Self, TypeVar
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from features.catalog import ALL_FEATURES

MAX_BATCH = 5_000
"""Most decisions (or scores, or feedback rows) in one request: bounds memory and latency."""
MAX_ID_LENGTH = 128
TIMEZONES = frozenset(available_timezones())
FEATURE_NAMES = frozenset(feature.name for feature in ALL_FEATURES)

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Count = Annotated[int, Field(ge=0, le=10_000)]
FeatureValue = float | int | bool | str | None


EXAMPLE_REQUEST = {
    "customer_id": "C0000001",
    "invoice_id": "INV-2025-06-0001",
    "amount": 42.5,
    "issue_date": "2025-06-01",
    "due_date": "2025-06-15",
    "stage": "due",
    "now": "2025-06-15T09:00:00+00:00",
    "timezone": "Europe/Amsterdam",
}
"""A valid request, shown in the OpenAPI schema (and replayed by the schema fuzz test)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


M = TypeVar("M", bound=BaseModel)


@cache
def _field_names(model: type[BaseModel]) -> KeysView[str]:
    return model.model_fields.keys()


def trusted(model: type[M], values: dict[str, object]) -> M:
    """A ``model`` of values the service computed itself, unvalidated: pydantic's
    ``model_construct`` without its per-field alias and default lookups (a third of building a
    decision's response). ``values`` holds every field, in declaration order (the JSON's)."""
    if values.keys() != _field_names(model):
        raise TypeError(f"{model.__name__} needs exactly {list(model.model_fields)}")
    instance = model.__new__(model)
    object.__setattr__(instance, "__dict__", values)
    object.__setattr__(instance, "__pydantic_fields_set__", set(values))
    object.__setattr__(instance, "__pydantic_extra__", None)
    object.__setattr__(instance, "__pydantic_private__", None)
    return instance


class DecisionRequest(_Strict):
    """One open invoice to decide a reminder for, with the dispatcher's contact state."""

    model_config = ConfigDict(json_schema_extra={"example": EXAMPLE_REQUEST})  # type: ignore[dict-item]

    customer_id: Identifier
    invoice_id: Identifier
    amount: float = Field(ge=0, description="Amount of the invoice, in currency units.")
    issue_date: date
    due_date: date
    stage: Identifier = Field(description="Dunning stage (pre_due, due, overdue_3, ...).")
    now: AwareDatetime = Field(description="Decision time (time-zone aware).")
    timezone: str = Field(
        description="The customer's IANA time zone (Europe/Amsterdam).",
        json_schema_extra={"enum": sorted(TIMEZONES)},  # type: ignore[dict-item]
    )
    attempts: Count = Field(default=0, description="Contacts about this invoice so far.")
    calls_7d: Count = Field(default=0, description="Call attempts about this invoice, 7 days.")
    messages_invoice_7d: Count = Field(default=0, description="Messages about it, 7 days.")
    messages_customer_24h: Count = Field(default=0, description="Messages to the customer, 24 h.")
    dispute_open: bool = False
    paid: bool = False
    promise_until: AwareDatetime | None = Field(
        default=None, description="End of a pending promise to pay: no contact before it."
    )
    send_before: AwareDatetime | None = Field(
        default=None, description="Latest acceptable send time (no deadline when absent)."
    )
    overrides: dict[str, FeatureValue] = Field(
        default_factory=dict,
        description="Catalogue features to use instead of the stored profile's (e.g. consent "
        "of a customer the store does not know yet).",
    )

    @field_validator("amount")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("expected a finite amount")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in TIMEZONES:
            raise ValueError(f"expected an IANA time zone such as Europe/Amsterdam, got {value!r}")
        return value

    @field_validator("overrides")
    @classmethod
    def _catalogue_features(cls, value: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
        unknown = sorted(set(value) - FEATURE_NAMES)
        if unknown:
            raise ValueError(f"not catalogue features: {', '.join(unknown[:5])}")
        bad = [k for k, v in value.items() if isinstance(v, float) and not math.isfinite(v)]
        if bad:
            raise ValueError(f"expected finite values, got NaN or infinity for {bad[0]}")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.due_date < self.issue_date:
            raise ValueError(f"due_date {self.due_date} is before issue_date {self.issue_date}")
        if self.send_before is not None and self.send_before < self.now:
            raise ValueError(f"send_before {self.send_before} is before now {self.now}")
        return self


class DecideInput(_Strict):
    """A batch of decisions; ``seed`` makes the policy's draws reproducible."""

    requests: list[DecisionRequest] = Field(min_length=1, max_length=MAX_BATCH)
    explain: bool = Field(default=False, description="Add the top reasons of the risk score.")
    seed: int | None = Field(
        default=None, ge=0, le=2**63 - 1, description="Same seed and inputs: same decisions."
    )


class ScoreInput(_Strict):
    """A batch of invoices to score."""

    requests: list[DecisionRequest] = Field(min_length=1, max_length=MAX_BATCH)
    explain: bool = Field(default=False, description="Add the top reasons of the risk score.")


class Reason(_Strict):
    """One feature's push on the late-payment score (SHAP value on the log-odds scale)."""

    feature: str
    value: FeatureValue
    contribution: float
    sentence: str


class Scores(_Strict):
    """The risk scores of one invoice."""

    customer_id: str
    invoice_id: str
    late_payment_probability: float
    churn_probability: float
    cold_start: bool = Field(description="The customer is unknown to the feature store.")
    explanation: list[Reason] | None = None


class Decision(Scores):
    """What to do about one invoice, with everything off-policy learning needs."""

    decision_id: UUID
    action: str = Field(description="no_contact or channel/tone/offer.")
    channel: str | None
    tone: str | None
    offer: str | None
    send_at: AwareDatetime | None = Field(description="When to send, UTC (None: no contact).")
    send_at_local: AwareDatetime | None = Field(description="The same, in the customer's zone.")
    timezone: str
    propensity: float = Field(description="Probability the policy gave the chosen action.")
    open_probability: float | None = Field(
        description="Expected open probability at the chosen hour (None for no contact or a "
        "letter)."
    )
    expected_reward: float
    guardrail_reasons: list[str] = Field(description="Codes of the rules that removed actions.")
    model_versions: dict[str, str]
    policy_version: str


class DecideOutput(_Strict):
    decisions: list[Decision]


class ScoreOutput(_Strict):
    scores: list[Scores]


class Feedback(_Strict):
    """Outcomes of one decision as the dispatcher saw them (unknown ones left out)."""

    decision_id: UUID
    delivered: bool | None = None
    opened: bool | None = None
    clicked: bool | None = None
    paid_at: AwareDatetime | None = None
    paid_amount: float | None = Field(default=None, ge=0)
    opted_out: bool | None = None
    churned: bool | None = None

    @field_validator("paid_amount")
    @classmethod
    def _finite_amount(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("expected a finite amount")
        return value


class FeedbackInput(_Strict):
    feedback: list[Feedback] = Field(min_length=1, max_length=MAX_BATCH)


class FeedbackOutput(_Strict):
    accepted: int = Field(description="Reports appended to the feedback log.")
    duplicates: int = Field(description="Reports already in the log (ignored).")


class ReloadInput(_Strict):
    alias: Identifier = "champion"


class EchoInput(_Strict):
    """The HTTP floor: a trivial request the benchmark compares /decide against."""

    message: str = Field(default="", max_length=1_000)


class EchoOutput(_Strict):
    message: str


class Metadata(_Strict):
    """What the service is serving."""

    alias: str
    models: dict[str, str] = Field(description="Spec -> registered name/version.")
    model_uris: dict[str, str]
    policy_version: str
    policy_uri: str
    policy_score_versions: dict[str, str]
    loaded_at: AwareDatetime
