"""Batch decisions from files: formats, validation errors naming row and column, logging."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from paynudge.errors import DataError
from serving.batch import read_table, score_file
from serving.decision import decide
from serving.decision_log import DecisionLog


def _frame(requests: list) -> pd.DataFrame:
    rows = [r.model_dump(mode="json") for r in requests]
    for row in rows:
        row["overrides"] = json.dumps(row["overrides"])
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_every_format_gives_the_decisions_of_decide(
    components: Any, served_world: Any, make_requests: Any, tmp_path: Path, suffix: str
) -> None:
    requests = make_requests(served_world.profiles, 25, seed=31, unknown=2)
    frame = _frame(requests)
    frame.loc[0, "overrides"] = json.dumps({"consent_sms": True})
    requests[0] = requests[0].model_copy(update={"overrides": {"consent_sms": True}})
    source = tmp_path / f"requests{suffix}"
    if suffix == ".csv":
        frame.to_csv(source, index=False)
    elif suffix == ".parquet":
        frame.assign(now=pd.to_datetime(frame["now"])).to_parquet(source)
    else:
        source.write_text("".join(r.model_dump_json() + "\n" for r in requests))
    log = DecisionLog(tmp_path / "log.db")
    result = score_file(source, tmp_path / f"out{suffix}", components, log, seed=3)
    expected = decide(requests, components, seed=3)
    written = read_table(tmp_path / f"out{suffix}")
    assert result.decisions == len(written) == 27
    assert list(written["action"]) == [d.action for d in expected]
    assert list(written["invoice_id"]) == [r.invoice_id for r in requests]
    assert sum(result.actions.values()) == 27
    assert len(log.decisions()) == 27


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "row 2, column timezone: .*IANA"),
        ({"amount": "-3"}, "row 2, column amount"),
        ({"overrides": "{not json"}, "row 2, column overrides: expected a JSON object"),
        ({"stage": None, "customer_id": None}, "row 2, column customer_id: Field required"),
    ],
)
def test_bad_rows_are_refused_naming_row_and_column(
    components: Any, served_world: Any, make_requests: Any, tmp_path: Path,
    change: dict, message: str,
) -> None:  # fmt: skip
    frame = _frame(make_requests(served_world.profiles, 3, seed=32))
    for column, value in change.items():
        frame[column] = frame[column].astype(object)
        frame.loc[1, column] = value
    source = tmp_path / "requests.csv"
    frame.to_csv(source, index=False)
    with pytest.raises(DataError, match=message):
        score_file(source, tmp_path / "out.csv", components, None)
    assert not (tmp_path / "out.csv").exists()


def test_unreadable_missing_and_unknown_files_are_clear_errors(
    components: Any, tmp_path: Path
) -> None:
    with pytest.raises(DataError, match="no such file"):
        score_file(tmp_path / "none.csv", tmp_path / "out.csv", components, None)
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(DataError, match=r"bad\.parquet: cannot read it as parquet"):
        score_file(tmp_path / "bad.parquet", tmp_path / "out.csv", components, None)
    with pytest.raises(DataError, match="output must be one of"):
        score_file(tmp_path / "bad.parquet", tmp_path / "out.xlsx", components, None)
    (tmp_path / "empty.csv").write_text("customer_id,invoice_id\n")
    with pytest.raises(DataError, match="no requests"):
        score_file(tmp_path / "empty.csv", tmp_path / "out.csv", components, None)


def test_showcase_samples_the_last_months_invoices_at_their_due_date(served_world: Any) -> None:
    from serving.showcase import SAMPLE_HOUR_UTC, sample_requests

    tables = served_world.world.tables
    requests = sample_requests(tables, 5, seed=1)
    last = tables["invoices"]["issue_date"].max()
    assert len({r.invoice_id for r in requests}) == 5
    assert all(pd.Timestamp(r.issue_date) == pd.Timestamp(last) for r in requests)
    assert all(r.now.date() == r.due_date and r.now.hour == SAMPLE_HOUR_UTC for r in requests)
    zones = tables["customers"].set_index("customer_id")["timezone"]
    assert all(r.timezone == zones[r.customer_id] for r in requests)
    assert sample_requests(tables, 5, seed=1) == requests


def test_reading_the_log_leaves_sqlite_adapters_alone(
    components: Any, served_world: Any, make_requests: Any, tmp_path: Path
) -> None:
    """pandas.read_sql_query on a sqlite3 connection re-registers the process's datetime
    adapter; after it, Feast's SQLite online store wrote timestamps the service could not read."""
    import sqlite3
    from datetime import datetime

    key = (datetime, sqlite3.PrepareProtocol)
    before = sqlite3.adapters.get(key)
    log = DecisionLog(tmp_path / "log.db")
    requests = make_requests(served_world.profiles, 3, seed=41)
    decided = decide(requests, components, seed=1)
    log.append_decisions(requests, decided, {"x": np.ones(3)})
    assert len(log.decisions()) == 3 and log.feedback().empty
    assert sqlite3.adapters.get(key) is before
