"""The data-set validator: a valid set passes in both formats, each bad input names its cell."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from paynudge.cli import app
from paynudge.errors import DataError
from paynudge.problems import MASKED, ROWS_SHOWN, describe_values
from paynudge.schemas import SCHEMAS
from paynudge.validation import Problem, load_dataset, read_table, validate_dataset

Tables = dict[str, pd.DataFrame]
WriteDataset = Callable[[Tables, str], Path]
FORMATS = ("parquet", "csv")


@pytest.mark.parametrize("file_format", FORMATS)
def test_valid_dataset_passes(
    valid_tables: Tables, write_dataset: WriteDataset, file_format: str
) -> None:
    report = validate_dataset(write_dataset(valid_tables, file_format))
    assert report.problems == ()
    assert report.ok
    assert report.row_counts == {name: len(table) for name, table in valid_tables.items()}
    assert report.notes == ()


def test_csv_and_parquet_load_to_the_same_tables(
    valid_tables: Tables, write_dataset: WriteDataset
) -> None:
    from_parquet = load_dataset(write_dataset(valid_tables, "parquet"))
    from_csv = load_dataset(write_dataset(valid_tables, "csv"))
    assert list(from_parquet) == list(valid_tables)
    for name, table in valid_tables.items():
        pd.testing.assert_frame_equal(from_parquet[name], table)
        pd.testing.assert_frame_equal(from_csv[name], table)


def _set(table: str, column: str, row: int, value: object) -> Callable[[Tables], None]:
    """Set the cell at 1-based data ``row``; text values turn the column into text first."""

    def mutate(tables: Tables) -> None:
        frame = tables[table]
        if isinstance(value, str) and frame[column].dtype != object:
            frame[column] = frame[column].astype(str)
        frame.loc[row - 1, column] = value

    return mutate


def _shift(table: str, column: str, row: int, by: str) -> Callable[[Tables], None]:
    def mutate(tables: Tables) -> None:
        tables[table].loc[row - 1, column] += pd.Timedelta(by)

    return mutate


def _drop_column(tables: Tables) -> None:
    del tables["customers"]["plan"]


def _add_column(tables: Tables) -> None:
    tables["invoices"]["colour"] = "red"


def _dates_as_numbers(tables: Tables) -> None:
    signup = tables["customers"]["signup_date"]
    tables["customers"]["signup_date"] = signup.dt.strftime("%Y%m%d").astype("int64")


def _duplicate_first_invoice(tables: Tables) -> None:
    invoices = tables["invoices"]
    tables["invoices"] = pd.concat([invoices, invoices.iloc[:1]], ignore_index=True)


def _naive_paid_at(tables: Tables) -> None:
    tables["payments"]["paid_at"] = tables["payments"]["paid_at"].dt.tz_localize(None)


@dataclass(frozen=True)
class BadInput:
    """A mutation of the valid set and the one problem it must cause."""

    mutate: Callable[[Tables], None]
    table: str
    column: str
    row: int | None
    message: str


BAD_INPUTS: dict[str, BadInput] = {
    "missing column": BadInput(_drop_column, "customers", "plan", None, "missing column"),
    "extra column": BadInput(
        _add_column, "invoices", "colour", None, r"expected one of invoice_id, .*unexpected column"
    ),
    "wrong type": BadInput(
        _dates_as_numbers,
        "customers",
        "signup_date",
        1,
        r"rows 1, 2, 3: expected a date \(YYYY-MM-DD\), found '?20230501",
    ),
    "unparseable number": BadInput(
        _set("invoices", "amount", 2, "abc"),
        "invoices",
        "amount",
        2,
        "expected a number, found 'abc'",
    ),
    "flag that is no flag": BadInput(
        _set("customers", "autopay", 2, "maybe"), "customers", "autopay", 2, "true or false"
    ),
    "empty cell in a required column": BadInput(
        _set("invoices", "customer_id", 3, None),
        "invoices",
        "customer_id",
        3,
        "expected a value in every row, found 1 empty cell",
    ),
    "duplicate id": BadInput(
        _duplicate_first_invoice,
        "invoices",
        "invoice_id",
        5,
        r"rows 1, 5: expected unique values, found duplicates 'I1'",
    ),
    "payment for unknown invoice": BadInput(
        _set("payments", "invoice_id", 2, "I404"),
        "payments",
        "invoice_id",
        2,
        "found 1 payment for unknown invoice: 'I404'",
    ),
    "payment by another customer": BadInput(
        _set("payments", "customer_id", 1, "C2"), "payments", "customer_id", 1, "invoice"
    ),
    "payment before issue": BadInput(
        _shift("payments", "paid_at", 3, "-60D"), "payments", "paid_at", 3, "issue_date"
    ),
    "due date before issue date": BadInput(
        _shift("invoices", "due_date", 2, "-30D"),
        "invoices",
        "due_date",
        2,
        "row 2: expected due_date on or after issue_date, found 1 invoice due before issue",
    ),
    "amount that does not add up": BadInput(
        _set("invoices", "amount", 1, 26.0), "invoices", "amount", 1, "fee_amount \\+ usage_amount"
    ),
    "negative amount": BadInput(
        _set("customers", "monthly_fee", 3, -1.0),
        "customers",
        "monthly_fee",
        3,
        "expected a non-negative amount, found -1.0",
    ),
    "payment of nothing": BadInput(
        _set("payments", "amount", 1, 0.0), "payments", "amount", 1, "a positive amount"
    ),
    "timestamp without time zone": BadInput(
        _naive_paid_at,
        "payments",
        "paid_at",
        1,
        re.escape("expected a timestamp with a time zone (e.g. 2025-03-01T09:30:00+01:00)"),
    ),
    "date with a time of day": BadInput(
        _shift("invoices", "issue_date", 1, "10h"),
        "invoices",
        "issue_date",
        1,
        "a date without a time of day",
    ),
    "value outside vocabulary": BadInput(
        _set("customers", "plan", 2, "gold"),
        "customers",
        "plan",
        2,
        "expected one of basic, standard, premium, business, found 'gold'",
    ),
    "unknown time zone": BadInput(
        _set("customers", "timezone", 1, "Mars/Olympus_Mons"), "customers", "timezone", 1, "IANA"
    ),
    "channel, tone, offer partially null": BadInput(
        _set("messages", "tone", 1, None), "messages", "channel", 1, "all set, or all empty"
    ),
    "sent without a channel": BadInput(
        _set("messages", "sent_at", 2, pd.Timestamp("2024-01-12T09:00:00Z")),
        "messages",
        "sent_at",
        2,
        "sent_at set exactly when channel is set",
    ),
    "opened before sent": BadInput(
        _shift("messages", "opened_at", 1, "-4h"),
        "messages",
        "opened_at",
        1,
        "opened_at on or after sent_at",
    ),
    "propensity out of range": BadInput(
        _set("messages", "propensity", 2, 1.5),
        "messages",
        "propensity",
        2,
        re.escape("expected a probability in (0, 1], found 1.5"),
    ),
    "opt_out without channel": BadInput(
        _set("responses", "channel", 2, None), "responses", "channel", 2, "opt_out"
    ),
    "promise without date": BadInput(
        _set("responses", "promised_date", 1, pd.NaT), "responses", "promised_date", 1, "promise"
    ),
    "response to unknown message": BadInput(
        _set("responses", "message_id", 1, "M404"), "responses", "message_id", 1, "'M404'"
    ),
    "churn of unknown customer": BadInput(
        _set("churn", "customer_id", 1, "C404"), "churn", "customer_id", 1, "unknown customer"
    ),
}


@pytest.mark.parametrize("file_format", FORMATS)
@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_problem_naming_its_cell(
    valid_tables: Tables, write_dataset: WriteDataset, case: BadInput, file_format: str
) -> None:
    case.mutate(valid_tables)
    report = validate_dataset(write_dataset(valid_tables, file_format))
    assert not report.ok
    assert len(report.problems) == 1, [str(problem) for problem in report.problems]
    problem = report.problems[0]
    assert (problem.table, problem.column) == (case.table, case.column)
    if case.row is not None:
        assert case.row in problem.rows
    assert re.search(case.message, str(problem)), str(problem)


@pytest.mark.parametrize(
    ("paid_at", "problems"),
    [("2023-12-31T23:30:00Z", 0), ("2023-12-31T22:30:00Z", 1)],
    ids=["00:30 on the issue day in Amsterdam", "23:30 the day before in Amsterdam"],
)
def test_payment_dates_are_compared_on_the_customers_calendar(
    valid_tables: Tables, write_dataset: WriteDataset, paid_at: str, problems: int
) -> None:
    valid_tables["payments"].loc[0, "paid_at"] = pd.Timestamp(paid_at)
    report = validate_dataset(write_dataset(valid_tables, "parquet"))
    assert [(problem.column, problem.rows) for problem in report.problems] == [
        ("paid_at", (1,))
    ] * problems


def _drop_payments(directory: Path) -> None:
    (directory / "payments.parquet").unlink()


def _add_csv_customers(directory: Path) -> None:
    (directory / "customers.csv").write_text("customer_id\nC1\n")


def _corrupt_invoices(directory: Path) -> None:
    (directory / "invoices.parquet").write_bytes(b"this is not parquet")


def _ragged_csv_invoices(directory: Path) -> None:
    (directory / "invoices.parquet").unlink()
    (directory / "invoices.csv").write_text("invoice_id,customer_id\nI1,C1\nI2,C2,extra,cells\n")


FILE_PROBLEMS = {
    "missing required table": (_drop_payments, "payments", "missing table"),
    "both csv and parquet": (
        _add_csv_customers,
        "customers",
        "one file per table, found both customers.parquet and customers.csv",
    ),
    "unreadable parquet": (_corrupt_invoices, "invoices", "readable.*invoices.parquet: "),
    "unreadable csv": (_ragged_csv_invoices, "invoices", "invoices.csv: .*fields"),
}


@pytest.mark.parametrize(("damage", "table", "message"), FILE_PROBLEMS.values(), ids=FILE_PROBLEMS)
def test_file_problem_names_its_table(
    valid_tables: Tables,
    write_dataset: WriteDataset,
    damage: Callable[[Path], None],
    table: str,
    message: str,
) -> None:
    directory = write_dataset(valid_tables, "parquet")
    damage(directory)
    report = validate_dataset(directory)
    assert [(problem.table, problem.column) for problem in report.problems] == [(table, None)]
    assert re.search(message, str(report.problems[0])), str(report.problems[0])


def test_missing_directory_is_a_data_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match=re.escape(str(missing))):
        validate_dataset(missing)


def test_a_file_is_no_data_set(tmp_path: Path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("customer_id\n")
    with pytest.raises(DataError, match="not a folder"):
        validate_dataset(path)


def test_absent_optional_tables_and_foreign_files_are_notes(
    valid_tables: Tables, write_dataset: WriteDataset
) -> None:
    required = {name: valid_tables[name] for name in ("customers", "invoices", "payments")}
    directory = write_dataset(required, "csv")
    (directory / "payments_backup.csv").write_text("x\n1\n")
    (directory / "truth").mkdir()
    (directory / "manifest.json").write_text("{}")
    report = validate_dataset(directory)
    assert report.ok, report.problems
    assert any("messages, responses, churn" in note for note in report.notes)
    assert any("payments_backup.csv" in note for note in report.notes)
    assert not any("manifest.json" in note for note in report.notes)


def test_many_failing_rows_are_one_problem_with_a_count(
    valid_tables: Tables, write_dataset: WriteDataset
) -> None:
    payments = valid_tables["payments"]
    many = pd.concat([payments] * 200, ignore_index=True)
    many["payment_id"] = [f"P{number}" for number in range(len(many))]
    many["method"] = "cheque"
    valid_tables["payments"] = many
    (problem,) = validate_dataset(write_dataset(valid_tables, "parquet")).problems
    assert problem.n_rows == 600
    assert str(problem).startswith("payments.method rows 1, 2, 3 and 597 more: ")


def test_personal_values_are_masked() -> None:
    email = pd.Series(["ada@example.org", "ben@example.org"])
    assert describe_values(email, personal=True) == MASKED
    assert describe_values(email) == "'ada@example.org', 'ben@example.org'"


def test_read_table_keeps_csv_cells_as_text(
    valid_tables: Tables, write_dataset: WriteDataset
) -> None:
    raw = read_table(write_dataset(valid_tables, "csv"), "invoices")
    assert raw.loc[0, "amount"] == "25.0"
    assert raw.loc[0, "issue_date"] == "2024-01-01"


def test_load_dataset_lists_problems(valid_tables: Tables, write_dataset: WriteDataset) -> None:
    valid_tables["customers"].loc[1, "plan"] = "gold"
    with pytest.raises(DataError, match=r"1 problems\):\n  customers.plan row 2: .*'gold'"):
        load_dataset(write_dataset(valid_tables, "parquet"))


def test_load_dataset_gives_numpy_flags(valid_tables: Tables, write_dataset: WriteDataset) -> None:
    customers = load_dataset(write_dataset(valid_tables, "csv"))["customers"]
    assert customers["autopay"].dtype == np.dtype(bool)


@given(positions=st.sets(st.integers(min_value=0, max_value=10**7), min_size=1, max_size=50))
def test_a_problem_lists_its_first_rows_and_counts_the_rest(positions: set[int]) -> None:
    ordered = np.array(sorted(positions))
    problem = Problem.at_positions("invoices", "amount", "a number", "'x'", ordered)
    shown = ", ".join(str(position + 1) for position in ordered[:ROWS_SHOWN])
    more = len(ordered) - ROWS_SHOWN
    assert problem.n_rows == len(ordered)
    assert f" {shown}" + (f" and {more:,} more" if more > 0 else "") + ": " in str(problem)


def _output(result: Result) -> str:
    """CLI output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_cli_accepts_a_valid_dataset(valid_tables: Tables, write_dataset: WriteDataset) -> None:
    result = CliRunner().invoke(app, ["validate", str(write_dataset(valid_tables, "parquet"))])
    assert result.exit_code == 0, result.output
    assert "valid" in _output(result)


