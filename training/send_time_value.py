"""What the send-time model is worth: true open rates of the hours it recommends.

For each test message the model's recommended hour is the allowed local hour (``send_hours``)
with the highest predicted open probability, every other feature of the row fixed. The
simulation's ground truth then gives the true open probability of the same message sent at the
middle of that hour, on the same local day; its mean over the test rows is the open rate the
model would get. The references are the single hour with the best open rate in the training
rows (the global-best-hour baseline), the rule baseline (the customer's most common past open
hour, else the global best) and the hours the logging policy actually used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulation.truth import GroundTruth, response_probabilities
from training.splits import Split

if TYPE_CHECKING:
    from training.model import CalibratedLightGBM

HOUR_FEATURE = "send_hour"
TIME_COLUMN = "cutoff"
MID_HOUR = pd.Timedelta(minutes=30)


@dataclass(frozen=True)
class SendTimeValue:
    """Mean true open probability of the test messages under each choice of send hour."""

    open_rate_model: float
    open_rate_global_best_hour: float
    open_rate_rule: float
    open_rate_logged: float
    global_best_hour: int
    rows: int

    def metrics(self) -> dict[str, float]:
        """The open rates as MLflow metric names."""
        return {
            "true_open_rate_model_hour": self.open_rate_model,
            "true_open_rate_global_best_hour": self.open_rate_global_best_hour,
            "true_open_rate_rule_hour": self.open_rate_rule,
            "true_open_rate_logged_hour": self.open_rate_logged,
        }


def global_best_hour(train: pd.DataFrame, label: str, hours: np.ndarray) -> int:
    """The allowed hour with the highest observed open rate in the training rows."""
    rates = train.groupby(HOUR_FEATURE)[label].mean().reindex(hours)
    return int(rates.idxmax())


def model_hours(model: CalibratedLightGBM, features: pd.DataFrame, hours: np.ndarray) -> np.ndarray:
    """Per row, the allowed hour with the highest predicted open probability."""
    stacked = pd.concat([features.assign(**{HOUR_FEATURE: hour}) for hour in hours])
    probability = model.predict_proba(stacked)[:, 1].reshape(len(hours), len(features))
    return hours[np.argmax(probability, axis=0)]


def local_send_times(sent: pd.Series, zones: pd.Series, hour: np.ndarray | int) -> pd.Series:
    """UTC instants at ``hour``:30 local time on the local day of each ``sent`` instant."""
    hours = pd.Series(np.broadcast_to(hour, (len(sent),)), index=sent.index)
    result = pd.Series(pd.NaT, index=sent.index, dtype="datetime64[ns, UTC]")
    for zone in zones.unique():
        rows = (zones == zone).to_numpy()
        day = sent[rows].dt.tz_convert(zone).dt.tz_localize(None).dt.normalize()
        local = day + pd.to_timedelta(hours[rows], unit="h") + MID_HOUR
        on_clock = local.dt.tz_localize(zone, ambiguous=False, nonexistent="shift_forward")
        result[rows] = on_clock.dt.tz_convert("UTC")
    return result


def earlier_messages(split: Split) -> pd.Series:
    """Messages sent earlier on the same invoice (the ground truth's ``attempts``), by row."""
    rows = pd.concat([split.train, split.valid, split.test])[["invoice_id", TIME_COLUMN]]
    ordered = rows.reset_index(drop=True).sort_values(TIME_COLUMN, kind="stable")
    counts = ordered.groupby("invoice_id").cumcount().sort_index().to_numpy()
    return pd.Series(counts[-len(split.test) :], index=split.test.index)


def true_open_rate(
    truth: GroundTruth, test: pd.DataFrame, attempts: pd.Series, send_time: pd.Series
) -> float:
    """Mean true open probability of the test messages sent at ``send_time``."""
    probabilities = response_probabilities(
        truth,
        test["invoice_id"],
        test["channel"].to_numpy(),
        test["tone"].to_numpy(),
        test["offer"].to_numpy(),
        pd.DatetimeIndex(send_time).as_unit("ns"),  # the truth counts days in nanoseconds
        attempts.to_numpy(),
    )
    return float(probabilities["p_open"].mean())


def send_time_value(
    model: CalibratedLightGBM,
    split: Split,
    label: str,
    truth: GroundTruth,
    send_hours: tuple[int, int],
) -> SendTimeValue:
    """True open rates of the model's recommended hours against the baselines' hours."""
    test = split.test
    hours = np.arange(send_hours[0], send_hours[1] + 1)
    best = global_best_hour(split.train, label, hours)
    mode = test["open_hour_mode"]
    choices: dict[str, np.ndarray | int] = {
        "model": model_hours(model, test[list(model.feature_names_)], hours),
        "global_best": best,
        "rule": np.where(mode.between(hours[0], hours[-1]), mode.fillna(best), best).astype(int),
    }
    zones = truth.customers.loc[test["customer_id"], "timezone"].set_axis(test.index)
    attempts = earlier_messages(split)
    rates = {
        choice: true_open_rate(
            truth, test, attempts, local_send_times(test[TIME_COLUMN], zones, hour)
        )
        for choice, hour in choices.items()
    }
    return SendTimeValue(
        open_rate_model=rates["model"],
        open_rate_global_best_hour=rates["global_best"],
        open_rate_rule=rates["rule"],
        open_rate_logged=true_open_rate(truth, test, attempts, test[TIME_COLUMN]),
        global_best_hour=best,
        rows=len(test),
    )
