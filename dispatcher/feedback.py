"""Posting outcomes to the decision service's ``/feedback``, from the outbox of outcomes.

Each decision with an outcome not posted yet is reported whole: every outcome known for it so
far in one :class:`serving.schemas.Feedback` (the service keeps the latest report of a decision
as its outcome, and ignores a report identical to one it has). Rows are marked posted only
after the service accepted the batch; when it cannot be reached they stay, with the error and
the attempt counted, and the next pass sends them again: no outcome is lost, none is counted
twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from dispatcher.state import Outcome
from serving.client import DecisionClient, ServiceError
from serving.schemas import Feedback

FLAG_KINDS: tuple[str, ...] = ("delivered", "opened", "clicked", "opted_out", "churned")


@dataclass
class FeedbackReport:
    decisions: int = 0
    accepted: int = 0
    duplicates: int = 0
    failed: int = 0
    error: str | None = None


def feedback_of(outcomes: pd.DataFrame) -> list[Feedback]:
    """One report per decision from its outcome rows (decision_id, kind, at, value, amount)."""
    reports = []
    for decision_id, rows in outcomes.groupby("decision_id", sort=True):
        by_kind = rows.drop_duplicates("kind").set_index("kind")
        flags = {
            kind: bool(by_kind.at[kind, "value"]) for kind in FLAG_KINDS if kind in by_kind.index
        }
        paid = {}
        if "paid" in by_kind.index:
            paid = {"paid_at": pd.Timestamp(by_kind.at["paid", "at"]).to_pydatetime(),
                    "paid_amount": float(by_kind.at["paid", "amount"])}  # fmt: skip
        reports.append(Feedback(decision_id=UUID(str(decision_id)), **flags, **paid))
    return reports


def post_feedback(
    sessions: sessionmaker[Session], client: DecisionClient, batch_size: int, now: datetime
) -> FeedbackReport:
    """Post every decision with unposted outcomes, ``batch_size`` decisions per call."""
    report = FeedbackReport()
    while True:
        with sessions() as session:
            pending = list(
                session.scalars(
                    select(Outcome.decision_id)
                    .where(Outcome.posted_at.is_(None))
                    .distinct()
                    .order_by(Outcome.decision_id)
                    .limit(batch_size)
                )
            )
            if not pending:
                return report
            outcomes = _outcomes(session, pending)
        try:
            answer = client.feedback(feedback_of(outcomes))
        except ServiceError as error:
            with sessions.begin() as session:
                _mark_failed(session, pending, str(error))
            report.failed += 1
            report.error = str(error)
            return report
        with sessions.begin() as session:
            session.execute(
                update(Outcome)
                .where(Outcome.decision_id.in_(pending), Outcome.posted_at.is_(None),
                       Outcome.outcome_id.in_(outcomes["outcome_id"].tolist()))
                .values(posted_at=now)
            )  # fmt: skip
        report.decisions += len(pending)
        report.accepted += answer.accepted
        report.duplicates += answer.duplicates


def _outcomes(session: Session, decisions: list[str]) -> pd.DataFrame:
    columns = [Outcome.outcome_id, Outcome.decision_id, Outcome.kind, Outcome.at, Outcome.value,
               Outcome.amount]  # fmt: skip
    rows = session.execute(
        select(*columns).where(Outcome.decision_id.in_(decisions)).order_by(Outcome.at)
    ).all()
    return pd.DataFrame(rows, columns=[c.key for c in columns])


def _mark_failed(session: Session, decisions: list[str], error: str) -> None:
    session.execute(
        update(Outcome)
        .where(Outcome.decision_id.in_(decisions), Outcome.posted_at.is_(None))
        .values(attempts=Outcome.attempts + 1, last_error=error[:2000])
    )


def unposted(sessions: sessionmaker[Session]) -> int:
    """Outcomes still waiting for the service."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).where(Outcome.posted_at.is_(None))) or 0)
