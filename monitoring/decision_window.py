"""The current data of a drift report: the decisions logged in a window, with their outcomes.

Every decision in the service's log (:mod:`serving.decision_log`) holds its feature row (JSON),
the late-payment probability it was given, the request (due date, time zone) and the model
versions. Feature rows are parsed in DuckDB (``json_transform`` with the catalogue's types):
vectorised, a million rows in seconds. A row is a JSON array of the values of its layout's
columns, or, in logs written before layouts, a JSON object by feature name. A decision's label
(``late``) is known once feedback reported the payment, or reported no payment after the due
date's end plus the grace days.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from features.catalog import ALL_FEATURES, Feature
from paynudge.errors import DataError
from serving.decision_log import read_frame, read_layouts

DUCKDB_TYPES = {"int": "BIGINT", "float": "DOUBLE", "category": "VARCHAR", "bool": "BOOLEAN"}
ZONE_MARGIN = pd.Timedelta(days=1)
"""Stored decision times carry the caller's UTC offset (at most 14 h): a day's margin is safe."""


@dataclass(frozen=True)
class DecisionWindow:
    """Decisions logged in ``[since, until)``: features, scores, labels and model versions."""

    features: pd.DataFrame
    probability: np.ndarray
    """The late-payment probability each decision was given."""
    label: np.ndarray
    """1.0 late, 0.0 on time, NaN not known yet."""
    decided_at: pd.Series
    model_versions: tuple[str, ...]
    """Distinct late-payment model versions that made these decisions."""
    since: pd.Timestamp
    until: pd.Timestamp | None
    total_rows: int = 0
    """Decisions in the window before sampling (0: not counted, i.e. all were read)."""

    def __len__(self) -> int:
        return len(self.features)

    @property
    def labelled(self) -> np.ndarray:
        """Mask of the decisions whose label is known."""
        return ~np.isnan(self.label)


def feature_struct(features: tuple[Feature, ...] = ALL_FEATURES) -> str:
    """The DuckDB struct type of a logged feature row."""
    fields = ", ".join(f'"{f.name}": "{DUCKDB_TYPES[f.kind]}"' for f in features)
    return "{" + fields + "}"


def parse_json_rows(rows: pd.Series, struct: str, what: str) -> pd.DataFrame:
    """JSON objects as a frame with the columns and DuckDB types of ``struct``."""
    return _query_rows(rows, f"SELECT unnest(json_transform(row, '{struct}')) FROM raw", what)


def _query_rows(rows: pd.Series, query: str, what: str) -> pd.DataFrame:
    """``query`` over the table ``raw`` of the JSON texts ``rows`` (column ``row``), indexed as
    ``rows``; DuckDB's errors as a :class:`DataError` naming ``what`` the rows are."""
    connection = duckdb.connect()
    connection.register("raw", pa.table({"row": pa.array(rows.to_numpy(), type=pa.string())}))
    try:
        return connection.sql(query).df().set_index(rows.index)
    except duckdb.Error as error:
        raise DataError(f"decision log: a {what} is not valid JSON ({error})") from None
    finally:
        connection.close()


def parse_feature_rows(
    rows: pd.Series,
    layout: pd.Series | None = None,
    layouts: Mapping[int, Sequence[str]] | None = None,
    features: tuple[Feature, ...] = ALL_FEATURES,
) -> pd.DataFrame:
    """JSON feature rows as a typed frame of ``features`` (missing columns and nulls become
    missing values). ``layout`` gives each row's layout id among ``layouts`` (id -> column
    names): such a row is a JSON array of those columns' values; a row without one is a JSON
    object by name."""
    layout = pd.Series(np.nan, index=rows.index) if layout is None else layout
    known = layout.notna().to_numpy()
    frames = []
    for layout_id in pd.unique(layout[known]):
        columns = (layouts or {}).get(int(layout_id))
        if columns is None:
            raise DataError(
                f"decision log: feature layout {int(layout_id)} is not in feature_layouts"
            )
        frames.append(_parse_arrays(rows[(layout == layout_id).to_numpy()], columns, features))
    if not known.all() or not frames:  # rows of logs before layouts (or no rows at all)
        frames.append(_parse_objects(rows[~known], features))
    frame = frames[0] if len(frames) == 1 else pd.concat(frames).reindex(rows.index)
    for feature in features:
        if feature.kind == "bool":
            frame[feature.name] = frame[feature.name].astype("boolean")
    return frame


def _parse_objects(rows: pd.Series, features: tuple[Feature, ...]) -> pd.DataFrame:
    return parse_json_rows(rows, feature_struct(features), "feature row")


def _parse_arrays(
    rows: pd.Series, columns: Sequence[str], features: tuple[Feature, ...]
) -> pd.DataFrame:
    """JSON arrays of the values of ``columns`` as typed ``features`` (read once as numbers
    and once as text: each column takes the reading its catalogue kind needs)."""
    position = {name: i + 1 for i, name in enumerate(columns)}
    selected = []
    for feature in features:
        i = position.get(feature.name)
        kind = DUCKDB_TYPES[feature.kind]
        value = {
            None: f"CAST(NULL AS {kind})",
            "float": f"n[{i}]",
            "int": f"CAST(n[{i}] AS BIGINT)",
            "bool": f"n[{i}] = 1",
            "category": f"s[{i}]",
        }[feature.kind if i is not None else None]
        selected.append(f'{value} AS "{feature.name}"')
    numbers, texts = "json_transform(row, '[\"DOUBLE\"]')", "json_transform(row, '[\"VARCHAR\"]')"
    query = f"SELECT {', '.join(selected)} FROM (SELECT {numbers} AS n, {texts} AS s FROM raw)"
    return _query_rows(rows, query, "feature row")


