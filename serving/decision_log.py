"""The durable logs of the service: every decision made, and every outcome reported for one.

Both live in one SQLite file (``HOME/serving/decisions.db`` by default), append-only, in WAL
mode so that several workers can write. A decision row holds what off-policy evaluation and drift
monitoring need: the request, its feature row, the scores, the action with its propensity and
the model and policy versions.

A feature row is a JSON array of values (``features``) whose column names are those of its
layout (``feature_layout``, a row of ``feature_layouts``): the ~60 names are stored once, not in
every decision, which made rows a quarter of the size of name-value objects and the log's
writes cheaper. Rows of logs written before layouts (``feature_layout`` null) are JSON objects
by name; :func:`monitoring.decision_window.parse_feature_rows` reads both.

Feedback is idempotent by decision id: a report identical to one already logged for the same
decision is ignored; a changed report (a payment that came later) is appended, and the latest
report of a decision is its outcome.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pandas as pd

from paynudge.config import Settings
from serving.feature_rows import FeatureRows, value_arrays_json
from serving.schemas import Decision, DecisionRequest, Feedback

LOG_FOLDER = "serving"
LOG_FILE = "decisions.db"
BUSY_TIMEOUT_SECONDS = 30.0

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS decisions (
        decision_id TEXT PRIMARY KEY,
        logged_at TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        customer_id TEXT NOT NULL,
        invoice_id TEXT NOT NULL,
        stage TEXT NOT NULL,
        action TEXT NOT NULL,
        propensity REAL NOT NULL,
        send_at TEXT,
        late_payment_probability REAL NOT NULL,
        churn_probability REAL NOT NULL,
        open_probability REAL,
        expected_reward REAL NOT NULL,
        guardrail_reasons TEXT NOT NULL,
        cold_start INTEGER NOT NULL,
        model_versions TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        request TEXT NOT NULL,
        features TEXT NOT NULL,
        feature_layout INTEGER REFERENCES feature_layouts (layout)
    )""",
    """CREATE TABLE IF NOT EXISTS feature_layouts (
        layout INTEGER PRIMARY KEY,
        columns TEXT NOT NULL UNIQUE
    )""",
    """CREATE TABLE IF NOT EXISTS feedback (
        decision_id TEXT NOT NULL,
        report_hash TEXT NOT NULL,
        received_at TEXT NOT NULL,
        report TEXT NOT NULL,
        PRIMARY KEY (decision_id, report_hash)
    )""",
)


def read_frame(
    connection: sqlite3.Connection, query: str, params: Sequence[object] = ()
) -> pd.DataFrame:
    """The rows of ``query`` as a frame. Not ``pandas.read_sql_query``: on a plain sqlite3
    connection pandas re-registers sqlite3's datetime adapter and timestamp converter for the
    whole process, after which Feast's SQLite online store writes timestamps another process
    cannot read."""
    cursor = connection.execute(query, tuple(params))
    columns = [column[0] for column in cursor.description]
    return pd.DataFrame.from_records(cursor.fetchall(), columns=columns)


def layout_id(connection: sqlite3.Connection, names: Sequence[str]) -> int:
    """The id of the feature layout of columns ``names`` in the log open on ``connection``,
    added in the connection's transaction if new."""
    text = orjson.dumps(list(names)).decode()
    connection.execute("INSERT OR IGNORE INTO feature_layouts (columns) VALUES (?)", (text,))
    found = connection.execute("SELECT layout FROM feature_layouts WHERE columns = ?", (text,))
    return int(found.fetchone()[0])


def read_layouts(connection: sqlite3.Connection) -> dict[int, tuple[str, ...]]:
    """Every feature layout of the log open on ``connection``: id -> column names."""
    rows = connection.execute("SELECT layout, columns FROM feature_layouts").fetchall()
    return {int(layout): tuple(orjson.loads(columns)) for layout, columns in rows}


def request_json(request: DecisionRequest) -> str:
    """A request as the log stores it: its fields as JSON (times in RFC 3339, the UTC offset
    ``+00:00`` rather than ``Z``), read back by ``DecisionRequest.model_validate_json``. orjson
    on the validated fields: a third of pydantic's serialiser's time."""
    return orjson.dumps(request.__dict__).decode()


