"""Reference policies the learned one is compared with, each as an action distribution.

- ``ladder``: the static escalation ladder most billers run (friendly e-mail before the due date,
  friendly SMS on it, neutral e-mail, firm SMS, then a firm call offering an instalment plan);
  customers in hardship get a friendly tone with an instalment plan; a channel that is not
  allowed falls back to the next one in ``fallback_channels``; nothing allowed means no contact.
- ``always_email``: the ladder's tone and offer, always by e-mail (else no contact).
- ``uniform``: uniform over the allowed actions.
- ``oracle``: the best allowed action under known expected rewards (the simulation's truth).

The ladder is the one the simulated biller logged with (:class:`LoggingPolicyParameters`), so
the comparison is against what the biller really did, minus its exploration.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from paynudge.vocabulary import CHANNELS, OFFERS, TONES
from reminder_policy.actions import N_ACTIONS
from simulation.parameters import LoggingPolicyParameters

LADDER = LoggingPolicyParameters()


def _code(channel: str, tone: str, offer: str) -> int:
    c, t, o = CHANNELS.index(channel), TONES.index(tone), OFFERS.index(offer)
    return 1 + (c * len(TONES) + t) * len(OFFERS) + o


def _first_allowed(mask: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Per row, the first candidate action (columns in order) that the mask allows, else 0."""
    rows = np.arange(len(mask))
    chosen = np.zeros(len(mask), dtype=np.int64)
    for column in range(candidates.shape[1]):
        code = candidates[:, column]
        take = (chosen == 0) & mask[rows, code] & (code > 0)
        chosen = np.where(take, code, chosen)
    return chosen


def one_hot(actions: np.ndarray, n_actions: int = N_ACTIONS) -> np.ndarray:
    """A deterministic policy's action distribution."""
    dist = np.zeros((len(actions), n_actions))
    dist[np.arange(len(actions)), actions] = 1.0
    return dist


def ladder_actions(
    stage: Sequence[str] | np.ndarray,
    mask: np.ndarray,
    channels: Sequence[str] | None = None,
    ladder: LoggingPolicyParameters = LADDER,
) -> np.ndarray:
    """The ladder's action per decision (stage names as in ``ladder.stage_names``)."""
    stage = np.asarray(stage, dtype=object)
    steps = dict(zip(ladder.stage_names, ladder.ladder, strict=True))
    order = list(channels) if channels is not None else None
    candidates = np.zeros((len(stage), 2 * (1 + len(ladder.fallback_channels))), dtype=np.int64)
    for name, (channel, tone, offer) in steps.items():
        rows = stage == name
        chain = order or [channel, *[c for c in ladder.fallback_channels if c != channel]]
        codes = []
        for option in chain:
            codes += [_code(option, tone, offer), _code(option, "friendly", "instalment_plan")]
        candidates[rows, : len(codes)] = codes
    return _first_allowed(mask, candidates)


def ladder(stage: Sequence[str] | np.ndarray, mask: np.ndarray) -> np.ndarray:
    return one_hot(ladder_actions(stage, mask))


def always_email(stage: Sequence[str] | np.ndarray, mask: np.ndarray) -> np.ndarray:
    return one_hot(ladder_actions(stage, mask, channels=["email"]))


def uniform(mask: np.ndarray) -> np.ndarray:
    allowed = mask.astype(np.float64)
    return allowed / allowed.sum(axis=1, keepdims=True)


def oracle(expected_rewards: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The best allowed action under known expected rewards (n, n_actions)."""
    return one_hot(np.argmax(np.where(mask, expected_rewards, -np.inf), axis=1))
