"""Action codes name their channel, tone and offer as the action's own name spells them."""

from __future__ import annotations

import numpy as np

from reminder_policy.actions import ACTION_NAMES, N_ACTIONS, action_names


def test_every_action_names_its_parts_and_no_contact_names_none() -> None:
    codes = np.array([*range(N_ACTIONS), 0, N_ACTIONS - 1])
    names = action_names(codes)
    for i, code in enumerate(codes.tolist()):
        parts = (names["channel"][i], names["tone"][i], names["offer"][i])
        if code == 0:
            assert parts == (None, None, None)
        else:
            assert "/".join(parts) == ACTION_NAMES[code]
    assert all(values.dtype == object and len(values) == len(codes) for values in names.values())
