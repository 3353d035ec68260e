"""Headless Chromium renders reports/index.html with its plots (skipped without Chromium).

The documented check (README, "Monitoring and explanations") is the same command by hand:
``chromium --headless --screenshot=index.png --window-size=1280,2400 HOME/reports/index.html``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from monitoring.checks import run_drift
from monitoring.explain import explain_versions
from monitoring.reports_index import write_index
from tests.monitoring.conftest import SINCE, UNTIL, Monitored

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER = next((found for name in BROWSERS if (found := shutil.which(name))), None)
RENDER_SECONDS = 60


def screenshot(page: Path, target: Path) -> Path:
    """A PNG of ``page`` as headless Chromium renders it (files next to it load too)."""
    assert BROWSER is not None
    subprocess.run(
        [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={target}", "--window-size=1280,2400", page.absolute().as_uri()],
        check=True, capture_output=True, timeout=RENDER_SECONDS,
    )  # fmt: skip
    return target


@pytest.mark.skipif(BROWSER is None, reason="no chromium on PATH: `apt-get install -y chromium`")
def test_the_index_renders_its_plots_in_headless_chromium(
    monitored: Monitored, tmp_path: Path
) -> None:
    settings = monitored.settings
    run_drift("late_payment", settings, SINCE, UNTIL, monitored.shifted_log)
    explain_versions("late_payment", settings)
    image = imread(screenshot(write_index(settings), tmp_path / "index.png"))
    pixels = image[..., :3].reshape(-1, 3)
    # plots are drawn in colour (the drift bars, SHAP's red-blue); text and tables are grey
    colourful = (pixels.max(axis=1) - pixels.min(axis=1)) > 0.3
    assert colourful.mean() > 0.01, "the screenshot shows no coloured plot"
    assert np.unique((pixels * 255).astype(int), axis=0).shape[0] > 500
