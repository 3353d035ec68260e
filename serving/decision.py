"""The one decision function: features -> scores -> guarded policy -> send time -> explanation.

:func:`decide` is the only place this logic lives: the BentoML service, batch scoring and the
policy simulation call it. It is vectorised (a list of requests in, a list of decisions out, in
order) and pure apart from the injected profile lookup: models, policy, settings and the store
access come in as :class:`Components`, so tests run it on real small models.

The policy's draw of each decision uses a uniform number derived from the seed and the
decision's own key (customer, invoice, stage, time), not from its position in the batch: the
same inputs and seed give the same decisions whether they come one by one or in a batch.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property, lru_cache
from typing import Protocol

import numpy as np
import pandas as pd

from paynudge.config import Settings
from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS, consent_column, opt_out_column
from reminder_policy.actions import ACTION_NAMES, action_names
from reminder_policy.context import context_columns, context_matrix
from reminder_policy.guardrails import GuardrailInputs, apply_guardrails
from reminder_policy.local_time import DAY_NS, NAT, instant_ns, utc_datetime, wall_clock_instants
from serving.decision_ids import decision_id
from serving.explanation import top_reasons
from serving.feature_rows import FeatureRows, flag_block, flags
from serving.invoice_features import KNOWN_COLUMN, invoice_features
from serving.schemas import Decision, DecisionRequest, Reason, Scores, trusted
from serving.send_time import candidate_hours, local_times, plan_send_times
from training.model import CalibratedLightGBM

ProfileLookup = Callable[[list[str]], FeatureRows]
"""Customer ids -> their online profiles (catalogue features and ``known``), in order."""

SCORE_COLUMNS = {"late_payment_probability": "late_payment", "churn_probability": "churn"}
"""Policy context column -> the model producing it (as in reminder_policy.scores)."""


@dataclass(frozen=True)
class ScoreModel:
    """A loaded model: the estimator and where it came from."""

    estimator: CalibratedLightGBM
    version: str
    """``name/version`` in the registry."""
    uri: str


class Policy(Protocol):
    """What a decision asks of the policy: the learned bandit, or a baseline in its place."""

    def rewards_and_distribution(
        self, contexts: np.ndarray, mask: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(n, n_actions) estimated rewards and action probabilities over the allowed actions."""
        ...


@dataclass(frozen=True)
class Components:
    """Everything a decision needs, loaded once and swapped as a whole on reload."""

    models: dict[str, ScoreModel]
    """``late_payment``, ``churn`` and ``send_time``."""
    bandit: Policy
    policy_spec: dict
    policy_version: str
    policy_uri: str
    settings: Settings
    profiles: ProfileLookup
    alias: str = "champion"
    loaded_at: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))

    @cached_property
    def model_versions(self) -> dict[str, str]:
        """``name -> name/version`` of each model (shared by every decision: not to be
        mutated)."""
        return {name: model.version for name, model in self.models.items()}

    @cached_property
    def context_scores(self) -> tuple[str, ...]:
        """The scores in the policy's context, once its context columns are found to be the ones
        serving builds (a :class:`DataError` on every decision if not)."""
        spec = self.policy_spec
        names = tuple(spec.get("scores", {}))
        expected = context_columns(tuple(spec["stages"]), names)
        if not set(names) <= set(SCORE_COLUMNS) or expected != tuple(spec["context_columns"]):
            raise DataError(
                f"policy {self.policy_version} expects other context columns than serving "
                "builds; retrain the policy with the current features and score models"
            )
        return names


@dataclass(frozen=True)
class ScoredBatch:
    """Features and scores of a batch of requests (what :func:`score` computes)."""

    features: FeatureRows
    scores: dict[str, np.ndarray]
    """``late_payment_probability`` and ``churn_probability``."""
    matrices: dict[str, np.ndarray]
    """The feature matrix each risk model scored (``late_payment``, ``churn``; one array when
    they read the same)."""
    cold_start: np.ndarray
    explanations: list[list[dict[str, object]]] | None


