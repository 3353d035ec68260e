"""Classify inbound SMS and e-mail replies: keyword rules first, the trained model for the rest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from dispatcher.replies.dates import local_today, promised_date
from dispatcher.replies.model import ReplyModel, shipped_model
from dispatcher.replies.rules import NEGATED_PAYMENT, match_rules
from dispatcher.replies.text import normalise

MODEL = "model"
"""``matched_rule`` of a reply decided by the text classifier."""
NEGATED_PAYMENT_RULE = "negated_payment"
"""``matched_rule`` of a reply the model read as 'paid' that says it was *not* paid."""
LOW_CONFIDENCE = "low_confidence"
"""``matched_rule`` of a reply the classifier was unsure about, classified as ``other``."""
DEFAULT_MIN_CONFIDENCE = 0.45
"""The default of ``dispatcher.reply_min_confidence`` (paynudge.config.DispatcherSettings)."""


@dataclass(frozen=True)
class ReplyClassification:
    """What a reply means: intent, how sure, the promised date of a promise, what decided it."""

    intent: str
    confidence: float
    promised_date: date | None
    matched_rule: str


def classify_replies(
    texts: Sequence[str],
    received_at: Sequence[datetime],
    timezones: Sequence[str],
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    model: ReplyModel | None = None,
) -> list[ReplyClassification]:
    """Classify a batch of replies (the model scores all rule-less replies in one call).

    ``received_at`` are aware instants and ``timezones`` the customers' IANA zones; they date
    promises ("friday" is the customer's next Friday).
    """
    if not len(texts) == len(received_at) == len(timezones):
        raise ValueError(
            f"classify_replies: expected as many instants and time zones as texts, found "
            f"{len(texts)} texts, {len(received_at)} instants, {len(timezones)} time zones"
        )
    for moment, zone in zip(received_at, timezones, strict=True):
        local_today(moment, zone)  # bad instants and zones fail before any work
    decided = [match_rules(normalise(text)) for text in texts]
    open_rows = [i for i, match in enumerate(decided) if match is None]
    scorer = model if model is not None else shipped_model()
    probabilities = scorer.predict_proba([texts[i] for i in open_rows])
    best = probabilities.argmax(axis=1) if open_rows else np.zeros(0, dtype=int)
    by_model = {
        row: (scorer.classes_[best[k]], float(probabilities[k, best[k]]))
        for k, row in enumerate(open_rows)
    }
    results: list[ReplyClassification] = []
    for i, match in enumerate(decided):
        if match is not None:
            intent, confidence, rule = match.intent, 1.0, match.rule
        else:
            intent, confidence = by_model[i]
            rule = MODEL
            if confidence < min_confidence:
                intent, rule = "other", LOW_CONFIDENCE
            elif intent == "paid_already" and NEGATED_PAYMENT.search(normalise(texts[i])):
                # character n-grams do not see negation; 'not paid' must never stop reminders
                intent, rule = "other", NEGATED_PAYMENT_RULE
        when = (
            promised_date(texts[i], received_at[i], timezones[i])
            if intent == "promise_to_pay"
            else None
        )
        results.append(ReplyClassification(intent, confidence, when, rule))
    return results


def classify_reply(
    text: str,
    received_at: datetime,
    timezone: str,
    *,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    model: ReplyModel | None = None,
) -> ReplyClassification:
    """Classify one reply received at ``received_at`` from a customer in ``timezone``."""
    (result,) = classify_replies(
        [text], [received_at], [timezone], min_confidence=min_confidence, model=model
    )
    return result


def keyword_intents(texts: Sequence[str]) -> list[str]:
    """The rules' intent of each text, ``other`` where they do not decide (for comparison)."""
    return [
        match.intent if (match := match_rules(normalise(text))) is not None else "other"
        for text in texts
    ]
