"""The reminder policy: actions, guardrails, reward, the contextual bandit and its evaluation.

- :mod:`reminder_policy.actions`: the action space (no contact, or channel x tone x offer).
- :mod:`reminder_policy.guardrails`: hard contact rules, applied before the learner chooses.
- :mod:`reminder_policy.reward`: the one reward formula.
- :mod:`reminder_policy.learner`: the contextual bandit on Vowpal Wabbit's ``cb_explore_adf``.
- :mod:`reminder_policy.ope` and :mod:`reminder_policy.reward_model`: off-policy evaluation.
"""