@dataclass(frozen=True)
class Chosen:
    """The policy's choice per decision and its send plan."""

    action: np.ndarray
    propensity: np.ndarray
    expected_reward: np.ndarray
    message: dict[str, np.ndarray]
    """channel, tone, offer (None for no contact) and stage."""
    send_at: np.ndarray
    """UTC ns."""
    send_at_local: np.ndarray
    """Local wall-clock ns."""
    open_probability: np.ndarray


def score_batch(
    requests: Sequence[DecisionRequest], components: Components, explain: bool = False
) -> ScoredBatch:
    """Online features of each request's invoice, the two risk scores and, if asked, reasons."""
    ids = [request.customer_id for request in requests]
    profiles = components.profiles(ids)
    features = invoice_features(profiles, requests)
    by_key: dict[tuple, np.ndarray] = {}  # late-payment and churn models read the same rows
    scores, matrices = {}, {}
    for column, name in SCORE_COLUMNS.items():
        estimator = components.models[name].estimator
        key = estimator.matrix_key()
        if key not in by_key:
            by_key[key] = estimator.feature_matrix(features)
        matrices[name] = by_key[key]
        scores[column] = estimator.positive_proba_matrix(matrices[name])
    explanations = None
    if explain:
        explanations = top_reasons(components.models["late_payment"].estimator, features)
    cold_start = ~flags(profiles[KNOWN_COLUMN])
    return ScoredBatch(features, scores, matrices, cold_start, explanations)


def score(
    requests: Sequence[DecisionRequest], components: Components, explain: bool = False
) -> list[Scores]:
    """Late-payment and churn probabilities of each request's invoice (no policy, no logging)."""
    batch = score_batch(requests, components, explain)
    return [
        Scores(
            customer_id=request.customer_id,
            invoice_id=request.invoice_id,
            late_payment_probability=float(batch.scores["late_payment_probability"][i]),
            churn_probability=float(batch.scores["churn_probability"][i]),
            cold_start=bool(batch.cold_start[i]),
            explanation=_reasons(batch.explanations, i),
        )
        for i, request in enumerate(requests)
    ]


def _reasons(explanations: list[list[dict[str, object]]] | None, i: int) -> list[Reason] | None:
    if explanations is None:
        return None
    return [Reason.model_validate(reason) for reason in explanations[i]]


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def due_ends(due_dates: Sequence[date], zones: np.ndarray) -> np.ndarray:
    """End of each due date (next local midnight) in the customer's zone, as UTC ns."""
    days = np.array([day.toordinal() for day in due_dates], dtype=np.int64) - _EPOCH_ORDINAL + 1
    found = wall_clock_instants(days * DAY_NS, zones)
    # The later of a repeated midnight; the end of the gap if a DST change skips midnight.
    return np.where(found.latest == NAT, found.gap_end, found.latest)


_CONSENT_COLUMNS = tuple(consent_column(c) for c in CHANNELS)
_OPT_OUT_COLUMNS = tuple(opt_out_column(c) for c in CHANNELS)


def guardrail_inputs(
    requests: Sequence[DecisionRequest],
    features: FeatureRows,
    zones: np.ndarray,
    due_at: np.ndarray,
) -> GuardrailInputs:
    """The guardrails' inputs: the request's contact state, the profile's consent and hardship
    (the request's numbers and flags each read into one array, a row per field)."""
    now, promise_until, send_before, calls, messages_invoice, messages_customer = np.array(
        [
            (
                instant_ns(request.now),
                instant_ns(request.promise_until),
                instant_ns(request.send_before),
                request.calls_7d,
                request.messages_invoice_7d,
                request.messages_customer_24h,
            )
            for request in requests
        ],
        dtype=np.int64,
    ).T.copy()
    dispute_open, paid = np.array(
        [(request.dispute_open, request.paid) for request in requests], dtype=bool
    ).T.copy()
    return GuardrailInputs.trusted(  # validated requests: see DecisionRequest
        send_at=now,
        timezone=zones,
        due_at=due_at,
        consent=flag_block(features, _CONSENT_COLUMNS),
        opted_out=flag_block(features, _OPT_OUT_COLUMNS),
        calls_7d=calls,
        messages_invoice_7d=messages_invoice,
        messages_customer_24h=messages_customer,
        dispute_open=dispute_open,
        hardship=flags(features["hardship_90d"]),
        paid=paid,
        promise_until=promise_until,
        send_before=send_before,
    )  # fmt: skip


