"""Feature rows (arrays per column) hold what the online frame holds, and read back typed."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from paynudge.errors import DataError
from serving.feature_rows import (
    feature_records,
    flags,
    rows_frame,
    rows_of_frame,
    take_rows,
    value_arrays_json,
)
from serving.invoice_features import apply_overrides, override_value


@pytest.fixture
def frame() -> pd.DataFrame:
    """Online dtypes of every kind, each with a missing value."""
    return pd.DataFrame(
        {
            "customer_id": ["c1", "c2", "c3"],
            "invoices_so_far": pd.array([3, None, 0], dtype="Int64"),
            "on_time_rate": [0.5, np.nan, 1.0],
            "autopay": pd.array([True, None, False], dtype="boolean"),
            "plan": pd.array(["basic", None, "premium"], dtype=object),
            "known": np.array([True, False, True]),
        }
    )


def test_rows_of_a_frame_are_floats_objects_and_booleans(frame: pd.DataFrame) -> None:
    rows = rows_of_frame(frame)
    assert rows["invoices_so_far"].dtype == rows["autopay"].dtype == np.float64
    np.testing.assert_array_equal(rows["autopay"], [1.0, np.nan, 0.0])
    assert rows["plan"].tolist() == ["basic", None, "premium"]
    assert rows["known"].dtype == bool
    np.testing.assert_array_equal(flags(rows["autopay"]), [True, False, False])


def test_records_read_back_the_frames_values_with_none_for_missing(frame: pd.DataFrame) -> None:
    records = feature_records(take_rows(rows_of_frame(frame), np.array([1, 0])))
    assert records[0] == {
        "customer_id": "c2",
        "invoices_so_far": None,
        "on_time_rate": None,
        "autopay": None,
        "plan": None,
        "known": False,
    }
    assert records[1]["invoices_so_far"] == 3 and type(records[1]["invoices_so_far"]) is int
    assert records[1]["autopay"] is True and records[1]["plan"] == "basic"
    assert list(rows_frame(rows_of_frame(frame))["customer_id"]) == ["c1", "c2", "c3"]
    assert feature_records({}) == []


def test_value_arrays_hold_each_rows_values_in_column_order(frame: pd.DataFrame) -> None:
    rows = take_rows(rows_of_frame(frame), np.array([1, 0]))
    texts = value_arrays_json(rows)
    assert [json.loads(text) for text in texts] == [
        ["c2", None, None, None, None, False],
        ["c1", 3.0, 0.5, 1.0, "basic", True],
    ]
    assert value_arrays_json({}) == []


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("autopay", "sometimes", r"overrides\.autopay: expected true, false or null"),
        ("autopay", 1, r"overrides\.autopay"),
        ("invoices_so_far", 2.5, r"overrides\.invoices_so_far: expected whole numbers"),
        ("on_time_rate", True, r"overrides\.on_time_rate: expected numbers"),
        ("on_time_rate", "0.5", r"overrides\.on_time_rate"),
    ],
)
def test_overrides_of_the_wrong_kind_are_refused(name: str, value: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        override_value(name, value)


def test_overrides_replace_columns_without_touching_the_cached_arrays(frame) -> None:
    rows = rows_of_frame(frame)
    cached = rows["autopay"]
    apply_overrides(rows, [{"autopay": False}, {}, {"autopay": None, "plan": 7}])
    np.testing.assert_array_equal(rows["autopay"], [0.0, np.nan, np.nan])
    np.testing.assert_array_equal(cached, [1.0, np.nan, 0.0])
    assert rows["plan"].tolist() == ["basic", None, "7"]
    assert override_value("invoices_so_far", 4) == 4.0