def test_cli_rejects_an_invalid_dataset(valid_tables: Tables, write_dataset: WriteDataset) -> None:
    valid_tables["customers"].loc[1, "plan"] = "gold"
    result = CliRunner().invoke(app, ["validate", str(write_dataset(valid_tables, "csv"))])
    assert result.exit_code == 1
    assert "customers.plan row 2: expected one of basic" in _output(result)
    assert "1 problem(s) found" in _output(result)


def test_cli_reports_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "does not exist" in _output(result)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), text=st.text(st.characters(exclude_categories=["Cs"]), max_size=30))
def test_any_csv_cell_gives_a_report_not_a_crash(
    valid_tables: Tables, data: st.DataObject, text: str
) -> None:
    name = data.draw(st.sampled_from(list(valid_tables)))
    column = data.draw(st.sampled_from(list(SCHEMAS[name].columns)))
    row = data.draw(st.integers(min_value=0, max_value=len(valid_tables[name]) - 1))
    tables = {table: frame.astype(object) for table, frame in valid_tables.items()}
    tables[name].loc[row, column] = text
    with tempfile.TemporaryDirectory() as folder:
        for table, frame in tables.items():
            frame.to_csv(Path(folder) / f"{table}.csv", index=False)
        report = validate_dataset(Path(folder))
    for problem in report.problems:
        assert all(1 <= number <= report.row_counts[problem.table] for number in problem.rows)
        assert problem.n_rows >= len(problem.rows)
