"""Mutable per-invoice and per-customer state of a running simulation, and event records."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from paynudge.vocabulary import CHANNELS, RESPONSE_TYPES
from simulation.hazard import HazardProfile

LIFT_SLOTS = 2


@dataclass
class InvoiceState:
    """What the engine knows about every potential invoice while it runs."""

    issued: np.ndarray
    clock: np.ndarray
    integrated_to: np.ndarray
    paid_at: np.ndarray
    paid_by_debit: np.ndarray
    offer_paid: np.ndarray
    active_from: np.ndarray
    lift_reminder: np.ndarray
    lift_offer: np.ndarray
    lift_offer_code: np.ndarray
    lift_start: np.ndarray
    lift_end: np.ndarray
    dispute_start: np.ndarray
    dispute_end: np.ndarray
    promise_until: np.ndarray
    attempts: np.ndarray

    @classmethod
    def empty(cls, n: int) -> InvoiceState:
        inf = np.full(n, np.inf)
        slots = np.zeros((n, LIFT_SLOTS))
        return cls(
            issued=np.zeros(n, dtype=bool),
            clock=np.zeros(n),
            integrated_to=np.zeros(n),
            paid_at=inf.copy(),
            paid_by_debit=np.zeros(n, dtype=bool),
            offer_paid=np.full(n, -1, dtype=np.int64),
            active_from=np.zeros(n),
            lift_reminder=slots.copy(),
            lift_offer=slots.copy(),
            lift_offer_code=np.zeros((n, LIFT_SLOTS), dtype=np.int64),
            lift_start=np.full((n, LIFT_SLOTS), np.inf),
            lift_end=np.full((n, LIFT_SLOTS), np.inf),
            dispute_start=inf.copy(),
            dispute_end=inf.copy(),
            promise_until=np.full(n, -np.inf),
            attempts=np.zeros(n, dtype=np.int64),
        )

    def profile(
        self, rows: np.ndarray, due_at: np.ndarray, edges: np.ndarray, base_log_rates: np.ndarray
    ) -> HazardProfile:
        """The hazard profile of invoices ``rows`` as things stand."""
        return HazardProfile(
            due_at=due_at,
            segment_edges=edges,
            base_log_rates=base_log_rates,
            active_from=self.active_from[rows],
            lift_rate=self.lift_reminder[rows] + self.lift_offer[rows],
            lift_start=self.lift_start[rows],
            lift_end=self.lift_end[rows],
            pause_start=self.dispute_start[rows],
            pause_end=self.dispute_end[rows],
        )


@dataclass
class CustomerState:
    """Per-customer state: churn, opt-outs, hardship and contact bookkeeping."""

    churned_at: np.ndarray
    churn_reason: np.ndarray
    churn_checked_at: np.ndarray
    annoyance: np.ndarray
    last_bill_ratio: np.ndarray
    opted_out_at: np.ndarray
    hardship_until: np.ndarray
    last_contact_day: np.ndarray

    @classmethod
    def empty(cls, n: int, signup_at: np.ndarray) -> CustomerState:
        return cls(
            churned_at=np.full(n, np.inf),
            churn_reason=np.full(n, -1, dtype=np.int64),
            churn_checked_at=np.maximum(signup_at, 0.0),
            annoyance=np.zeros(n),
            last_bill_ratio=np.ones(n),
            opted_out_at=np.full((n, len(CHANNELS)), np.inf),
            hardship_until=np.full(n, -np.inf),
            last_contact_day=np.full(n, -(10**9), dtype=np.int64),
        )


@dataclass
class EventLog:
    """Columns of logged decisions and customer responses, collected in chunks."""

    decisions: list[dict[str, np.ndarray]] = field(default_factory=list)
    responses: list[dict[str, np.ndarray]] = field(default_factory=list)
    decision_count: int = 0

    def add_decisions(self, chunk: dict[str, np.ndarray]) -> np.ndarray:
        """Append a chunk; return the running message numbers given to its rows."""
        n = len(chunk["invoice"])
        numbers = np.arange(self.decision_count, self.decision_count + n)
        self.decision_count += n
        self.decisions.append({**chunk, "number": numbers})
        return numbers

    def add_responses(
        self,
        kind: str,
        customer: np.ndarray,
        invoice: np.ndarray,
        message: np.ndarray,
        at: np.ndarray,
        channel: np.ndarray | None = None,
        promised_day: np.ndarray | None = None,
    ) -> None:
        n = len(customer)
        if n == 0:
            return
        self.responses.append(
            {
                "type": np.full(n, RESPONSE_TYPES.index(kind)),
                "customer": customer,
                "invoice": invoice,
                "message": message,
                "at": at,
                "channel": channel if channel is not None else np.full(n, -1),
                "promised_day": promised_day if promised_day is not None else np.full(n, -1),
            }
        )

    def columns(self, which: str) -> dict[str, np.ndarray]:
        chunks = self.decisions if which == "decisions" else self.responses
        if not chunks:
            return {}
        return {key: np.concatenate([c[key] for c in chunks]) for key in chunks[0]}
