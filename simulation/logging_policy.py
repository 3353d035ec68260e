"""The historical biller's reminder policy that produced the ``messages`` log.

It is the static escalation ladder most billers run (friendly e-mail before the due date,
friendly SMS on it, neutral e-mail, firm SMS, then a firm call offering an instalment plan),
mixed with uniform exploration: with probability ``epsilon`` it picks uniformly among the
actions allowed at that moment (no contact included), otherwise the ladder's action. So every
allowed action has a known, positive propensity, which the log records for off-policy learning.

Allowed means: the channel has consent and no opt-out, letters only after the due date, at most
one contact per customer per day, offers only from ``offers_from_stage`` on, and customers in
hardship get only friendly or neutral tones with an offer. Disputes and pending promises pause
the sequence altogether (the engine logs no decision then). The send hour is drawn uniformly in
the local window ``send_hours`` independently of the action (its propensity is not logged).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from paynudge.vocabulary import CHANNELS, OFFERS, TONES
from simulation.parameters import LoggingPolicyParameters

N_ACTIONS = 1 + len(CHANNELS) * len(TONES) * len(OFFERS)
"""Action 0 is no contact; action ``1 + (channel * tones + tone) * offers + offer`` the rest."""

_codes = np.arange(N_ACTIONS - 1)
ACTION_CHANNEL = np.concatenate([[-1], _codes // (len(TONES) * len(OFFERS))])
ACTION_TONE = np.concatenate([[-1], (_codes // len(OFFERS)) % len(TONES)])
ACTION_OFFER = np.concatenate([[-1], _codes % len(OFFERS)])
NO_OFFER = OFFERS.index("none")
FIRM = TONES.index("firm")


def action_code(channel: np.ndarray, tone: np.ndarray, offer: np.ndarray) -> np.ndarray:
    """Integer action codes (0 where ``channel`` is -1, i.e. no contact)."""
    code = 1 + (channel * len(TONES) + tone) * len(OFFERS) + offer
    return np.where(channel >= 0, code, 0)


@dataclass(frozen=True)
class LoggedChoice:
    """What the logging policy chose for each decision, with its propensity."""

    channel: np.ndarray
    tone: np.ndarray
    offer: np.ndarray
    propensity: np.ndarray


def allowed_actions(
    channel_allowed: np.ndarray, hardship: np.ndarray, stage: int, policy: LoggingPolicyParameters
) -> np.ndarray:
    """Boolean (n, N_ACTIONS): which actions the biller's rules allow for each decision."""
    allowed = channel_allowed[:, np.maximum(ACTION_CHANNEL, 0)]
    if stage < policy.offers_from_stage:
        allowed &= ACTION_OFFER == NO_OFFER
    hardship_ok = (ACTION_TONE != FIRM) & (ACTION_OFFER != NO_OFFER)
    allowed &= ~hardship[:, None] | hardship_ok[None, :]
    allowed[:, 0] = True
    return allowed


def ladder_actions(
    allowed: np.ndarray, hardship: np.ndarray, stage: int, policy: LoggingPolicyParameters
) -> np.ndarray:
    """The ladder's action code per decision: its channel, else the first allowed fallback."""
    channel_name, tone_name, offer_name = policy.ladder[stage]
    tone = np.where(hardship, TONES.index("friendly"), TONES.index(tone_name))
    offer = np.full(len(hardship), OFFERS.index(offer_name))
    if stage >= policy.offers_from_stage:
        offer = np.where(hardship, OFFERS.index("instalment_plan"), offer)
    candidates = [channel_name, *[c for c in policy.fallback_channels if c != channel_name]]
    chosen = np.zeros(len(hardship), dtype=np.int64)
    for name in candidates:
        code = action_code(np.full(len(hardship), CHANNELS.index(name)), tone, offer)
        ok = (chosen == 0) & allowed[np.arange(len(code)), code]
        chosen = np.where(ok, code, chosen)
    return chosen


def choose(
    channel_allowed: np.ndarray,
    hardship: np.ndarray,
    stage: int,
    policy: LoggingPolicyParameters,
    rng: np.random.Generator,
) -> LoggedChoice:
    """Sample the logging policy's actions and their propensities for one stage's decisions."""
    allowed = allowed_actions(channel_allowed, hardship, stage, policy)
    ladder = ladder_actions(allowed, hardship, stage, policy)
    probabilities = policy.epsilon * allowed / allowed.sum(axis=1, keepdims=True)
    probabilities[np.arange(len(ladder)), ladder] += 1.0 - policy.epsilon
    cumulative = np.cumsum(probabilities, axis=1)
    draw = rng.random(len(ladder))[:, None] * cumulative[:, -1:]
    code = np.minimum((cumulative <= draw).sum(axis=1), N_ACTIONS - 1)
    return LoggedChoice(
        channel=ACTION_CHANNEL[code],
        tone=ACTION_TONE[code],
        offer=ACTION_OFFER[code],
        propensity=probabilities[np.arange(len(code)), code],
    )