def default_log_path(settings: Settings) -> Path:
    """Where the service logs decisions and feedback for ``settings``."""
    return settings.home / LOG_FOLDER / LOG_FILE


class DecisionLog:
    """Append decisions and feedback to the SQLite log at ``path`` (created on first use).

    One connection per process, kept open and shared by the service's threads under a lock:
    opening and closing a connection per write made SQLite checkpoint and delete the WAL file
    on every close (about 15 ms of file-system work per decision on a busy disk).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0
        self._layouts: dict[tuple[str, ...], int] = {}
        with self._connect() as connection:
            connection.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                connection.execute(statement)
            columns = {row[1] for row in connection.execute("PRAGMA table_info(decisions)")}
            if "feature_layout" not in columns:  # a log written before layouts
                connection.execute("ALTER TABLE decisions ADD COLUMN feature_layout INTEGER")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """The process's connection in one transaction (committed on success). WAL with
        ``synchronous=NORMAL``: a commit survives a crash of the process (what a service
        restart is); only a power loss may drop the last commits (no fsync per decision)."""
        with self._lock:
            if self._connection is None or self._pid != os.getpid():  # not across a fork
                self._connection = sqlite3.connect(
                    self.path, timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False
                )
                self._connection.execute("PRAGMA synchronous=NORMAL")
                self._pid = os.getpid()
            with self._connection:
                yield self._connection

    def close(self) -> None:
        """Close the connection (a later write opens a new one)."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None

    def append_decisions(
        self,
        requests: Sequence[DecisionRequest],
        decisions: Sequence[Decision],
        features: FeatureRows,
    ) -> None:
        """Log each decision with its request and feature row."""
        if not decisions:
            return
        now = datetime.now(UTC).isoformat()
        feature_rows = value_arrays_json(features)
        names = tuple(features)
        shared = {id(d.model_versions): d.model_versions for d in decisions}  # one per batch
        versions = {key: orjson.dumps(value).decode() for key, value in shared.items()}
        rows = [
            (
                str(decision.decision_id), now, request.now.isoformat(), decision.customer_id,
                decision.invoice_id, request.stage, decision.action, decision.propensity,
                decision.send_at.isoformat() if decision.send_at else None,
                decision.late_payment_probability, decision.churn_probability,
                decision.open_probability, decision.expected_reward,
                orjson.dumps(decision.guardrail_reasons).decode(), int(decision.cold_start),
                versions[id(decision.model_versions)], decision.policy_version,
                request_json(request), feature_rows[i],
            )
            for i, (request, decision) in enumerate(zip(requests, decisions, strict=True))
        ]  # fmt: skip
        with self._connect() as connection:
            layout = self._layouts.get(names) or layout_id(connection, names)  # ids start at 1
            connection.executemany(
                f"INSERT INTO decisions VALUES ({', '.join('?' * 19)}, {layout})", rows
            )
        self._layouts[names] = layout  # remembered once committed

    def append_feedback(self, feedback: Sequence[Feedback]) -> tuple[int, int]:
        """Log the reports not logged yet; return (appended, duplicates)."""
        now = datetime.now(UTC).isoformat()
        rows = []
        for report in feedback:
            text = report.model_dump_json(exclude_none=True)
            digest = hashlib.sha256(text.encode()).hexdigest()
            rows.append((str(report.decision_id), digest, now, text))
        with self._connect() as connection:
            before = connection.total_changes
            connection.executemany("INSERT OR IGNORE INTO feedback VALUES (?, ?, ?, ?)", rows)
            appended = connection.total_changes - before
        return appended, len(rows) - appended

    def layouts(self) -> dict[int, tuple[str, ...]]:
        """Every feature layout: id -> column names."""
        with self._connect() as connection:
            return read_layouts(connection)

    def decisions(self) -> pd.DataFrame:
        """Every logged decision (for tests, evaluation and monitoring)."""
        with self._connect() as connection:
            return read_frame(connection, "SELECT * FROM decisions ORDER BY logged_at")

    def feedback(self) -> pd.DataFrame:
        """Every logged report, oldest first."""
        with self._connect() as connection:
            return read_frame(connection, "SELECT * FROM feedback ORDER BY received_at")
