"""The small text classifier for replies the keyword rules leave open.

Character n-gram TF-IDF (within word boundaries, so typos, Dutch compounds and emojis still
share most n-grams) feeding a multinomial logistic regression. It is trained from the labelled
file shipped in this package on first use, in well under a second, and deterministically
(lbfgs has no randomness), on one BLAS thread: no model file to download, version or unpickle.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from threadpoolctl import threadpool_limits

from dispatcher.replies.text import normalise
from paynudge.errors import DataError

INTENTS: tuple[str, ...] = (
    "opt_out",
    "paid_already",
    "promise_to_pay",
    "dispute",
    "hardship",
    "other",
)
TRAINING_FILE = "training_replies.tsv"


def read_labelled(path_or_text: str, source: str) -> tuple[list[str], list[str]]:
    """Texts and intents of a ``intent<TAB>text`` file (header line first); errors name the row."""
    rows = list(csv.reader(path_or_text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows or rows[0] != ["intent", "text"]:
        raise DataError(f"{source}: expected a header line 'intent<TAB>text'")
    texts: list[str] = []
    intents: list[str] = []
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 2 or row[0] not in INTENTS or not row[1].strip():
            raise DataError(
                f"{source}, line {number}: expected '<intent>\\t<text>' with an intent among "
                f"{', '.join(INTENTS)}, found {row!r}"
            )
        intents.append(row[0])
        texts.append(row[1])
    return texts, intents


def training_replies() -> tuple[list[str], list[str]]:
    """The labelled training replies shipped with the package."""
    text = resources.files("dispatcher.replies").joinpath(TRAINING_FILE).read_text("utf-8")
    return read_labelled(text, TRAINING_FILE)


class ReplyModel:
    """Intent probabilities of reply texts (scikit-learn style: parameters in ``__init__``)."""

    def __init__(self, ngram_range: tuple[int, int] = (1, 5), regularisation: float = 20.0) -> None:
        self.ngram_range = ngram_range
        self.regularisation = regularisation

    def fit(self, texts: Sequence[str], intents: Sequence[str]) -> ReplyModel:
        """Learn from labelled texts; every intent must appear at least once."""
        missing = sorted(set(INTENTS) - set(intents))
        if missing:
            raise DataError(f"reply training data: no example of {', '.join(missing)}")
        pipeline: Pipeline = make_pipeline(
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True, min_df=1
            ),
            LogisticRegression(C=self.regularisation, max_iter=5000, class_weight="balanced"),
        )
        with threadpool_limits(1):  # tiny problem: extra BLAS threads only spin on a busy machine
            pipeline.fit([normalise(t) for t in texts], list(intents))
        self.pipeline_ = pipeline
        self.classes_: tuple[str, ...] = tuple(str(c) for c in pipeline.classes_)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, one column per intent of ``classes_``."""
        if not hasattr(self, "pipeline_"):
            raise RuntimeError("ReplyModel is not fitted; call fit first")
        if not texts:
            return np.zeros((0, len(self.classes_)))
        with threadpool_limits(1):
            return self.pipeline_.predict_proba([normalise(t) for t in texts])


@lru_cache(maxsize=1)
def shipped_model() -> ReplyModel:
    """The model trained on the shipped replies, once per process."""
    return ReplyModel().fit(*training_replies())
