"""When things happen to each invoice, in UTC days, fixed at the start of the simulation.

Local rules (issue in the morning, debit at 06:00, decide at 07:00, the due moment at the end
of the due date) are converted once per invoice with :mod:`simulation.clock`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from simulation.billing import Invoices
from simulation.clock import local_to_utc_days
from simulation.parameters import LoggingPolicyParameters, PaymentParameters
from simulation.population import Population

ISSUE_LOCAL_HOUR = 6.0


@dataclass(frozen=True)
class Schedule:
    """Per-invoice event times (UTC days since the epoch) and local-minus-UTC offsets."""

    issue_at: np.ndarray
    due_at: np.ndarray
    debit_at: np.ndarray
    stage_at: np.ndarray
    disconnect_at: np.ndarray
    stage_local_offset: np.ndarray


def build_schedule(
    population: Population,
    invoices: Invoices,
    payment: PaymentParameters,
    policy: LoggingPolicyParameters,
    epoch: pd.Timestamp,
) -> Schedule:
    """Convert each invoice's local events to UTC."""
    zone = population.zone_index[invoices.customer]
    zones = population.zones

    def at(local_days: np.ndarray) -> np.ndarray:
        return local_to_utc_days(local_days.astype(np.float64), zone, zones, epoch)

    due_day = invoices.due_day.astype(np.float64)
    stage_local = np.column_stack(
        [
            due_day + offset + policy.decision_local_hour / 24.0
            for offset in policy.stage_offsets_days
        ]
    )
    stage_at = np.column_stack([at(stage_local[:, k]) for k in range(stage_local.shape[1])])
    return Schedule(
        issue_at=at(invoices.issue_day + ISSUE_LOCAL_HOUR / 24.0),
        due_at=at(due_day + 1.0),
        debit_at=at(due_day + payment.autopay_debit_local_hour / 24.0),
        stage_at=stage_at,
        disconnect_at=at(due_day + payment.non_payment_disconnect_days),
        stage_local_offset=stage_local - stage_at,
    )
