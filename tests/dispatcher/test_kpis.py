"""Collection KPIs: a hand-worked example, bad inputs, the simulated world, the report and CLI."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dispatcher.kpi_report import kpi_rows, write_kpi_report
from dispatcher.kpi_tables import read_kpi_tables
from dispatcher.kpis import KpiReport, compare_kpis, compute_kpis
from paynudge.config import KpiSettings
from paynudge.errors import DataError
from simulation.world import make_config, simulate_world, write_world

COSTS = {"email": 0.005, "sms": 0.06, "push": 0.002, "call": 4.0, "letter": 2.5}
AS_OF = pd.Timestamp("2025-04-01T00:00:00Z")


def ts(text: str | None) -> pd.Timestamp:
    return pd.Timestamp(text) if text else pd.NaT


def hand_worked_tables() -> dict[str, pd.DataFrame]:
    """Seven invoices worked through by hand in the comments of the test below."""
    invoices = pd.DataFrame(
        [
            ("I1", "C1", "2025-01-01", "2025-01-15", 100.0),
            ("I2", "C2", "2025-01-01", "2025-01-20", 50.0),
            ("I3", "C2", "2025-02-01", "2025-02-15", 80.0),
            ("I4", "C1", "2025-03-01", "2025-03-15", 40.0),
            ("I5", "C2", "2025-03-20", "2025-04-10", 60.0),
            ("I6", "C2", "2024-12-01", "2024-12-15", 30.0),
            ("I7", "C1", "2025-03-05", "2025-03-20", 70.0),
        ],
        columns=["invoice_id", "customer_id", "issue_date", "due_date", "amount"],
    )
    payments = pd.DataFrame(
        [
            ("I1", "2025-01-15T23:30:00Z", 100.0),  # 00:30 on the 16th in Amsterdam: late
            ("I2", "2025-01-10T12:00:00Z", 20.0),  # partial ...
            ("I2", "2025-01-19T12:00:00Z", 30.0),  # ... settled on time
            ("I3", "2025-03-01T12:00:00Z", 30.0),  # partial, 50 still open
            ("I7", "2025-03-25T12:00:00Z", 70.0),  # late, after a case task
            ("I5", "2025-04-05T12:00:00Z", 60.0),  # after as_of: not yet
        ],
        columns=["invoice_id", "paid_at", "amount"],
    )
    payments["paid_at"] = pd.to_datetime(payments["paid_at"], utc=True)
    message_rows = [
        ("M1", "I1", "email", "2025-01-10T09:00Z", "2025-01-10T09:01Z", "2025-01-11T08:00Z",
         "2025-01-11T08:01Z"),
        ("M2", "I3", "sms", "2025-02-20T10:00Z", "2025-02-20T10:00Z", "2025-02-20T11:00Z", None),
        ("M3", "I4", "email", "2025-03-18T10:00Z", None, None, None),  # bounced
        ("M4", "I7", "letter", "2025-03-21T10:00Z", "2025-03-23T10:00Z", None, None),
        ("M5", "I2", None, None, None, None, None),  # a logged 'no contact'
        ("M6", "I2", "sms", "2025-01-25T10:00Z", "2025-01-25T10:00Z", None, None),  # after paid
        ("M7", "I5", "email", "2025-04-02T10:00Z", None, None, None),  # after as_of
    ]  # fmt: skip
    messages = pd.DataFrame(
        message_rows,
        columns=["message_id", "invoice_id", "channel", "sent_at", "delivered_at", "opened_at",
                 "clicked_at"],
    )  # fmt: skip
    for column in ("sent_at", "delivered_at", "opened_at", "clicked_at"):
        messages[column] = pd.to_datetime(messages[column], utc=True)
    case_tasks = pd.DataFrame(
        {"invoice_id": ["I4", "I7"],
         "opened_at": pd.to_datetime(["2025-03-20T09:00Z", "2025-03-22T09:00Z"], utc=True)}
    )  # fmt: skip
    customers = pd.DataFrame({"customer_id": ["C1"], "timezone": ["Europe/Amsterdam"]})
    return {"invoices": invoices, "payments": payments, "messages": messages,
            "case_tasks": case_tasks, "customers": customers}  # fmt: skip


@pytest.fixture
def report() -> KpiReport:
    return compute_kpis(hand_worked_tables(), COSTS, KpiSettings(), as_of=AS_OF)


def test_headline_figures_match_the_hand_worked_example(report: KpiReport) -> None:
    s = report.summary
    # due by April 1: I1, I2, I3, I4, I6, I7; on time: only I2 (I1 was paid 00:30 local)
    assert (s.invoices, s.invoices_due) == (7, 6)
    assert s.on_time_rate == pytest.approx(1 / 6)
    # open at as_of: I3 50 + I4 40 + I5 60 + I6 30; overdue: all but I5 (not yet due)
    assert s.open_receivables == pytest.approx(180.0)
    assert s.overdue_amount == pytest.approx(120.0)
    # invoiced in the 90 days after 2025-01-01 00:00: I3 80 + I4 40 + I5 60 + I7 70 = 250
    assert s.days_sales_outstanding == pytest.approx(180 / 250 * 90)
    # settled: I1, I2, I7; I7 had a case task
    assert s.automation_rate == pytest.approx(2 / 3)
    # collected by as_of: 100 + 20 + 30 + 30 + 70; cost: 2 e-mails, 2 SMS, 1 letter
    assert s.collected == pytest.approx(250.0)
    assert s.contact_cost == pytest.approx(2 * 0.005 + 2 * 0.06 + 2.5)
    assert s.contact_cost_per_collected == pytest.approx(2.63 / 250)


def test_overdue_buckets(report: KpiReport) -> None:
    buckets = report.overdue.set_index("bucket")
    assert list(buckets.index) == [
        "not yet due", "1-30 days", "31-60 days", "61-90 days", "over 90 days"
    ]  # fmt: skip
    # I4: 16 days past its local due moment; I3: 44 days; I6: 106 days
    assert buckets["invoices"].tolist() == [1, 1, 1, 0, 1]
    assert buckets["open_amount"].tolist() == pytest.approx([60.0, 40.0, 50.0, 0.0, 30.0])
    assert buckets["share_of_open_amount"].sum() == pytest.approx(1.0)


def test_channel_rates(report: KpiReport) -> None:
    channels = report.channels.set_index("channel")
    assert channels.loc["email", ["sent", "delivered", "opened", "clicked", "paid"]].tolist() == [
        2, 1, 1, 1, 1
    ]  # fmt: skip
    rates = ["delivery_rate", "open_rate", "click_rate", "pay_rate"]
    assert channels.loc["email", rates].tolist() == [0.5, 1.0, 1.0, 0.5]
    # M6 went out after I2 was settled: it counts as sent and delivered, not for the pay rate
    sms = channels.loc["sms"]
    assert (sms["sent"], sms["delivery_rate"], sms["open_rate"], sms["click_rate"]) == (
        2, 1.0, 0.5, 0.0
    )  # fmt: skip
    assert sms["pay_rate"] == 0.0
    letter = channels.loc["letter"]
    assert (letter["sent"], letter["pay_rate"]) == (1, 1.0)
    assert math.isnan(letter["open_rate"]) and math.isnan(letter["click_rate"])


def test_on_time_rate_by_due_month(report: KpiReport) -> None:
    monthly = report.on_time_by_month.set_index("due_month")
    assert monthly["invoices_due"].to_dict() == {"2024-12": 1, "2025-01": 2, "2025-02": 1,
                                                 "2025-03": 2}  # fmt: skip
    assert monthly["on_time_rate"].to_dict() == {"2024-12": 0.0, "2025-01": 0.5, "2025-02": 0.0,
                                                 "2025-03": 0.0}  # fmt: skip


def test_time_zones_grace_buckets_and_data_end_change_the_figures_as_defined() -> None:
    tables = hand_worked_tables()
    utc_only = {name: t for name, t in tables.items() if name != "customers"}
    assert compute_kpis(utc_only, COSTS, as_of=AS_OF).summary.on_time_rate == pytest.approx(2 / 6)
    graced = compute_kpis(tables, COSTS, as_of=AS_OF, grace_days=1.0)
    assert graced.summary.on_time_rate == pytest.approx(2 / 6)
    wide = compute_kpis(tables, COSTS, KpiSettings(overdue_bucket_days=(45,)), as_of=AS_OF)
    assert wide.overdue["bucket"].tolist() == ["not yet due", "1-45 days", "over 45 days"]
    assert wide.overdue["invoices"].tolist() == [1, 2, 1]
    # default data end: the latest event (I5's payment on 5 April settles it)
    latest = compute_kpis(tables, COSTS)
    assert latest.summary.as_of == pd.Timestamp("2025-04-05T12:00:00Z")
    assert latest.summary.collected == pytest.approx(310.0)
    # a cost column in messages overrides the channel costs
    priced = {**tables, "messages": tables["messages"].assign(cost=1.0)}
    assert compute_kpis(priced, COSTS, as_of=AS_OF).summary.contact_cost == pytest.approx(5.0)


def test_only_invoices_and_payments_are_required() -> None:
    tables = hand_worked_tables()
    minimal = {name: tables[name] for name in ("invoices", "payments")}
    report = compute_kpis(minimal, COSTS, as_of=AS_OF)
    assert report.channels.empty
    assert report.summary.contact_cost == 0.0
    assert report.summary.automation_rate == 1.0  # no case tasks at all


def _without(table: str, column: str) -> dict[str, pd.DataFrame]:
    tables = hand_worked_tables()
    return {**tables, table: tables[table].drop(columns=column)}


def _with(table: str, column: str, row: int, value: object) -> dict[str, pd.DataFrame]:
    tables = hand_worked_tables()
    frame = tables[table].astype({column: object})
    frame.loc[row, column] = value
    return {**tables, table: frame}


TZ = "a timestamp with a time zone"
BAD_INPUTS = [
    ({"invoices": hand_worked_tables()["invoices"]}, "table 'payments' is missing"),
    (_without("invoices", "due_date"), r"table 'invoices' is missing column\(s\) due_date"),
    (_without("messages", "opened_at"), rf"'messages' is missing column\(s\) opened_at \({TZ}"),
    (_with("invoices", "amount", 2, "eighty"), r"invoices.amount: expected a number, found 'eig"),
    (_with("invoices", "amount", 2, "eighty"), r"found 'eighty' in row 2"),
    (_with("invoices", "due_date", 1, "soon"), r"invoices.due_date: expected a calendar date"),
    (_with("invoices", "due_date", 1, "soon"), r"found 'soon' in row 1"),
    (_with("payments", "paid_at", 3, "2025-03-01T12:00:00"), rf"payments.paid_at: expected {TZ}"),
    (_with("payments", "paid_at", 3, "2025-03-01T12:00:00"), r"'2025-03-01T12:00:00' in row 3"),
    (_with("payments", "invoice_id", 4, "I99"), r"payments.invoice_id: expected a known invoice"),
    (_with("payments", "invoice_id", 4, "I99"), r"found 'I99' in row 4"),
    (_with("invoices", "invoice_id", 1, "I1"), r"invoice_id: expected unique ids, .* in row 1"),
    (_with("invoices", "customer_id", 0, None), r"customer_id: expected text, found an empty cell"),
    (_with("messages", "channel", 0, "pigeon"), r"channel: no contact cost for \['pigeon'\]"),
    (_with("customers", "timezone", 0, "Mars/Olympus"), r"timezone: expected an IANA time zone"),
]


@pytest.mark.parametrize(("tables", "message"), BAD_INPUTS)
def test_bad_inputs_name_the_table_column_and_row(
    tables: dict[str, pd.DataFrame], message: str
) -> None:
    with pytest.raises(DataError, match=message):
        compute_kpis(tables, COSTS, as_of=AS_OF)


def test_a_naive_data_end_is_refused() -> None:
    with pytest.raises(DataError, match="as_of: expected a timestamp with a time zone"):
        compute_kpis(hand_worked_tables(), COSTS, as_of=pd.Timestamp("2025-04-01"))


def test_csv_text_tables_read_like_typed_ones(tmp_path: Path) -> None:
    for name, table in hand_worked_tables().items():
        table.to_csv(tmp_path / f"{name}.csv", index=False, date_format="%Y-%m-%dT%H:%M:%SZ")
    from_files = compute_kpis(read_kpi_tables(tmp_path), COSTS, as_of=AS_OF)
    in_memory = compute_kpis(hand_worked_tables(), COSTS, as_of=AS_OF)
    assert from_files.summary == in_memory.summary
    with pytest.raises(DataError, match="expected a folder"):
        read_kpi_tables(tmp_path / "nowhere")


# --- the simulated world, the report and the command line --------------------------------------


@pytest.fixture(scope="module")
def world_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two small simulated worlds (stand-ins for a learned policy and the ladder)."""
    dirs = []
    for seed in (3, 4):
        world = simulate_world(make_config(n_customers=300, n_months=4, seed=seed))
        dirs.append(write_world(world, tmp_path_factory.mktemp(f"world{seed}")))
    return dirs[0], dirs[1]


