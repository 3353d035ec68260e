"""``paynudge dispatch load|status`` and ``paynudge templates preview|check`` (typer runner)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from paynudge.cli import app
from paynudge.config import get_settings
from simulation.world import World, write_world


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("PAYNUDGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PAYNUDGE_DISPATCHER__LINK_SECRET", "k" * 32)
    get_settings.cache_clear()
    yield tmp_path / "home"
    get_settings.cache_clear()


def test_load_then_status_then_preview_a_stored_invoice(
    home: Path, tiny_world: World, tmp_path: Path
) -> None:
    data = write_world(tiny_world, tmp_path / "data")
    runner = CliRunner()
    loaded = runner.invoke(app, ["dispatch", "load", str(data)])
    assert loaded.exit_code == 0, loaded.output
    assert "554 invoices" in loaded.output
    status = runner.invoke(app, ["dispatch", "status"])
    assert status.exit_code == 0 and "loaded" in status.output
    invoice = tiny_world.tables["invoices"]["invoice_id"].iloc[0]
    shown = runner.invoke(app, ["templates", "preview", "--channel", "sms", "--language", "nl",
                                "--tone", "firm", "--invoice", invoice])  # fmt: skip
    assert shown.exit_code == 0, shown.output
    assert invoice in shown.output and "segment" in shown.output
    html = runner.invoke(app, ["templates", "preview", "--html", "--offer", "extension"])
    assert html.exit_code == 0 and "<a href=" in html.output


def test_errors_are_one_red_line(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(app, ["dispatch", "load", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "error:" in missing.output
    unknown = runner.invoke(app, ["templates", "preview", "--invoice", "INV-NONE"])
    assert unknown.exit_code == 1 and "INV-NONE" in unknown.output
    bad = runner.invoke(app, ["templates", "preview", "--channel", "fax"])
    assert bad.exit_code == 1 and "expected one of email" in bad.output


def test_templates_check_finds_a_broken_user_template(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["templates", "check"]).exit_code == 0
    (tmp_path / "mine" / "push").mkdir(parents=True)
    (tmp_path / "mine" / "push" / "firm.nl.j2").write_text("{{ bedrag }}")
    monkeypatch.setenv("PAYNUDGE_DISPATCHER__TEMPLATES_DIR", str(tmp_path / "mine"))
    get_settings.cache_clear()
    checked = runner.invoke(app, ["templates", "check"])
    assert checked.exit_code == 1 and "push/firm.nl.j2" in checked.output
