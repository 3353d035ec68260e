"""Engagement features: how the customer reacted to recent reminders, and when they read them."""

from __future__ import annotations

import math

import ibis
from ibis import _

from paynudge.vocabulary import CHANNELS

ENGAGEMENT_DAYS = 90
FATIGUE_DAYS = 30


def _rate(numerator: ibis.Value, denominator: ibis.Value) -> ibis.Value:
    return ibis.ifelse(denominator > 0, numerator / denominator.cast("float64"), ibis.null())


def channel_features(spine: ibis.Table, messages: ibis.Table) -> ibis.Table:
    """Per-channel sent, delivered, open and click rates over the trailing 90 days; fatigue."""
    s = spine.select("row_id", "customer_id", "cutoff")
    start = s.cutoff - ibis.interval(days=ENGAGEMENT_DAYS)
    m = messages.select(
        "customer_id", "channel", "sent_at", "delivered_at", "opened_at", "clicked_at"
    )
    j = s.join(m, [s.customer_id == m.customer_id, m.sent_at < s.cutoff, m.sent_at >= start])
    j = j.mutate(
        delivered=_.delivered_at < _.cutoff,
        opened=_.opened_at < _.cutoff,
        clicked=_.clicked_at < _.cutoff,
        recent=_.sent_at >= _.cutoff - ibis.interval(days=FATIGUE_DAYS),
    )
    counts = {}
    for c in CHANNELS:
        on = j.channel == c
        counts[f"{c}_sent"] = on.sum()
        counts[f"{c}_delivered"] = (on & j.delivered.fill_null(False)).sum()
        counts[f"{c}_opened"] = (on & j.opened.fill_null(False)).sum()
        counts[f"{c}_clicked"] = (on & j.clicked.fill_null(False)).sum()
    agg = j.group_by("row_id").aggregate(reminders_30d=j.recent.sum(), **counts)
    rates = {}
    for c in CHANNELS:
        rates[f"{c}_sent_90d"] = agg[f"{c}_sent"]
        rates[f"{c}_delivered_rate_90d"] = _rate(agg[f"{c}_delivered"], agg[f"{c}_sent"])
        rates[f"{c}_open_rate_90d"] = _rate(agg[f"{c}_opened"], agg[f"{c}_delivered"])
        rates[f"{c}_click_rate_90d"] = _rate(agg[f"{c}_clicked"], agg[f"{c}_delivered"])
    return agg.select("row_id", "reminders_30d", **rates)


def open_hour_features(spine: ibis.Table, messages: ibis.Table) -> ibis.Table:
    """Circular mean, concentration and mode of the local hours of all opens before the cutoff."""
    s = spine.select("row_id", "customer_id", "cutoff")
    m = messages.filter(_.opened_at.notnull()).select("customer_id", "opened_at", "open_hour")
    j = s.join(m, [s.customer_id == m.customer_id, m.opened_at < s.cutoff])
    angle = j.open_hour * (2 * math.pi / 24.0)
    stats = j.group_by("row_id").aggregate(
        opens_total=j.count(), mean_sin=angle.sin().mean(), mean_cos=angle.cos().mean()
    )
    hours = (
        j.mutate(hour=j.open_hour.floor().cast("int64"))
        .group_by(["row_id", "hour"])
        .aggregate(n=_.count())
    )
    best = ibis.row_number().over(group_by="row_id", order_by=[ibis.desc("n"), "hour"])
    mode = (
        hours.mutate(rank=best)
        .filter(_.rank == 0)
        .select("row_id", open_hour_mode=_.hour.cast("float64"))
    )
    mean_angle = stats.mean_sin.atan2(stats.mean_cos)
    mean_hour = (mean_angle * (24.0 / (2 * math.pi)) + 24.0) % 24.0
    stats = stats.select(
        "row_id",
        "opens_total",
        open_hour_mean=mean_hour,
        open_hour_concentration=(stats.mean_sin**2 + stats.mean_cos**2).sqrt(),
    )
    return stats.left_join(mode, "row_id").select(stats, mode.open_hour_mode)