_MASK64 = 2**64 - 1


def _mix(x: int) -> int:
    """SplitMix64's finaliser: scrambles a 64-bit key into uniform bits (Python ints, products
    taken modulo 2**64: for the few keys of a request, cheaper than numpy calls)."""
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def decision_key(request: DecisionRequest) -> bytes:
    """What identifies a decision: customer, invoice, stage and decision time (to the ns)."""
    parts = (request.customer_id, request.invoice_id, request.stage, str(instant_ns(request.now)))
    return "\x1f".join(parts).encode()


@lru_cache(maxsize=64)
def _seed_bits(seed: int) -> int:
    """The seed's 64 mixed bits (a caller's seed recurs: computed once)."""
    if not 0 <= seed <= _MASK64:
        raise DataError(f"seed: expected an integer from 0 to 2**64 - 1, got {seed}")
    return _mix(seed)


def decision_draws(requests: Sequence[DecisionRequest], seed: int | None) -> np.ndarray:
    """A uniform number in [0, 1) per decision, from the seed and the decision's key (no seed:
    random bits in place of the mixed seed's, which is what mixing a random seed gives)."""
    seed_bits = secrets.randbits(64) if seed is None else _seed_bits(seed)
    return np.array([_uniform(decision_key(r), seed_bits) for r in requests], dtype=np.float64)


def _uniform(key: bytes, seed_bits: int) -> float:
    """The 53 top bits of the mixed key hash and seed, as a float in [0, 1)."""
    hashed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
    return (_mix(hashed ^ seed_bits) >> 11) * 2.0**-53


