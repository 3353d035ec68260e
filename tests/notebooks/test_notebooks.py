"""Every notebook runs top to bottom on a small population; none is stored with outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
TIMEOUT_SECONDS = 300


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_the_notebook_runs_top_to_bottom(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notebook = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        f"{path.name}: strip outputs before committing (jupyter nbconvert --clear-output)"
    )
    # The kernel inherits these; monkeypatch restores them for the tests that follow.
    monkeypatch.setenv("PAYNUDGE_NB_CUSTOMERS", os.environ.get("PAYNUDGE_NB_CUSTOMERS", "600"))
    monkeypatch.setenv("PAYNUDGE_HOME", str(tmp_path / "home"))  # never the user's own home
    client = NotebookClient(notebook, timeout=TIMEOUT_SECONDS, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})  # fmt: skip
    client.execute()
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert notebook.cells[-1].outputs, "the last cell shows its result"


def test_there_are_three_notebooks() -> None:
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03"]
