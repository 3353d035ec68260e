"""The hazard arithmetic: ring times invert the cumulative hazard, exactly."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from simulation.hazard import HazardProfile, cumulative_hazard, first_crossing

EDGES = np.array([-7.0, 0.0, 7.0, 30.0, 60.0])


def profile(
    n: int, rng: np.random.Generator, lift: float, pause: tuple[float, float]
) -> HazardProfile:
    return HazardProfile(
        due_at=rng.uniform(10, 20, n),
        segment_edges=EDGES,
        base_log_rates=rng.normal(-2.0, 0.8, (n, 6)),
        active_from=rng.uniform(0, 12, n),
        lift_rate=np.full((n, 1), lift),
        lift_start=rng.uniform(5, 25, (n, 1)),
        lift_end=rng.uniform(25, 30, (n, 1)),
        pause_start=np.full(n, pause[0]),
        pause_end=np.full(n, pause[1]),
    )


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    lift=st.floats(0.0, 3.0),
    pause_start=st.floats(0.0, 40.0),
    pause_length=st.floats(0.0, 20.0),
)
def test_ring_time_inverts_the_cumulative_hazard(
    seed: int, lift: float, pause_start: float, pause_length: float
) -> None:
    rng = np.random.default_rng(seed)
    p = profile(64, rng, lift, (pause_start, pause_start + pause_length))
    t0 = rng.uniform(0, 10, 64)
    t1 = t0 + rng.uniform(0, 80, 64)
    clock = rng.exponential(1.0, 64)
    ring, left = first_crossing(p, t0, t1, clock)
    total = cumulative_hazard(p, t0, t1)
    rang = np.isfinite(ring)
    np.testing.assert_array_equal(rang, total >= clock)
    assert np.all((ring[rang] > t0[rang] - 1e-12) & (ring[rang] <= t1[rang] + 1e-9))
    np.testing.assert_allclose(cumulative_hazard(p, t0, ring)[rang], clock[rang], rtol=1e-9)
    np.testing.assert_allclose(left[~rang], (clock - total)[~rang], rtol=1e-9, atol=1e-12)


def test_hazard_is_additive_over_time() -> None:
    rng = np.random.default_rng(3)
    p = profile(100, rng, 0.7, (12.0, 15.0))
    t0, t2 = np.zeros(100), np.full(100, 70.0)
    t1 = rng.uniform(0, 70, 100)
    np.testing.assert_allclose(
        cumulative_hazard(p, t0, t1) + cumulative_hazard(p, t1, t2), cumulative_hazard(p, t0, t2)
    )


def test_no_hazard_before_activation_or_during_a_pause() -> None:
    rng = np.random.default_rng(4)
    p = profile(50, rng, 1.0, (40.0, 45.0))
    start = np.zeros(50)
    assert np.allclose(cumulative_hazard(p, start, p.active_from), 0.0)
    assert np.allclose(cumulative_hazard(p, np.full(50, 40.0), np.full(50, 45.0)), 0.0)
