"""Reply classifier on the shipped evaluation set: accuracy, per-class precision and recall, the
confusion matrix, and the keyword rules alone for comparison.

    .venv/bin/python benchmarks/bench_replies.py
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from dispatcher.replies import INTENTS, classify_replies, keyword_intents
from dispatcher.replies.model import read_labelled, shipped_model, training_replies

EVALUATION_FILE = Path(__file__).parents[1] / "tests" / "dispatcher" / "reply_evaluation.tsv"
RECEIVED_AT = datetime(2025, 3, 5, 10, tzinfo=UTC)


def main() -> None:
    texts, truth = read_labelled(EVALUATION_FILE.read_text("utf-8"), EVALUATION_FILE.name)
    started = time.perf_counter()
    shipped_model()
    trained = time.perf_counter()
    results = classify_replies(texts, [RECEIVED_AT] * len(texts), ["Europe/Amsterdam"] * len(texts))
    classified = time.perf_counter()
    predicted = [result.intent for result in results]
    keywords = keyword_intents(texts)

    print(f"training replies: {len(training_replies()[0])}, evaluation replies: {len(texts)}")
    print(f"training: {trained - started:.2f} s; classifying: "
          f"{(classified - trained) / len(texts) * 1000:.2f} ms per reply")  # fmt: skip
    by_model = ("model", "low_confidence", "negated_payment")
    decided_by_rules = sum(result.matched_rule not in by_model for result in results)
    print(f"decided by keyword rules: {decided_by_rules}/{len(texts)}")
    print(f"accuracy (rules + model): {accuracy_score(truth, predicted):.3f}")
    print(f"accuracy (keyword rules alone, 'other' when none fires): "
          f"{accuracy_score(truth, keywords):.3f}")  # fmt: skip

    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=list(INTENTS), zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=list(INTENTS),
    )
    print("\nper class (rules + model):")
    print(per_class.round(3).to_string())
    matrix = pd.DataFrame(
        confusion_matrix(truth, predicted, labels=list(INTENTS)),
        index=[f"true {i}" for i in INTENTS],
        columns=list(INTENTS),
    )
    print("\nconfusion matrix (rows: truth, columns: predicted):")
    print(matrix.to_string())


if __name__ == "__main__":
    main()
