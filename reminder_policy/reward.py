"""The reward of one reminder decision: one formula, weights in settings.

    reward = paid_value * paid - cost(action) - opt_out_penalty * opted_out
             - churn_penalty * churned

- ``paid``: the invoice was settled after the decision and within the stage's window
  (``stage_window_days``: until the next stage's decision, so later reminders cannot take the
  credit); once an instalment plan has been offered, any payment in the window counts (the plan
  started). A part payment alone does not.
- ``cost``: the action's contact and offer cost (:mod:`reminder_policy.actions`); 0 for no contact.
- ``opted_out``: the customer opted out of the channel in response to this message.
- ``churned``: the customer left within ``churn_window_days`` of the decision (disconnections for
  non-payment do not count: the missing payment is already in the reward). The churn model's
  score is part of the policy's context, so the policy can learn not to push customers who are
  about to leave.

The formula is linear in the outcomes, so the same function gives the expected reward when it is
fed probabilities instead of 0/1 outcomes (the simulation's ground truth, a reward model).
All weights are in currency units (:class:`paynudge.config.RewardSettings`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from paynudge.config import RewardSettings


def reward(
    paid: np.ndarray,
    cost: np.ndarray,
    opted_out: np.ndarray,
    churned: np.ndarray,
    settings: RewardSettings,
) -> np.ndarray:
    """The reward of each decision (outcomes as 0/1, or as probabilities for expectations)."""
    return (
        settings.paid_value * np.asarray(paid, dtype=np.float64)
        - np.asarray(cost, dtype=np.float64)
        - settings.opt_out_penalty * np.asarray(opted_out, dtype=np.float64)
        - settings.churn_penalty * np.asarray(churned, dtype=np.float64)
    )


def window_days(stage: pd.Series | np.ndarray, settings: RewardSettings) -> np.ndarray:
    """Payment window of each decision's stage, in days."""
    stages = pd.Series(np.asarray(stage, dtype=object))
    days = stages.map(settings.stage_window_days).fillna(settings.default_window_days)
    return days.to_numpy(dtype=np.float64)
