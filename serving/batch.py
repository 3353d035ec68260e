"""Batch decisions from a file, through the one decision function (no HTTP).

``paynudge score --input FILE --output FILE`` reads decision requests from CSV, Parquet or JSON
lines (one request per row, columns named as the fields of
:class:`serving.schemas.DecisionRequest`; ``overrides`` as a JSON object in CSV), validates every
row with the same pydantic model as the service, decides with
:func:`serving.decision.decide_batch` in chunks of the service's batch limit, logs every decision
in the decision log like the service does, and writes one decision per request, in order. With
the same inputs and seed, the decisions equal those of ``POST /decide`` (decision ids aside).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from paynudge.errors import DataError
from serving.decision import Components, decide_batch
from serving.decision_log import DecisionLog
from serving.schemas import MAX_BATCH, Decision, DecisionRequest

TABLE_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")
NESTED_COLUMNS = ("explanation", "guardrail_reasons", "model_versions")
"""Decision fields that are lists or objects: JSON text in CSV and Parquet outputs."""
MAX_ERRORS_SHOWN = 5


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did: how many decisions, by action, written where."""

    decisions: int
    actions: dict[str, int]
    output: Path


def _suffix(path: Path, role: str) -> str:
    suffix = path.suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise DataError(f"{path}: the {role} must be one of {', '.join(TABLE_SUFFIXES)}")
    return suffix


def read_table(path: Path) -> pd.DataFrame:
    """The rows of a CSV, Parquet or JSON-lines file (a clear error if it cannot be read)."""
    suffix = _suffix(path, "input")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        if suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_json(path, lines=True, dtype=False, convert_dates=False)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: cannot read it as {suffix[1:]} ({error})") from None


def _cell(value: Any) -> Any:
    """A cell as a plain Python value; None for missing (the field's default then applies)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _row(record: dict[str, Any], path: Path, number: int) -> dict[str, Any]:
    fields = {key: _cell(value) for key, value in record.items()}
    fields = {key: value for key, value in fields.items() if value is not None}
    overrides = fields.get("overrides")
    if isinstance(overrides, str):
        try:
            fields["overrides"] = json.loads(overrides)
        except json.JSONDecodeError:
            raise DataError(
                f"{path}: row {number}, column overrides: expected a JSON object, "
                f"got {overrides[:40]!r}"
            ) from None
    return fields


def parse_requests(frame: pd.DataFrame, path: Path) -> list[DecisionRequest]:
    """Validate every row; one error listing the first problems by row and column."""
    requests: list[DecisionRequest] = []
    problems: list[str] = []
    for number, record in enumerate(frame.to_dict("records"), start=1):
        try:
            requests.append(DecisionRequest.model_validate(_row(record, path, number)))
        except ValidationError as error:
            for problem in error.errors():
                column = ".".join(str(part) for part in problem["loc"]) or "row"
                problems.append(f"row {number}, column {column}: {problem['msg']}")
    if problems:
        shown = "; ".join(problems[:MAX_ERRORS_SHOWN])
        more = len(problems) - MAX_ERRORS_SHOWN
        raise DataError(f"{path}: {shown}" + (f" (and {more} more)" if more > 0 else ""))
    if not requests:
        raise DataError(f"{path}: no requests (an empty table)")
    return requests


def decisions_frame(decisions: Sequence[Decision]) -> pd.DataFrame:
    """One row per decision; lists and objects as JSON text."""
    rows = [decision.model_dump(mode="json") for decision in decisions]
    frame = pd.DataFrame(rows)
    for column in NESTED_COLUMNS:
        frame[column] = [json.dumps(row[column]) for row in rows]
    return frame


def write_decisions(decisions: Sequence[Decision], path: Path) -> None:
    suffix = _suffix(path, "output")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".jsonl", ".json"):
        path.write_text("".join(decision.model_dump_json() + "\n" for decision in decisions))
        return
    frame = decisions_frame(decisions)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def score_file(
    source: Path,
    target: Path,
    components: Components,
    log: DecisionLog | None,
    *,
    explain: bool = False,
    seed: int | None = None,
) -> BatchResult:
    """Decide every request of ``source`` and write the decisions to ``target``."""
    _suffix(target, "output")
    requests = parse_requests(read_table(source), source)
    decisions: list[Decision] = []
    for start in range(0, len(requests), MAX_BATCH):
        chunk = requests[start : start + MAX_BATCH]
        decided = decide_batch(chunk, components, explain=explain, seed=seed)
        if log is not None:
            log.append_decisions(chunk, decided.decisions, decided.features)
        decisions += decided.decisions
    write_decisions(decisions, target)
    actions = pd.Series([decision.action for decision in decisions]).value_counts()
    return BatchResult(len(decisions), {str(k): int(v) for k, v in actions.items()}, target)
