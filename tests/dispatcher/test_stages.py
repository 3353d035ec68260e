"""Workflow YAML: the packaged stages, clear errors, stage starts at local midnight."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dispatcher.stages import current_stage, load_workflow, stage_starts
from paynudge.config import Settings
from paynudge.errors import ConfigError


def test_packaged_workflow_matches_the_policy_stages(settings: Settings) -> None:
    workflow = load_workflow(settings)
    assert workflow.names == ("pre_due", "due", "overdue_3", "overdue_10", "overdue_30")
    assert [s.offset_days for s in workflow.stages] == [-5, 0, 3, 10, 30]
    assert workflow.stages[-1].action == "case_task"
    assert set(workflow.names) <= set(settings.policy.reward.stage_window_days)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("stages: [{name: reminder_1, offset_days: 0}]\nmax_send_delay_hours: 1\n"
         "offers: {extension_days: 14, instalments: 3}\ncurrency: EUR\n",
         "not stages of the reminder policy"),
        ("stages: [{name: due, offset_days: 3}, {name: pre_due, offset_days: -5}]\n"
         "max_send_delay_hours: 1\noffers: {extension_days: 14, instalments: 3}\ncurrency: EUR\n",
         "increasing offset_days"),
        ("stages: [{name: due, offset_days: 0, action: shout}]\nmax_send_delay_hours: 1\n"
         "offers: {extension_days: 14, instalments: 3}\ncurrency: EUR\n", "stages.0.action"),
        ("stages: [{name: due, offset_days: 0}]\n", "max_send_delay_hours"),
        ("stages: [", "not valid YAML"),
    ],
)  # fmt: skip
def test_bad_workflow_files_name_file_and_field(
    settings: Settings, tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "workflow.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message) as error:
        load_workflow(settings, path)
    assert str(path) in str(error.value)


def test_stages_start_at_local_midnight_across_dst(settings: Settings) -> None:
    workflow = load_workflow(settings)
    zones = np.array(["Europe/Amsterdam", "Asia/Tokyo"], dtype=object)
    starts = stage_starts(["2024-03-28", "2024-03-28"], zones, workflow)
    amsterdam = pd.DatetimeIndex(starts[0], tz="UTC").tz_convert("Europe/Amsterdam")
    assert list(amsterdam.strftime("%Y-%m-%d %H:%M")) == [
        "2024-03-23 00:00", "2024-03-28 00:00", "2024-03-31 00:00", "2024-04-07 00:00",
        "2024-04-27 00:00",
    ]  # fmt: skip
    assert amsterdam[2].utcoffset() != amsterdam[3].utcoffset()  # DST began on 31 March
    now = pd.Timestamp("2024-03-28 06:00", tz="Asia/Tokyo")
    assert list(current_stage(starts, now)) == [0, 1]  # still 27 March 22:00 in Amsterdam
