"""The action space: no contact, or a channel x tone x offer combination, with costs and features.

Action 0 is ``no_contact``; action ``1 + (channel * n_tones + tone) * n_offers + offer`` the
rest, in the order of :mod:`paynudge.vocabulary` (the same codes the simulated logging policy
uses). Costs come from :class:`paynudge.config.PolicySettings`; the per-action features the
learner sees are one-hot channel, tone and offer indicators plus the action's cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from paynudge.config import PolicySettings
from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS, NO_CONTACT, OFFERS, TONES

N_ACTIONS = 1 + len(CHANNELS) * len(TONES) * len(OFFERS)
_codes = np.arange(N_ACTIONS - 1)
ACTION_CHANNEL = np.concatenate([[-1], _codes // (len(TONES) * len(OFFERS))])
"""Channel index of each action (-1 for no contact)."""
ACTION_TONE = np.concatenate([[-1], (_codes // len(OFFERS)) % len(TONES)])
ACTION_OFFER = np.concatenate([[-1], _codes % len(OFFERS)])
ACTION_NAMES: tuple[str, ...] = (
    NO_CONTACT,
    *(
        f"{CHANNELS[c]}/{TONES[t]}/{OFFERS[o]}"
        for c, t, o in zip(ACTION_CHANNEL[1:], ACTION_TONE[1:], ACTION_OFFER[1:], strict=True)
    ),
)


def action_codes(channel: object, tone: object, offer: object) -> np.ndarray:
    """Action codes of (channel, tone, offer) names; a missing channel means no contact."""
    frame = pd.DataFrame({"channel": channel, "tone": tone, "offer": offer})
    parts = []
    for column, vocabulary in (("channel", CHANNELS), ("tone", TONES), ("offer", OFFERS)):
        values = frame[column]
        index = values.map({name: i for i, name in enumerate(vocabulary)})
        unknown = values.notna() & index.isna()
        if unknown.any():
            raise DataError(
                f"{column}: expected one of {vocabulary}, found {values[unknown].iloc[0]!r} "
                f"(row {int(np.flatnonzero(unknown.to_numpy())[0])})"
            )
        parts.append(index.to_numpy(dtype=np.float64))
    c, t, o = parts
    contact = ~np.isnan(c)
    incomplete = contact & (np.isnan(t) | np.isnan(o))
    if incomplete.any():
        row = int(np.flatnonzero(incomplete)[0])
        raise DataError(f"tone/offer: row {row} has a channel but no tone or offer")
    code = 1 + (np.nan_to_num(c) * len(TONES) + np.nan_to_num(t)) * len(OFFERS) + np.nan_to_num(o)
    return np.where(contact, code, 0).astype(np.int64)


def _names_per_action(index: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Object array: the name of each action's channel, tone or offer (None for no contact)."""
    return np.array([None if i < 0 else vocabulary[i] for i in index.tolist()], dtype=object)


_ACTION_PART_NAMES = {
    "channel": _names_per_action(ACTION_CHANNEL, CHANNELS),
    "tone": _names_per_action(ACTION_TONE, TONES),
    "offer": _names_per_action(ACTION_OFFER, OFFERS),
}


def action_names(actions: np.ndarray) -> dict[str, np.ndarray]:
    """Channel, tone and offer names of action codes (None for no contact), as arrays."""
    actions = np.asarray(actions, dtype=np.int64)
    return {part: names[actions] for part, names in _ACTION_PART_NAMES.items()}


@dataclass(frozen=True)
class ActionSpace:
    """The actions with their costs; ``features`` is what the learner sees of each action."""

    costs: np.ndarray
    """Cost of each action (0 for no contact)."""

    @classmethod
    def from_settings(cls, settings: PolicySettings) -> ActionSpace:
        channel_cost = np.array([settings.channel_costs[c] for c in CHANNELS])
        offer_cost = np.array([settings.offer_costs[o] for o in OFFERS])
        costs = channel_cost[ACTION_CHANNEL[1:]] + offer_cost[ACTION_OFFER[1:]]
        return cls(costs=np.concatenate([[0.0], costs]))

    @property
    def n_actions(self) -> int:
        return N_ACTIONS

    @property
    def names(self) -> tuple[str, ...]:
        return ACTION_NAMES

    def features(self) -> np.ndarray:
        """(n_actions, k): no-contact flag, one-hot channel, tone and offer, and the cost."""
        blocks = [(np.arange(N_ACTIONS) == 0)[:, None].astype(np.float64)]
        for index, vocabulary in (
            (ACTION_CHANNEL, CHANNELS),
            (ACTION_TONE, TONES),
            (ACTION_OFFER, OFFERS),
        ):
            blocks.append((index[:, None] == np.arange(len(vocabulary))[None, :]).astype(float))
        blocks.append(self.costs[:, None])
        return np.hstack(blocks)

    def feature_names(self) -> tuple[str, ...]:
        return (
            NO_CONTACT,
            *(f"channel={c}" for c in CHANNELS),
            *(f"tone={t}" for t in TONES),
            *(f"offer={o}" for o in OFFERS),
            "cost",
        )
