"""``HOME/reports/index.html``: the latest drift, SHAP, KPI and policy-evaluation reports.

One static page an analyst opens in a browser: per report its model or policy version, its date
and a link, with the key figure inline (drift scores, mean |SHAP|, the simulated A/B). The
policy evaluation is copied from its MLflow run (``simulated_ab.csv`` and ``.png``) into
``reports/policy/``; KPI pages are those ``paynudge report kpis`` writes into ``reports/kpis/``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd
from mlflow.exceptions import MlflowException

from monitoring.pages import write_page
from monitoring.publish import DRIFT_FOLDER, SCORES_PLOT, SUMMARY_FILE
from monitoring.shap_reports import META_FILE, PAGE, SHAP_FOLDER
from paynudge.config import Settings
from training.tracking import connect

INDEX = "index.html"
KPI_FOLDERS = ("kpis", "kpi")
"""Where ``paynudge report kpis`` writes (``reports/kpis/kpis.html``), and the older name."""
POLICY_FOLDER = "policy"
AB_RUN_NAME = "simulated_ab"
AB_FILES = ("simulated_ab.csv", "simulated_ab.png")


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def drift_section(root: Path) -> dict:
    """The latest drift check of each model."""
    rows, images = [], []
    for model_folder in sorted((root / DRIFT_FOLDER).glob("*")):
        checks = sorted(model_folder.glob(f"*/{SUMMARY_FILE}"), key=lambda p: p.parent.name)
        if not checks:
            continue
        summary = json.loads(checks[-1].read_text())
        folder = checks[-1].parent
        alarms = "; ".join(a["kind"] for a in summary["alarms"]) or "none"
        links = [{"href": _relative(folder / "drift.html", root), "text": "drift"}]
        if (folder / "performance.html").exists():
            links.append(
                {"href": _relative(folder / "performance.html", root), "text": "performance"}
            )
        since, until = summary["window"]
        rows.append(
            [
                summary["model"],
                summary["version"],
                summary["created"][:19],
                f"{since[:10]} .. {(until or 'now')[:10]}",
                f"{summary['current_rows']:,}",
                f"{summary['drifted_share']:.0%}",
                f"{summary['prediction']['score']:.3f}",
                alarms,
                *links,
            ]
        )
        images.append(
            {
                "src": _relative(folder / SCORES_PLOT, root),
                "href": _relative(folder / "drift.html", root),
                "caption": f"{summary['model']} v{summary['version']}: drift by column",
            }
        )
    return {
        "heading": "Drift and performance (Evidently)",
        "text": "" if rows else "No drift report yet: run `paynudge monitor drift --since DATE`.",
        "table": {
            "header": [
                "model",
                "version",
                "date (UTC)",
                "window",
                "decisions",
                "drifted features",
                "score drift",
                "alarms",
                "report",
                "",
            ],
            "rows": rows,
        }
        if rows
        else None,
        "images": images,
    }


def shap_section(root: Path) -> dict:
    """Every model version with a SHAP report, newest first, and its local explanations."""
    metas = [
        json.loads(p.read_text()) | {"folder": p.parent}
        for p in (root / SHAP_FOLDER).glob(f"*/*/{META_FILE}")
    ]
    metas.sort(key=lambda m: (m["model"], int(m["version"])), reverse=True)
    rows, images = [], []
    for meta in metas:
        folder = meta["folder"]
        local = sorted((folder / "local").glob("*.html"))
        rows.append(
            [
                meta["model"],
                meta["version"],
                meta["created"][:19],
                ", ".join(meta["top_features"]),
                {"href": _relative(folder / PAGE, root), "text": "global + segments"},
                *({"href": _relative(p, root), "text": f"invoice {p.stem}"} for p in local[:3]),
            ]
        )
        images.append(
            {
                "src": _relative(folder / "importance.png", root),
                "href": _relative(folder / PAGE, root),
                "caption": f"{meta['model']} v{meta['version']}: mean |SHAP|",
            }
        )
    return {
        "heading": "Explanations (SHAP)",
        "text": "" if rows else "No SHAP report yet: run `paynudge explain late_payment`.",
        "table": {
            "header": ["model", "version", "date (UTC)", "top features", "report", "local", "", ""],
            "rows": rows,
        }
        if rows
        else None,
        "images": images[:4],
    }


def kpi_section(root: Path) -> dict:
    """KPI pages ``paynudge report kpis`` wrote into ``reports/kpis/``, newest first."""
    found = [page for folder in KPI_FOLDERS for page in (root / folder).glob("**/*.html")]
    pages = sorted(found, key=lambda p: p.stat().st_mtime)[::-1]
    rows = [
        [
            {"href": _relative(p, root), "text": p.stem},
            pd.Timestamp(p.stat().st_mtime, unit="s", tz="UTC").strftime("%Y-%m-%d %H:%M"),
        ]
        for p in pages
    ]
    return {
        "heading": "Collection KPIs",
        "text": "" if rows else "No KPI report yet: run `paynudge report kpis --data DIR`.",
        "table": {"header": ["report", "date (UTC)"], "rows": rows} if rows else None,
    }


def _store_exists(settings: Settings) -> bool:
    uri = settings.mlflow_tracking_uri or ""
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).exists()


def policy_section(root: Path, settings: Settings) -> dict:
    """The latest simulated A/B of the reminder policy, copied from its MLflow run."""
    empty = {
        "heading": "Reminder policy evaluation",
        "text": "No policy evaluation yet: run `paynudge policy simulate`.",
    }
    if not _store_exists(settings):
        return empty
    client = connect(settings)
    experiment = client.get_experiment_by_name(settings.policy.registered_name)
    if experiment is None:
        return empty
    runs = client.search_runs(
        [experiment.experiment_id],
        f"attributes.run_name = '{AB_RUN_NAME}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return empty
    run = runs[0]
    folder = root / POLICY_FOLDER / run.info.run_id
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for name in AB_FILES:
            try:
                (folder / name).write_bytes(
                    Path(client.download_artifacts(run.info.run_id, name, scratch)).read_bytes()
                )
            except (MlflowException, OSError):
                return empty
    table = pd.read_csv(folder / AB_FILES[0], index_col=0)
    shown = [c for c in table.columns if not c.endswith(("_low", "_high"))]
    version = run.data.tags.get("policy_version", "?")
    date = pd.Timestamp(run.info.start_time, unit="ms", tz="UTC").strftime("%Y-%m-%d %H:%M")
    page = write_page(
        folder / "index.html",
        f"Simulated A/B of reminder policy {version}",
        [
            {
                "heading": "Policies on held-out simulated customers (ground truth)",
                "table": {
                    "header": ["policy", *shown],
                    "rows": [
                        [name, *(f"{row[c]:.4f}" for c in shown)] for name, row in table.iterrows()
                    ],
                },
                "images": [{"src": AB_FILES[1], "caption": "95% intervals"}],
            }
        ],
        subtitle=f"MLflow run {run.info.run_id}, {date} UTC; gap closed "
        f"{run.data.metrics.get('gap_closed', float('nan')):.1%}",
    )
    return {
        "heading": "Reminder policy evaluation",
        "table": {
            "header": ["policy version", "date (UTC)", "report"],
            "rows": [[version, date, {"href": _relative(page, root), "text": "simulated A/B"}]],
        },
        "images": [
            {
                "src": _relative(folder / AB_FILES[1], root),
                "href": _relative(page, root),
                "caption": f"simulated A/B, policy {version}",
            }
        ],
    }


def write_index(settings: Settings) -> Path:
    """Write ``reports/index.html`` linking the latest reports; return its path."""
    root = settings.reports_directory
    root.mkdir(parents=True, exist_ok=True)
    sections = [
        drift_section(root),
        shap_section(root),
        kpi_section(root),
        policy_section(root, settings),
    ]
    created = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M")
    return write_page(
        root / INDEX,
        "PayNudge reports",
        sections,
        subtitle=f"written {created} UTC from {root.absolute()}",
    )
