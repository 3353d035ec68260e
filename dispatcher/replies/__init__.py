"""Inbound replies: opt-out, paid already, promise to pay (with its date), dispute, hardship, other.

Keyword rules decide the unambiguous replies; a small character n-gram classifier trained on the
shipped labelled replies decides the rest.
"""

from dispatcher.replies.classify import (
    ReplyClassification,
    classify_replies,
    classify_reply,
    keyword_intents,
)
from dispatcher.replies.dates import promised_date
from dispatcher.replies.model import INTENTS, ReplyModel

__all__ = [
    "INTENTS",
    "ReplyClassification",
    "ReplyModel",
    "classify_replies",
    "classify_reply",
    "keyword_intents",
    "promised_date",
]
