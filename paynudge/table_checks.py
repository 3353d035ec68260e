"""Check one table against its contract: types, then columns, then rules within a row.

The raw table is first coerced to its contract types (:mod:`paynudge.coercion`); cells that do
not parse are reported with their original value. The coerced table then meets its pandera
schema and row rules (:mod:`paynudge.schemas`), which skip the cells already reported so one bad
value gives one problem, not three.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from paynudge.coercion import CoercionFailure, coerce_table
from paynudge.problems import Problem, counted, describe_values
from paynudge.schemas import PERSONAL_COLUMNS, ROW_RULES, SCHEMAS


def check_table(name: str, raw: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Table ``name`` coerced to its contract types, and every problem inside it."""
    table, failures = coerce_table(raw, SCHEMAS[name])
    problems = [_coercion_problem(name, raw, failure) for failure in failures]
    failed_cells = _failed_cells(failures)
    problems += _schema_problems(name, table, failed_cells)
    problems += _row_rule_problems(name, table, failed_cells)
    order = {column: position for position, column in enumerate(SCHEMAS[name].columns)}
    return table, sorted(problems, key=lambda problem: order.get(problem.column, -1))


def _coercion_problem(name: str, raw: pd.DataFrame, failure: CoercionFailure) -> Problem:
    values = raw[failure.column][failure.failed]
    found = describe_values(values, personal=failure.column in PERSONAL_COLUMNS)
    positions = np.flatnonzero(failure.failed)
    return Problem.at_positions(name, failure.column, failure.expected, found, positions)


def _failed_cells(failures: list[CoercionFailure]) -> dict[str, np.ndarray]:
    """Per column, the rows already reported as unparseable (and now empty)."""
    failed: dict[str, np.ndarray] = {}
    for failure in failures:
        previous = failed.get(failure.column, np.zeros_like(failure.failed))
        failed[failure.column] = previous | failure.failed
    return failed


def _schema_problems(
    name: str, table: pd.DataFrame, failed_cells: dict[str, np.ndarray]
) -> list[Problem]:
    """The pandera failure cases of ``table``, one problem per column and check."""
    try:
        SCHEMAS[name].validate(table, lazy=True, inplace=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
    else:
        return []
    layout = cases["check"].isin(["column_in_dataframe", "column_in_schema"])
    problems = [
        _layout_problem(name, check, column)
        for check, column in cases.loc[layout, ["check", "failure_case"]].itertuples(index=False)
    ]
    for (column, check), group in cases[~layout].groupby(["column", "check"], sort=False):
        cells = _unexcused(group, check, failed_cells.get(column))
        if len(cells):
            problems.append(_cell_problem(name, column, check, cells))
    return problems


def _layout_problem(name: str, check: str, column: str) -> Problem:
    if check == "column_in_dataframe":
        return Problem(name, column, f"a column named {column}", "missing column")
    expected = f"one of {', '.join(SCHEMAS[name].columns)}"
    return Problem(name, column, expected, "unexpected column")


def _unexcused(cases: pd.DataFrame, check: str, failed: np.ndarray | None) -> pd.DataFrame:
    """``cases`` minus cells already reported as unparseable and minus duplicate empties."""
    if check == "field_uniqueness":
        cases = cases[cases["failure_case"].notna()]
    if failed is None:
        return cases
    rows = pd.to_numeric(cases["index"], errors="coerce")
    known = rows.notna().to_numpy()
    excused = np.zeros(len(cases), dtype=bool)
    excused[known] = failed[rows[known].astype("int64").to_numpy()]
    return cases[~excused]


def _cell_problem(name: str, column: str, check: str, cases: pd.DataFrame) -> Problem:
    rows = pd.to_numeric(cases["index"], errors="coerce").dropna().astype("int64")
    positions = np.unique(rows.to_numpy())
    values = cases["failure_case"]
    personal = column in PERSONAL_COLUMNS
    if check == "not_nullable":
        expected, found = (
            "a value in every row",
            counted(len(positions), "empty cell", "empty cells"),
        )
    elif check == "field_uniqueness":
        expected, found = (
            "unique values",
            f"duplicates {describe_values(values, personal=personal)}",
        )
    elif check.startswith("dtype("):
        expected, found = f"values of type {check[len('dtype(') : -1]}", f"{values.iloc[0]} values"
    else:
        expected, found = check, describe_values(values, personal=personal)
    return Problem.at_positions(name, column, expected, found, positions)


def _row_rule_problems(
    name: str, table: pd.DataFrame, failed_cells: dict[str, np.ndarray]
) -> list[Problem]:
    """Rows that break a rule relating their columns (rules missing a column are skipped)."""
    problems: list[Problem] = []
    for rule in ROW_RULES.get(name, ()):
        if not set(rule.columns) <= set(table.columns):
            continue
        broken = rule.broken(table).to_numpy(dtype=bool, na_value=False)
        for column in rule.columns:
            if column in failed_cells:
                broken &= ~failed_cells[column]
        if broken.any():
            found = counted(int(broken.sum()), *rule.found)
            positions = np.flatnonzero(broken)
            problems.append(
                Problem.at_positions(name, rule.column, rule.expected, found, positions)
            )
    return problems