def _read(path: Path, query: str, params: tuple[object, ...]) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: no decision log; the decision service writes one as it decides")
    with sqlite3.connect(path) as connection:
        return read_frame(connection, query, params)


def _utc(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values, utc=True, format="ISO8601")


def late_line(requests: pd.DataFrame, grace_days: float) -> pd.Series:
    """End of each request's due date (local midnight after it) plus the grace, in UTC."""
    due_end = pd.Series(pd.NaT, index=requests.index, dtype="datetime64[ns, UTC]")
    next_day = pd.to_datetime(requests["due_date"]) + pd.Timedelta(days=1)
    for zone, rows in requests.groupby("timezone").groups.items():
        local = next_day.loc[rows].dt.tz_localize(str(zone), ambiguous="NaT", nonexistent="NaT")
        due_end.loc[rows] = local.dt.tz_convert("UTC")
    return due_end + pd.Timedelta(days=grace_days)


def outcome_labels(path: Path, decisions: pd.DataFrame, grace_days: float) -> np.ndarray:
    """1 late / 0 on time / NaN unknown, from the latest feedback report of each decision."""
    feedback = _read(path, "SELECT decision_id, received_at, report FROM feedback", ())
    label = np.full(len(decisions), np.nan)
    if feedback.empty:
        return label
    feedback = feedback.sort_values("received_at").drop_duplicates("decision_id", keep="last")
    reports = parse_json_rows(feedback["report"], '{"paid_at": "VARCHAR"}', "feedback report")
    outcomes = pd.DataFrame(
        {
            "paid_at": _utc(reports["paid_at"]).to_numpy(),
            "received_at": _utc(feedback["received_at"]).to_numpy(),
        },
        index=feedback["decision_id"].to_numpy(),
    )
    requests = parse_json_rows(
        decisions["request"], '{"due_date": "VARCHAR", "timezone": "VARCHAR"}', "request"
    )
    line = late_line(requests, grace_days).to_numpy()
    joined = outcomes.reindex(decisions["decision_id"].to_numpy())
    paid, received = joined["paid_at"].to_numpy(), joined["received_at"].to_numpy()
    known_paid = ~pd.isna(paid)
    known_unpaid = ~known_paid & ~pd.isna(received) & (received >= line)
    label[known_paid] = (paid[known_paid] > line[known_paid]).astype(float)
    label[known_unpaid] = 1.0
    return label


def window_rowids(
    path: Path, since: pd.Timestamp, until: pd.Timestamp | None
) -> tuple[np.ndarray, pd.Timestamp, pd.Timestamp | None]:
    """Row ids of the decisions decided in ``[since, until)`` (times in UTC)."""
    since = since.tz_convert("UTC") if since.tzinfo else since.tz_localize("UTC")
    bound = (since - ZONE_MARGIN).isoformat()[:10]
    times = _read(
        path, "SELECT rowid AS id, decided_at FROM decisions WHERE decided_at >= ?", (bound,)
    )
    decided_at = _utc(times["decided_at"])
    keep = decided_at >= since
    if until is not None:
        until = until.tz_convert("UTC") if until.tzinfo else until.tz_localize("UTC")
        keep &= decided_at < until
    return times["id"].to_numpy()[keep.to_numpy()], since, until


def read_rows(path: Path, rowids: np.ndarray) -> pd.DataFrame:
    """The decisions with these row ids (through a temporary table: any number of them)."""
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TEMP TABLE wanted (id INTEGER PRIMARY KEY)")
        connection.executemany("INSERT INTO wanted VALUES (?)", ((int(i),) for i in rowids))
        return read_frame(
            connection,
            "SELECT decision_id, decided_at, late_payment_probability, model_versions, request, "
            "features, feature_layout FROM decisions JOIN wanted ON decisions.rowid = wanted.id "
            "ORDER BY decisions.rowid",
        )


def _layouts(path: Path) -> dict[int, tuple[str, ...]]:
    with sqlite3.connect(path) as connection:
        return read_layouts(connection)


def read_window(
    path: Path,
    since: pd.Timestamp,
    until: pd.Timestamp | None = None,
    *,
    grace_days: float = 0.0,
    model: str = "late_payment",
    max_rows: int | None = None,
    seed: int = 0,
) -> DecisionWindow:
    """The decisions logged at ``path`` that were decided in ``[since, until)``, with labels.

    With more than ``max_rows`` decisions in the window, a uniform sample of ``max_rows`` is
    read (the feature rows of a million decisions are gigabytes of JSON); ``total_rows`` tells
    how many there were.
    """
    rowids, since, until = window_rowids(path, since, until)
    total = len(rowids)
    if max_rows is not None and total > max_rows:
        rng = np.random.default_rng(seed)
        rowids = np.sort(rng.choice(rowids, size=max_rows, replace=False))
    decisions = read_rows(path, rowids)
    versions = {json.loads(text).get(model) for text in decisions["model_versions"].unique()}
    return DecisionWindow(
        features=parse_feature_rows(
            decisions["features"], decisions["feature_layout"], _layouts(path)
        ),
        probability=decisions["late_payment_probability"].to_numpy(dtype=float),
        label=outcome_labels(path, decisions, grace_days),
        decided_at=_utc(decisions["decided_at"]),
        model_versions=tuple(sorted(str(v) for v in versions if v is not None)),
        since=since,
        until=until,
        total_rows=total,
    )
