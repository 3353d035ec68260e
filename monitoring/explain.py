"""The library function behind ``paynudge explain``: SHAP reports per registered version.

Global reports use each version's own training rows (its stored reference, see
:mod:`monitoring.reference`); a local explanation reads the invoice's row from the built
late-payment dataset.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitoring.local_explanation import local_report
from monitoring.reference import load_monitored, load_reference
from monitoring.shap_reports import global_report
from paynudge.config import Settings
from paynudge.errors import DataError
from training.tracking import connect


def registered_versions(model: str, settings: Settings) -> list[str]:
    """Every registered version of ``model``, oldest first."""
    name = settings.registered_model_name(model)
    found = connect(settings).search_model_versions(f"name = '{name}'")
    return sorted((str(v.version) for v in found), key=int)


def explain_versions(
    model: str,
    settings: Settings,
    versions: list[str] | None = None,
    all_versions: bool = False,
    invoice: str | None = None,
    customer: str | None = None,
) -> list[Path]:
    """Write the global (and, if asked, local) SHAP reports; return the pages written."""
    chosen: list[str | None] = list(versions or [])
    if all_versions:
        chosen = list(registered_versions(model, settings))
    if not chosen:
        chosen = [None]  # the champion
    pages = []
    first = None
    for version in chosen:
        monitored = load_monitored(model, settings, version=version)
        first = first or monitored
        reference = load_reference(monitored, settings)
        pages.append(global_report(monitored, reference.features, settings, reference.source).page)
    if (invoice is not None or customer is not None) and first is not None:
        assert first.spec.dataset is not None
        path = settings.features_directory / f"{first.spec.dataset}.parquet"
        if not path.exists():
            raise DataError(
                f"{path}: no dataset to find the invoice in; run `paynudge features build`"
            )
        rows = pd.read_parquet(path)
        pages.append(local_report(first, rows, settings, invoice=invoice, customer=customer).page)
    return pages
