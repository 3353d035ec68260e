"""One broken expectation in a data set, said so a person can find and fix it.

A :class:`Problem` names the table, the column, the first few 1-based data rows (row 1 is the
first row under the header) and the total count, so one problem per check stays readable even
when a check fails on millions of rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ROWS_SHOWN = 3
"""Row numbers listed in a problem before "and N more"."""
VALUES_SHOWN = 3
"""Distinct offending values quoted in a problem before "and N more"."""
VALUE_CHARACTERS = 40
"""Longer offending values are cut to this many characters."""
MASKED = "<masked>"
"""Stands in for values of personal columns (names, e-mail addresses, phone numbers)."""


@dataclass(frozen=True)
class Problem:
    """What ``table.column`` should hold, what it holds instead, and in which rows."""

    table: str
    column: str | None
    expected: str
    found: str
    rows: tuple[int, ...] = ()
    n_rows: int = 0

    @classmethod
    def at_positions(
        cls, table: str, column: str | None, expected: str, found: str, positions: np.ndarray
    ) -> Problem:
        """A problem in the rows at 0-based ``positions`` (sorted), listing the first few."""
        rows = tuple(int(position) + 1 for position in positions[:ROWS_SHOWN])
        return cls(table, column, expected, found, rows=rows, n_rows=len(positions))

    def __str__(self) -> str:
        where = self.table if self.column is None else f"{self.table}.{self.column}"
        return f"{where}{self._rows_text()}: expected {self.expected}, found {self.found}"

    def _rows_text(self) -> str:
        if not self.rows:
            return ""
        label = "row" if self.n_rows == 1 else "rows"
        listed = ", ".join(str(row) for row in self.rows)
        more = self.n_rows - len(self.rows)
        return f" {label} {listed}" + (f" and {more:,} more" if more > 0 else "")


def counted(n: int, singular: str, plural: str) -> str:
    """``n`` with the noun that agrees with it: "1 empty cell", "2,500 empty cells"."""
    return f"{n:,} {singular if n == 1 else plural}"


def describe_values(values: pd.Series, *, personal: bool = False) -> str:
    """The first few distinct ``values`` quoted, with how many more there are."""
    if personal:
        return MASKED
    distinct = values.drop_duplicates()
    shown = ", ".join(_quoted(value) for value in distinct.iloc[:VALUES_SHOWN])
    more = len(distinct) - VALUES_SHOWN
    return shown + (f" and {more:,} more" if more > 0 else "")


def _quoted(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > VALUE_CHARACTERS:
        text = text[:VALUE_CHARACTERS] + "…"
    return repr(text) if isinstance(value, str) else text
