"""SHAP reports: global and segments per version, local with the service's reasons; the index."""

from __future__ import annotations

import json
import re

import pandas as pd

from monitoring.explain import explain_versions
from monitoring.local_explanation import local_report
from monitoring.reference import load_monitored
from monitoring.reports_index import write_index
from serving.explanation import top_reasons
from tests.monitoring.conftest import Monitored


def test_global_reports_per_version_with_segments(monitored: Monitored) -> None:
    pages = explain_versions("late_payment", monitored.settings, all_versions=True)
    assert pages, "one page per registered version"
    folder = pages[0].parent
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["version"] == folder.name.removeprefix("v")
    images = [
        "beeswarm.png",
        "importance.png",
        "segments_payment.png",
        "segments_tenure.png",
        *(f"dependence_{name}.png" for name in meta["top_features"]),
    ]
    for name in images:
        assert (folder / name).stat().st_size > 0, name
        assert f'src="{name}"' in pages[0].read_text()
    segments = pd.read_csv(folder / "segments.csv", index_col=0)
    assert list(segments.columns) == [
        "autopay",
        "manual payers",
        "new (< 365 days)",
        "long-standing",
    ]
    assert segments.notna().all().all()


def test_a_local_explanation_gives_the_service_reasons(monitored: Monitored) -> None:
    settings = monitored.settings
    model = load_monitored("late_payment", settings)
    rows = pd.read_parquet(monitored.features_dir / "late_payment.parquet")
    risky = rows.iloc[
        [int(model.estimator.predict_proba(rows[list(model.spec.features)])[:, 1].argmax())]
    ]
    invoice = str(risky["invoice_id"].iloc[0])
    explanation = local_report(model, rows, settings, invoice=invoice)
    expected = top_reasons(
        model.estimator, risky[list(model.spec.features)].reset_index(drop=True), top=5
    )[0]
    assert [r["sentence"] for r in explanation.reasons] == [r["sentence"] for r in expected]
    page = explanation.page.read_text()
    assert expected[0]["sentence"] in page and explanation.page.with_suffix(".png").exists()
    assert f"{model.name}/{model.version}" in page
    latest = local_report(model, rows, settings, customer=str(risky["customer_id"].iloc[0]))
    assert latest.customer_id == str(risky["customer_id"].iloc[0])


def test_the_index_links_every_report_with_versions_and_dates(monitored: Monitored) -> None:
    from monitoring.checks import run_drift
    from tests.monitoring.conftest import SINCE, UNTIL

    settings = monitored.settings
    run_drift("late_payment", settings, SINCE, UNTIL, monitored.shifted_log)
    explain_versions("late_payment", settings)
    index = write_index(settings)
    html = index.read_text()
    for heading in (
        "Drift and performance",
        "Explanations (SHAP)",
        "Collection KPIs",
        "Reminder policy evaluation",
    ):
        assert heading in html
    links = re.findall(r'(?:href|src)="([^"]+)"', html)
    assert any(link.endswith("drift.html") for link in links)
    assert any(link.endswith("shap/late_payment/v1/index.html") for link in links)
    for link in links:
        assert (index.parent / link).exists(), link
    assert re.search(r"<td>late_payment</td>\s*<td>1</td>\s*<td>\d{4}-\d\d-\d\d", html)
