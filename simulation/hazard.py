"""Piecewise-constant payment hazards: integrate them and find when an exponential clock rings.

Each open invoice carries a clock ``E ~ Exp(1)``; it is paid the moment its cumulative hazard
reaches ``E``. The hazard is constant between *breakpoints* (payment-behaviour segments around
the due date, the start and end of a reminder's effect, a dispute, the autopay debit), so it can
be integrated exactly and inverted in closed form for whole arrays of invoices at once. Because
the clock is memoryless, ``P(paid in (t0, t1] | unpaid at t0) = 1 - exp(-H(t0, t1))``: the
simulator and the ground-truth function share this one piece of arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HazardProfile:
    """The hazard of a batch of invoices; every array has one row per invoice.

    ``base_log_rates`` (n, segments) are the unreminded daily log-rates per segment, whose edges
    are ``due_at + segment_edges``; ``lift_rate/lift_start/lift_end`` (n, slots) add the effect
    of opened reminders; the hazard is zero before ``active_from`` (autopay waits for the debit)
    and inside ``[pause_start, pause_end)`` (an open dispute).
    """

    due_at: np.ndarray
    segment_edges: np.ndarray
    base_log_rates: np.ndarray
    active_from: np.ndarray
    lift_rate: np.ndarray
    lift_start: np.ndarray
    lift_end: np.ndarray
    pause_start: np.ndarray
    pause_end: np.ndarray

    def breakpoints(self) -> np.ndarray:
        """Every time at which the rate may change, shape (n, k)."""
        return np.column_stack(
            [
                self.due_at[:, None] + self.segment_edges[None, :],
                self.active_from,
                self.lift_start,
                self.lift_end,
                self.pause_start,
                self.pause_end,
            ]
        )

    def rate(self, at: np.ndarray) -> np.ndarray:
        """Daily hazard at times ``at`` (n, m)."""
        relative = at - self.due_at[:, None]
        segment = (relative[..., None] >= self.segment_edges).sum(axis=-1)
        base = np.exp(np.take_along_axis(self.base_log_rates, segment, axis=1))
        lift = np.zeros_like(base)
        for slot in range(self.lift_rate.shape[1]):
            inside = (at >= self.lift_start[:, slot, None]) & (at < self.lift_end[:, slot, None])
            lift += np.where(inside, self.lift_rate[:, slot, None], 0.0)
        active = at >= self.active_from[:, None]
        paused = (at >= self.pause_start[:, None]) & (at < self.pause_end[:, None])
        return np.where(active & ~paused, base + lift, 0.0)


def _intervals(profile: HazardProfile, t0: np.ndarray, t1: np.ndarray) -> tuple[np.ndarray, ...]:
    points = np.clip(profile.breakpoints(), t0[:, None], t1[:, None])
    points = np.sort(np.column_stack([t0, points, t1]), axis=1)
    starts, ends = points[:, :-1], points[:, 1:]
    rates = profile.rate(0.5 * (starts + ends))
    return starts, ends - starts, rates


def cumulative_hazard(profile: HazardProfile, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """``H(t0, t1)``: the hazard accumulated between ``t0`` and ``t1`` (0 where t1 <= t0)."""
    t1 = np.maximum(t0, t1)
    _, lengths, rates = _intervals(profile, t0, t1)
    return (lengths * rates).sum(axis=1)


def first_crossing(
    profile: HazardProfile, t0: np.ndarray, t1: np.ndarray, remaining: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """When does the clock ring in ``(t0, t1]``?

    ``remaining`` is what is left of each invoice's Exp(1) clock at ``t0``. Returns the ring time
    (``inf`` where it does not ring before ``t1``) and the clock left at ``t1`` (0 where it rang).
    """
    t1 = np.maximum(t0, t1)
    starts, lengths, rates = _intervals(profile, t0, t1)
    increments = lengths * rates
    cumulative = np.cumsum(increments, axis=1)
    rings = cumulative[:, -1] >= remaining
    first = np.argmax(cumulative >= remaining[:, None], axis=1)
    rows = np.arange(len(t0))
    before = cumulative[rows, first] - increments[rows, first]
    rate = rates[rows, first]
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(rate > 0, (remaining - before) / rate, 0.0)
    ring_time = np.where(rings, starts[rows, first] + offset, np.inf)
    left = np.where(rings, 0.0, remaining - cumulative[:, -1])
    return ring_time, left