def choose_actions(action_dist: np.ndarray, draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The action each draw falls on in its row's distribution, and that action's probability
    (the same inversion as :meth:`ContextualBandit.sample`, with our own draws)."""
    cumulative = np.cumsum(action_dist, axis=1)
    chosen = np.argmax(cumulative > draws[:, None] * cumulative[:, -1:], axis=1)
    return chosen, action_dist[np.arange(len(chosen)), chosen]


def _check_stages(requests: Sequence[DecisionRequest], stages: Sequence[str]) -> None:
    for i, request in enumerate(requests):  # a membership check, not scoring
        if request.stage not in stages:
            raise DataError(
                f"requests.{i}.stage: expected one of {', '.join(stages)}, got {request.stage!r}"
            )


@dataclass(frozen=True)
class DecidedBatch:
    """Decisions with the feature rows they were made on (for the decision log)."""

    decisions: list[Decision]
    features: FeatureRows


def decide(
    requests: Sequence[DecisionRequest],
    components: Components,
    *,
    explain: bool = False,
    seed: int | None = None,
) -> list[Decision]:
    """One decision per request, in order (see the module docstring for the steps)."""
    return decide_batch(requests, components, explain=explain, seed=seed).decisions


def decide_batch(
    requests: Sequence[DecisionRequest],
    components: Components,
    *,
    explain: bool = False,
    seed: int | None = None,
) -> DecidedBatch:
    """:func:`decide`, also returning the feature rows."""
    if not requests:
        return DecidedBatch([], {})
    spec = components.policy_spec
    stages = list(spec["stages"])
    _check_stages(requests, stages)
    settings = components.settings
    batch = score_batch(requests, components, explain)
    zones = np.array([request.timezone for request in requests], dtype=object)
    due_at = due_ends([request.due_date for request in requests], zones)
    inputs = guardrail_inputs(requests, batch.features, zones, due_at)
    guard = apply_guardrails(inputs, settings.policy.guardrails)
    stage = np.array([request.stage for request in requests], dtype=object)
    contexts = _contexts(components, batch, stage, inputs.instants("send_at"), due_at)
    rewards, action_dist = components.bandit.rewards_and_distribution(contexts, guard.allowed)
    draws = decision_draws(requests, seed)
    action, propensity = choose_actions(action_dist, draws)
    expected_reward = rewards[np.arange(len(action)), action]
    message = {**action_names(action), "stage": stage}
    hours = candidate_hours(settings.send_hours, settings.policy.guardrails.quiet_hours)
    risk = (components.models["late_payment"].estimator, batch.matrices["late_payment"])
    plan = plan_send_times(
        batch.features, message, guard.send_at_ns, guard.send_at_local_ns,
        inputs.instants("send_before"), zones,
        components.models["send_time"].estimator, hours, risk,
    )  # fmt: skip
    chosen = Chosen(action, propensity, expected_reward, message, plan.send_at,
                    plan.send_at_local, plan.open_probability)  # fmt: skip
    decisions = _decisions(requests, components, batch, chosen, guard.reasons())
    return DecidedBatch(decisions, batch.features)


def _contexts(
    components: Components,
    batch: ScoredBatch,
    stage: np.ndarray,
    decided_at: np.ndarray,
    due_at: np.ndarray,
) -> np.ndarray:
    """The policy's context matrix, checked against the columns the policy was trained on."""
    scores = {name: batch.scores[name] for name in components.context_scores}
    days_left = (due_at - decided_at) / DAY_NS
    return context_matrix(
        batch.features, stage, days_left, components.policy_spec["stages"], scores
    )


def _decisions(
    requests: Sequence[DecisionRequest],
    components: Components,
    batch: ScoredBatch,
    chosen: Chosen,
    reasons: list[tuple[str, ...]],
) -> list[Decision]:
    """Assemble the decision records (the one per-row step: building response objects; the
    arrays read as Python lists first, each element a plain value)."""
    contact = (chosen.action > 0).tolist()
    local = local_times(chosen.send_at, chosen.send_at_local)
    send_at = chosen.send_at.tolist()
    versions = components.model_versions
    late = batch.scores["late_payment_probability"].tolist()
    churn = batch.scores["churn_probability"].tolist()
    cold_start = batch.cold_start.tolist()
    action = [ACTION_NAMES[a] for a in chosen.action.tolist()]
    channel, tone, offer = (chosen.message[c].tolist() for c in ("channel", "tone", "offer"))
    propensity = chosen.propensity.tolist()
    expected_reward = chosen.expected_reward.tolist()
    opens = chosen.open_probability.tolist()
    return [
        trusted(
            Decision,
            {  # every field, in declaration order
                "customer_id": request.customer_id,
                "invoice_id": request.invoice_id,
                "late_payment_probability": late[i],
                "churn_probability": churn[i],
                "cold_start": cold_start[i],
                "explanation": _reasons(batch.explanations, i),
                "decision_id": decision_id(),
                "action": action[i],
                "channel": channel[i],
                "tone": tone[i],
                "offer": offer[i],
                "send_at": utc_datetime(send_at[i]) if contact[i] else None,
                "send_at_local": local[i] if contact[i] else None,
                "timezone": request.timezone,
                "propensity": propensity[i],
                "open_probability": None if opens[i] != opens[i] else opens[i],  # NaN: none
                "expected_reward": expected_reward[i],
                "guardrail_reasons": list(reasons[i]),
                "model_versions": versions,
                "policy_version": components.policy_version,
            },
        )
        for i, request in enumerate(requests)
    ]
