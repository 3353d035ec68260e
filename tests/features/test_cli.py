"""``paynudge features build|materialize`` end to end, including a bring-your-own CSV data set."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paynudge.cli import app
from paynudge.config import get_settings
from paynudge.validation import load_dataset

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PAYNUDGE_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_build_then_materialize(small_world_dir: Path, home: Path) -> None:
    built = runner.invoke(app, ["features", "build", "--data", str(small_world_dir)])
    assert built.exit_code == 0, built.output
    features = home / "features"
    for name in ("late_payment", "churn", "send_time"):
        manifest = json.loads((features / f"{name}.manifest.json").read_text())
        assert manifest["rows"] > 0 and (features / f"{name}.parquet").exists()
    assert (features / "customer_profiles.parquet").exists()
    served = runner.invoke(app, ["features", "materialize"])
    assert served.exit_code == 0, served.output
    assert "4,000 customer profiles" in served.output


def test_bring_your_own_csv_with_only_the_required_tables(
    small_world_dir: Path, tmp_path: Path, home: Path
) -> None:
    tables = load_dataset(small_world_dir)
    mine = tmp_path / "export"
    mine.mkdir()
    for name in ("customers", "invoices", "payments"):
        frame = tables[name]
        for column in frame.select_dtypes("datetimetz"):
            frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S%z")
        frame.to_csv(mine / f"{name}.csv", index=False)
    result = runner.invoke(
        app, ["features", "build", "--data", str(mine), "--out", str(tmp_path / "out")]
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "out" / "late_payment.manifest.json").read_text())
    assert manifest["rows"] > 1000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--as-of", "yesterday"], "--as-of: expected an ISO timestamp"),
        (["--as-of", "2024-05-01T00:00:00"], "--as-of: expected a time zone"),
        (["--only", "fraud"], "unknown dataset"),
    ],
)
def test_bad_options_are_clear_errors(
    small_world_dir: Path, home: Path, arguments: list[str], message: str
) -> None:
    result = runner.invoke(app, ["features", "build", "--data", str(small_world_dir), *arguments])
    assert result.exit_code == 1
    assert message in result.output


def test_materialize_before_build_says_what_to_do(home: Path) -> None:
    result = runner.invoke(app, ["features", "materialize"])
    assert result.exit_code == 1
    assert "paynudge features build" in result.output