def test_kpis_of_the_simulated_world(world_dirs: tuple[Path, Path]) -> None:
    tables = read_kpi_tables(world_dirs[0])
    assert not tables["case_tasks"].empty  # derived from disputes and final-stage decisions
    report = compute_kpis(tables, COSTS)
    s = report.summary
    assert 0.6 < s.on_time_rate < 0.97  # the simulation's target: 10-25% paid late
    assert 0.0 < s.automation_rate < 1.0
    assert s.days_sales_outstanding > 0 and s.contact_cost_per_collected > 0
    channels = report.channels.set_index("channel")
    assert set(channels.index) <= set(COSTS)
    assert channels.loc["sms", "open_rate"] > channels.loc["email", "open_rate"]
    rates = channels[["delivery_rate", "pay_rate"]].to_numpy()
    assert ((rates >= 0) & (rates <= 1)).all()


def test_report_files_and_formula_safe_csv(world_dirs: tuple[Path, Path], tmp_path: Path) -> None:
    tables = hand_worked_tables()
    hostile = {**tables, "messages": tables["messages"].replace({"sms": "=HYPERLINK(1)"})}
    costs = {**COSTS, "=HYPERLINK(1)": 0.06}
    reports = {
        "=ladder": compute_kpis(hostile, costs, as_of=AS_OF),
        "learned": compute_kpis(read_kpi_tables(world_dirs[0]), COSTS),
    }
    files = write_kpi_report(reports, tmp_path / "out")
    csv = pd.read_csv(files.csv, dtype=str, keep_default_na=False)
    assert not csv[["run", "group"]].apply(lambda c: c.str.startswith("=")).any().any()
    assert "'=HYPERLINK(1)" in set(csv["group"])
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == 3
    assert "<h2>Channels: =ladder</h2>" in page and "<script" not in page
    rows = kpi_rows(reports)
    assert set(rows["section"]) == {"summary", "overdue", "channel", "on_time_by_month"}
    assert compare_kpis(reports).columns.tolist() == ["=ladder", "learned"]


def test_paynudge_report_kpis_compares_two_runs(
    world_dirs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paynudge.cli import app
    from paynudge.config import get_settings

    monkeypatch.setenv("PAYNUDGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    runner = CliRunner()
    result = runner.invoke(app, ["report", "kpis", "--data", str(world_dirs[0]), "--baseline",
                                 str(world_dirs[1]), "--out", str(tmp_path / "kpis")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "on_time_rate" in result.output and "baseline" in result.output
    assert (tmp_path / "kpis" / "kpis.html").exists() and (tmp_path / "kpis" / "kpis.csv").exists()
    missing = runner.invoke(app, ["report", "kpis", "--data", str(tmp_path / "nothing")])
    assert missing.exit_code == 1
    get_settings.cache_clear()
