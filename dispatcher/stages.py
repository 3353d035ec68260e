"""The dunning workflow: stages read from YAML, and when each starts for each invoice.

A stage starts at local midnight (the customer's zone) of its day, ``offset_days`` from the due
date. At a ``remind`` stage the dispatcher asks the decision service what to send; at a
``case_task`` stage it opens a task for a case manager instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from paynudge.config import Settings
from paynudge.errors import ConfigError

DEFAULT_WORKFLOW = Path(__file__).with_name("workflow.yaml")


class Stage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    offset_days: int = Field(description="Days from the due date (negative: before it).")
    action: Literal["remind", "case_task"] = "remind"


class OfferTerms(BaseModel):
    """What the offers promise (quoted by the offer texts)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    extension_days: int = Field(gt=0, description="Extra days to pay of an extension.")
    instalments: int = Field(gt=1, description="Monthly parts of an instalment plan.")


class Workflow(BaseModel):
    """The stages in order, how late a reminder may still go out, and the offers' terms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    stages: tuple[Stage, ...] = Field(min_length=1)
    max_send_delay_hours: float = Field(gt=0)
    offers: OfferTerms
    currency: str = Field(min_length=1, description="Currency of the amounts (ISO code).")

    @model_validator(mode="after")
    def _ordered(self) -> Workflow:
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stages: expected unique names, found {names}")
        offsets = [stage.offset_days for stage in self.stages]
        if any(b <= a for a, b in pairwise(offsets)):
            raise ValueError(f"stages: expected increasing offset_days, found {offsets}")
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(stage.name for stage in self.stages)

    def stage(self, name: str) -> Stage:
        return self.stages[self.names.index(name)]


def load_workflow(settings: Settings, path: Path | None = None) -> Workflow:
    """The workflow of ``path`` (default: the setting, else the packaged file), checked against
    the stage vocabulary of the reminder policy."""
    path = path or settings.dispatcher.workflow_file or DEFAULT_WORKFLOW
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as error:
        raise ConfigError(f"{path}: cannot read the workflow ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    try:
        workflow = Workflow.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"{path}: {where}: {first['msg']}") from None
    known = tuple(settings.policy.reward.stage_window_days)
    unknown = [name for name in workflow.names if name not in known]
    if unknown:
        raise ConfigError(
            f"{path}: stages {unknown} are not stages of the reminder policy "
            f"(expected names among {', '.join(known)})"
        )
    return workflow


def local_midnights(
    dates: Sequence[object], zones: np.ndarray, offset_days: int
) -> pd.DatetimeIndex:
    """UTC instants of local midnight ``offset_days`` after each date, in each row's zone."""
    day = pd.DatetimeIndex(pd.to_datetime(pd.Series(dates, dtype=object))).normalize()
    day = day + pd.Timedelta(days=offset_days)
    out = np.empty(len(day), dtype=np.int64)
    for zone in pd.unique(zones):
        rows = np.flatnonzero(zones == zone)
        local = day[rows].tz_localize(zone, ambiguous=False, nonexistent="shift_forward")
        out[rows] = local.as_unit("ns").asi8
    return pd.DatetimeIndex(out, tz="UTC")


def stage_starts(due_dates: Sequence[object], zones: np.ndarray, workflow: Workflow) -> np.ndarray:
    """(n, n_stages) UTC nanoseconds at which each stage starts for each invoice."""
    columns = [
        local_midnights(due_dates, zones, stage.offset_days).asi8 for stage in workflow.stages
    ]
    return np.column_stack(columns) if columns else np.empty((len(due_dates), 0), np.int64)


def current_stage(starts: np.ndarray, now: pd.Timestamp) -> np.ndarray:
    """Index of the latest stage started by ``now`` per invoice (-1: none yet)."""
    return (starts <= now.as_unit("ns").value).sum(axis=1) - 1
