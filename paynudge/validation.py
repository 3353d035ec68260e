"""Check a data set of CSV or Parquet tables against PayNudge's data contracts.

The same checks serve the simulated data set and a user's own export: find the table files,
check each table against its contract (:mod:`paynudge.table_checks`), then check the tables
against each other (:mod:`paynudge.relations`). Every broken expectation becomes a
:class:`Problem`; bad data never raises, only a missing folder does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyarrow import ArrowException

from paynudge.coercion import numpy_flags
from paynudge.errors import DataError
from paynudge.problems import Problem
from paynudge.relations import relation_problems
from paynudge.schemas import SCHEMAS
from paynudge.table_checks import check_table
from paynudge.vocabulary import RAW_TABLES, REQUIRED_TABLES

__all__ = ["Problem", "ValidationReport", "load_dataset", "read_table", "validate_dataset"]

TABLE_SUFFIXES: tuple[str, ...] = (".parquet", ".csv")
"""File formats a table may come in, in the order they are looked for."""
PROBLEMS_LISTED = 20
"""Problems spelled out in the error of :func:`load_dataset` before "and N more"."""

_READ_ERRORS = (OSError, ValueError, ArrowException)
"""What the CSV and Parquet readers raise on a corrupt or unreadable file."""


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of checking one data set: its problems, table sizes and remarks."""

    directory: Path
    problems: tuple[Problem, ...]
    row_counts: dict[str, int]
    notes: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when every table that is present meets its contract."""
        return not self.problems


def validate_dataset(directory: Path) -> ValidationReport:
    """Check every table in ``directory``; raise :class:`DataError` only if it is no folder."""
    report, _ = _check_dataset(directory)
    return report


def load_dataset(directory: Path) -> dict[str, pd.DataFrame]:
    """The tables of ``directory`` in contract types; :class:`DataError` listing why if invalid."""
    report, tables = _check_dataset(directory)
    if not report.ok:
        raise DataError(_problem_summary(report))
    return {name: numpy_flags(table, SCHEMAS[name]) for name, table in tables.items()}


def read_table(directory: Path, name: str) -> pd.DataFrame:
    """Table ``name`` as stored (CSV cells as text), rows numbered from 0 in file order."""
    if name not in RAW_TABLES:
        raise DataError(f"unknown table {name!r}; expected one of {', '.join(RAW_TABLES)}")
    _require_folder(directory)
    files = _table_files(directory, name)
    if len(files) != 1:
        found = " and ".join(path.name for path in files) or "neither"
        raise DataError(
            f"expected one of {name}.parquet or {name}.csv in {directory}, found {found}"
        )
    return _read(files[0])


def _check_dataset(directory: Path) -> tuple[ValidationReport, dict[str, pd.DataFrame]]:
    """The report on ``directory`` and its coerced tables (trustworthy only if the report is ok)."""
    files, problems, notes = _locate_tables(directory)
    tables: dict[str, pd.DataFrame] = {}
    row_counts: dict[str, int] = {}
    for name, path in files.items():
        try:
            raw = _read(path)
        except DataError as error:
            problems.append(_unreadable(name, path, error))
            continue
        row_counts[name] = len(raw)
        tables[name], table_problems = check_table(name, raw)
        problems += table_problems
    problems += relation_problems(tables)
    report = ValidationReport(directory, tuple(problems), row_counts, tuple(notes))
    return report, tables


def _require_folder(directory: Path) -> None:
    if not directory.exists():
        raise DataError(f"data set folder {directory} does not exist")
    if not directory.is_dir():
        raise DataError(f"data set path {directory} is not a folder")


def _table_files(directory: Path, name: str) -> list[Path]:
    candidates = (directory / f"{name}{suffix}" for suffix in TABLE_SUFFIXES)
    # A Parquet table may be a folder of parts (as Spark writes it); a CSV table is one file.
    return [path for path in candidates if path.is_file() or _is_parquet_folder(path)]


def _is_parquet_folder(path: Path) -> bool:
    return path.suffix == ".parquet" and path.is_dir()


def _locate_tables(directory: Path) -> tuple[dict[str, Path], list[Problem], list[str]]:
    """One file per table present, the problems of absent or doubled tables, and notes."""
    _require_folder(directory)
    files: dict[str, Path] = {}
    problems: list[Problem] = []
    absent: list[str] = []
    for name in RAW_TABLES:
        found = _table_files(directory, name)
        if len(found) == 1:
            files[name] = found[0]
        elif found:
            names = " and ".join(path.name for path in found)
            problems.append(Problem(name, None, "one file per table", f"both {names}"))
        elif name in REQUIRED_TABLES:
            expected = f"a {name}.parquet or {name}.csv file (a required table)"
            problems.append(Problem(name, None, expected, "missing table"))
        else:
            absent.append(name)
    notes = [f"optional tables absent, checks that need them skipped: {', '.join(absent)}"]
    return files, problems, (notes if absent else []) + _stranger_note(directory)


def _stranger_note(directory: Path) -> list[str]:
    """A note naming top-level files that look like tables but are none of ours."""
    known = {f"{name}{suffix}" for name in RAW_TABLES for suffix in TABLE_SUFFIXES}
    strangers = sorted(
        path.name
        for path in directory.iterdir()
        if path.suffix.lower() in TABLE_SUFFIXES and path.name not in known
    )
    if not strangers:
        return []
    return [f"ignored files that are not PayNudge tables: {', '.join(strangers)}"]


def _read(path: Path) -> pd.DataFrame:
    """The raw table in ``path``; CSV cells stay text and only empty cells are missing."""
    try:
        if path.suffix == ".csv":
            frame = pd.read_csv(
                path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
            )
        else:
            frame = pd.read_parquet(path)
    except _READ_ERRORS as error:
        raise DataError(f"cannot read {path}: {_first_line(error)}") from error
    frame.columns = frame.columns.astype(str)
    if frame.index.equals(pd.RangeIndex(len(frame))):
        return frame
    # An index stored by the writer holds data (when named) but not the row order.
    return frame.reset_index(drop=all(level is None for level in frame.index.names))


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _unreadable(name: str, path: Path, error: DataError) -> Problem:
    file_format = "CSV" if path.suffix == ".csv" else "Parquet"
    reason = _first_line(error.__cause__ or error)
    return Problem(name, None, f"a readable {file_format} file", f"{path.name}: {reason}")


def _problem_summary(report: ValidationReport) -> str:
    """The first problems of ``report`` line by line, with how many more there are."""
    shown = report.problems[:PROBLEMS_LISTED]
    lines = [f"{report.directory} breaks the data contract ({len(report.problems):,} problems):"]
    lines += [f"  {problem}" for problem in shown]
    more = len(report.problems) - len(shown)
    if more:
        lines.append(f"  ... and {more:,} more")
    return "\n".join(lines)
