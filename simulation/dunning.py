"""The engine: a daily clock on which invoices are issued, debited, reminded and paid.

Each simulated day, in local time order: new invoices are issued (after a churn check for their
customers), unpaid invoices 60 days past due may get the customer disconnected, autopay debits
run at 06:00, and at 07:00 the logging policy decides on every invoice reaching a dunning stage.
Between events each invoice's payment clock runs on its hazard (:mod:`simulation.hazard`).
All work is vectorised over the invoices that share an event day.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from paynudge.vocabulary import CHANNELS, CHURN_REASONS
from simulation import behaviour
from simulation.billing import Invoices
from simulation.hazard import first_crossing
from simulation.logging_policy import choose
from simulation.parameters import WorldParameters
from simulation.population import Population
from simulation.reminders import send_reminders
from simulation.schedule import Schedule
from simulation.state import CustomerState, EventLog, InvoiceState

DAYS_PER_MONTH = 365.25 / 12
MINUTE = 1.0 / 1440.0
LETTER = CHANNELS.index("letter")
Progress = Callable[[int, int], None]


class Engine:
    """Runs the world from the first issue day to the horizon (exclusive)."""

    def __init__(
        self,
        population: Population,
        invoices: Invoices,
        schedule: Schedule,
        parameters: WorldParameters,
        rng: np.random.Generator,
        horizon_day: int,
    ) -> None:
        self.people = population
        self.bills = invoices
        self.when = schedule
        self.p = parameters
        self.rng = rng
        self.horizon_day = horizon_day
        self.horizon_at = float(horizon_day)
        self.edges = np.asarray(parameters.payment.segment_edges_days)
        self.inv = InvoiceState.empty(invoices.size)
        self.cust = CustomerState.empty(population.size, population.signup_day.astype(float))
        self.log = EventLog()
        self.due_order = np.argsort(invoices.due_day, kind="stable")
        self.due_sorted = invoices.due_day[self.due_order]
        self.issue_bounds = np.searchsorted(
            invoices.issue_day, np.arange(horizon_day + 1), side="left"
        )

    def run(self, progress: Progress | None = None) -> None:
        first_day = int(self.bills.issue_day.min()) if self.bills.size else 0
        offsets = self.p.logging_policy.stage_offsets_days
        disconnect_offset = int(self.p.payment.non_payment_disconnect_days)
        for day in range(first_day, self.horizon_day):
            self._issue(day)
            self._disconnect(self._due_on(day - disconnect_offset))
            self._debit(self._due_on(day))
            for stage, offset in enumerate(offsets):
                self._decide(self._due_on(day - offset), stage, day)
            if progress is not None:
                progress(day - first_day + 1, self.horizon_day - first_day)
        finish(self)

    # -- helpers -------------------------------------------------------------------------------

    def _due_on(self, due_day: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.due_sorted, [due_day, due_day + 1])
        rows = self.due_order[lo:hi]
        return rows[self.inv.issued[rows]]

    def _base_log_rates(self, rows: np.ndarray) -> np.ndarray:
        customer = self.bills.customer[rows]
        return behaviour.base_log_rates(
            self.bills.capacity[rows], self.people.forgetfulness[customer], self.p.payment
        )

    def _profile(self, rows: np.ndarray):  # type: ignore[no-untyped-def]
        return self.inv.profile(
            rows, self.when.due_at[rows], self.edges, self._base_log_rates(rows)
        )

    def _advance(self, rows: np.ndarray, until: np.ndarray) -> np.ndarray:
        """Run the payment clocks of ``rows`` up to ``until``; return which are still unpaid."""
        inv = self.inv
        moving = np.isinf(inv.paid_at[rows]) & (inv.integrated_to[rows] < until)
        run, stop = rows[moving], until[moving]
        if run.size:
            profile = self._profile(run)
            ring, left = first_crossing(profile, inv.integrated_to[run], stop, inv.clock[run])
            paid = np.isfinite(ring)
            inv.paid_at[run[paid]] = ring[paid]
            self._attribute_offers(run[paid], ring[paid], profile.rate(ring[:, None])[paid, 0])
            inv.clock[run] = left
            inv.integrated_to[run] = stop
        return np.isinf(inv.paid_at[rows])

    def _attribute_offers(self, rows: np.ndarray, at: np.ndarray, total: np.ndarray) -> None:
        """Decide which payments an accepted offer caused (competing risks at the ring time)."""
        inv = self.inv
        inside = (inv.lift_start[rows] <= at[:, None]) & (at[:, None] < inv.lift_end[rows])
        offer_rate = np.where(inside, inv.lift_offer[rows], 0.0)
        slot = np.argmax(offer_rate, axis=1)
        chosen = offer_rate[np.arange(rows.size), slot]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(total > 0, chosen / total, 0.0)
        accepted = self.rng.random(rows.size) < share
        inv.offer_paid[rows[accepted]] = inv.lift_offer_code[rows[accepted], slot[accepted]]

    # -- events --------------------------------------------------------------------------------

    def _issue(self, day: int) -> None:
        rows = np.arange(self.issue_bounds[day], self.issue_bounds[day + 1])
        if rows.size == 0:
            return
        customer = self.bills.customer[rows]
        issue_at = self.when.issue_at[rows]
        self._check_churn(customer, issue_at)
        live = (self.cust.churned_at[customer] > issue_at) & (issue_at < self.horizon_at)
        rows, customer, issue_at = rows[live], customer[live], issue_at[live]
        inv, n = self.inv, rows.size
        inv.issued[rows] = True
        inv.clock[rows] = self.rng.exponential(1.0, n)
        inv.integrated_to[rows] = issue_at
        autopay = self.people.autopay[customer]
        inv.active_from[rows] = np.where(autopay, self.when.debit_at[rows], issue_at)
        disputes = self.rng.random(n) < behaviour.dispute_probability(
            self.bills.bill_ratio[rows],
            self.people.bill_shock_sensitivity[customer],
            self.p.engagement,
        )
        e = self.p.engagement
        start = issue_at + self.rng.uniform(*e.dispute_open_days, n)
        end = start + e.dispute_min_days + self.rng.exponential(e.dispute_mean_extra_days, n)
        inv.dispute_start[rows] = np.where(disputes, start, np.inf)
        inv.dispute_end[rows] = np.where(disputes, end, np.inf)
        self.cust.last_bill_ratio[customer] = self.bills.bill_ratio[rows]

    def _check_churn(self, customer: np.ndarray, until: np.ndarray) -> None:
        """Draw churn between each customer's last check and ``until`` (base + annoyance)."""
        cust = self.cust
        alive = cust.churned_at[customer] > until
        customer, until = customer[alive], until[alive]
        since = cust.churn_checked_at[customer]
        span = np.maximum(until - since, 0.0)
        base = (
            self.people.churn_monthly[customer]
            * span
            / DAYS_PER_MONTH
            * behaviour.churn_bill_shock_multiplier(
                cust.last_bill_ratio[customer],
                self.people.bill_shock_sensitivity[customer],
                self.p.churn,
            )
        )
        hazard = base + cust.annoyance[customer]
        churns = self.rng.random(customer.size) < 1.0 - np.exp(-hazard)
        reasons = self.p.churn.reason_shares
        natural = self.rng.choice(
            [CHURN_REASONS.index(r) for r in reasons], size=customer.size, p=list(reasons.values())
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            annoyed = self.rng.random(customer.size) < cust.annoyance[customer] / hazard
        reason = np.where(annoyed, CHURN_REASONS.index("competitor"), natural)
        churn_at = since + self.rng.random(customer.size) * span
        cust.churned_at[customer[churns]] = churn_at[churns]
        cust.churn_reason[customer[churns]] = reason[churns]
        cust.churn_checked_at[customer] = until
        cust.annoyance[customer] = 0.0

    def _disconnect(self, rows: np.ndarray) -> None:
        at = self.when.disconnect_at[rows]
        keep = at < self.horizon_at
        rows, at = rows[keep], at[keep]
        unpaid = self._advance(rows, at)
        rows, at = rows[unpaid], at[unpaid]
        customer = self.bills.customer[rows]
        cut = (self.cust.churned_at[customer] > at) & (
            self.rng.random(rows.size) < self.p.payment.non_payment_disconnect_share
        )
        self.cust.churned_at[customer[cut]] = at[cut]
        self.cust.churn_reason[customer[cut]] = CHURN_REASONS.index("non_payment")

    def _debit(self, rows: np.ndarray) -> None:
        rows = rows[self.people.autopay[self.bills.customer[rows]]]
        at = self.when.debit_at[rows]
        keep = at < self.horizon_at
        rows, at = rows[keep], at[keep]
        unpaid = self._advance(rows, at)
        rows, at = rows[unpaid], at[unpaid]
        inv = self.inv
        disputed = (inv.dispute_start[rows] <= at) & (at < inv.dispute_end[rows])
        fails = behaviour.autopay_failure_probability(self.bills.capacity[rows], self.p.payment)
        success = ~disputed & (self.rng.random(rows.size) >= fails)
        inv.paid_at[rows[success]] = at[success]
        inv.paid_by_debit[rows[success]] = True

    def _decide(self, rows: np.ndarray, stage: int, day: int) -> None:
        policy = self.p.logging_policy
        local_hour = self.rng.uniform(*policy.send_hours, rows.size)
        at = self.when.stage_at[rows, stage] + (local_hour - policy.decision_local_hour) / 24.0
        keep = at < self.horizon_at
        local_hour = local_hour[keep]
        rows, at = rows[keep], at[keep]
        unpaid = self._advance(rows, at)
        rows, at, local_hour = rows[unpaid], at[unpaid], local_hour[unpaid]
        inv = self.inv
        in_dispute = (inv.dispute_start[rows] <= at) & (at < inv.dispute_end[rows])
        waiting = (inv.promise_until[rows] > at) | (inv.active_from[rows] > at)
        ready = ~in_dispute & ~waiting
        rows, at, local_hour = rows[ready], at[ready], local_hour[ready]
        if rows.size == 0:
            return
        customer = self.bills.customer[rows]
        cust = self.cust
        allowed = self.people.consent[customer] & (cust.opted_out_at[customer] > at[:, None])
        if self.p.logging_policy.stage_offsets_days[stage] <= 0:
            allowed[:, LETTER] = False
        _, first_of_customer = np.unique(customer, return_index=True)
        once = np.zeros(rows.size, dtype=bool)
        once[first_of_customer] = True
        allowed &= (once & (cust.last_contact_day[customer] != day))[:, None]
        hardship = cust.hardship_until[customer] > at
        choice = choose(allowed, hardship, stage, self.p.logging_policy, self.rng)
        send_reminders(self, rows, at, local_hour, stage, day, choice)


def finish(engine: Engine) -> None:
    """Run every open payment clock to the horizon and draw the last churn period."""
    rows = np.flatnonzero(engine.inv.issued)
    engine._advance(rows, np.full(rows.size, engine.horizon_at))
    alive = np.flatnonzero(engine.cust.churned_at > engine.horizon_at)
    engine._check_churn(alive, np.full(alive.size, engine.horizon_at))
