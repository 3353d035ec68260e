"""The pandas reference implementation of the late-payment features in :mod:`features.catalog`.

One row per invoice; its cutoff ``t`` is the invoice's ``issued_at`` and it is the row's current
invoice. Each family pairs every row with the events of its customer (a merge on
``customer_id``), keeps the pairs that lie before ``t`` (boolean filters) and aggregates them per
row (groupby), so the code reads next to the catalogue. It is the speed reference for the Ibis
pipeline and an independent second implementation to compare it with, value by value. Memory
grows with (rows per customer) x (events per customer): fine at tens of thousands of customers.

Interpretations where the catalogue leaves a choice (the Ibis pipeline must make the same ones):

- ``settled_at``: payments run in (paid_at, payment_id) order; the invoice settles at the first
  payment whose running total reaches ``amount - 0.005``. An amount of at most half a cent needs
  no payment (the empty sum reaches it), so it settles at ``issued_at`` like an amount of 0.
- late: ``settled_at`` null or after ``due_end + grace``; settling exactly at that instant is on
  time. "Known before t" is ``known_at < t`` with no further test (valid data holds no payment
  before its issue date, so ``known_at >= issued_at``).
- "the invoice due last" and late_streak order invoices by (due_end, invoice_id); the last in
  that order is the most recent.
- partial_payment_share: among invoices whose first payment (same order) was made before ``t``,
  the share whose first payment was below ``amount - 0.005`` (it did not settle the invoice alone).
- open_balance: over invoices issued before ``t``, ``max(0, amount - payments with paid_at < t)``
  (payments matched by invoice_id), summed; 0.0 without such invoices.
- trailing bill window: other invoices with ``issued_at`` in ``[t - 183 days, t)``; windows are
  fixed durations (183 x 24 h), not local calendar days. The std is the sample std (ddof 1);
  "std 0" is tested exactly, as "all trailing amounts equal" (max == min), so float noise in a
  std of equal amounts never yields a huge z-score. amount_ratio is null when the trailing mean
  is null or 0, amount_to_fee when the fee is 0.
- engagement: messages with a channel; ``sent_at`` in ``[t - 90d, t)`` (``[t - 30d, t)`` for
  reminders_30d, any channel); delivered/opened/clicked count when their timestamp is ``< t``.
  opens_total and the open-hour features use every message with ``opened_at < t`` (any age, any
  channel). Local hour = hour + minute/60 + second/3600 with whole seconds (sub-second parts are
  dropped); the mode uses the integer hour. open_hour_mean is ``atan2`` mapped with ``mod 24`` (a
  result that rounds to 24.0 reads 0.0), so a mean that is 0 up to float noise may read
  23.99999...: compare it circularly.
- messages and responses belong to the customer in their own ``customer_id`` column, whose time
  zone gives the local times (opens, promise ends).
- promises_broken: promise_to_pay responses before ``t`` whose ``promise_end`` is before ``t`` and
  whose invoice was not settled at or before ``promise_end``; a promise without a known invoice
  counts as not settled (a null settled_at is later than any time, as in days_late_at).
- disputes_open: per invoice named by the responses (null invoice ids are ignored), disputes
  before ``t`` outnumber dispute_resolved responses before ``t``.
- opted_out_<c> reads opt_out responses only; consent_<c> is the customers snapshot (there is no
  consent history). The churn table feeds no feature of ``ALL_FEATURES``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from features.catalog import ALL_FEATURES, Feature, names
from paynudge.schemas import SCHEMAS
from paynudge.vocabulary import CHANNELS, consent_column

DAY = pd.Timedelta(days=1)
SETTLE_TOLERANCE = 0.005
"""Half a cent: payments this close to the amount settle an invoice."""
TRAILING_BILL_WINDOW = pd.Timedelta(days=183)
ENGAGEMENT_WINDOW = pd.Timedelta(days=90)
REMINDER_WINDOW = pd.Timedelta(days=30)
HARDSHIP_WINDOW = pd.Timedelta(days=90)
HOURS_PER_DAY = 24
FLOAT_DEFAULTS = {"open_balance": 0.0}
"""Float features that have a value (rather than null) when no event qualifies."""
ROW = "row"
"""Column naming the spine row (its invoice_id) in every pair frame."""


def late_payment_features(tables: dict[str, pd.DataFrame], grace_days: float = 0.0) -> pd.DataFrame:
    """One row per invoice: invoice_id, customer_id, cutoff (UTC), then features.catalog.names(ALL_FEATURES) in that order."""  # noqa: E501
    customers = tables["customers"]
    zones = customers.set_index("customer_id")["timezone"]
    facts = invoice_facts(
        tables["invoices"], tables["payments"], zones, pd.Timedelta(days=grace_days)
    )
    spine = facts[["invoice_id", "customer_id", "issued_at", "amount"]].rename(
        columns={"issued_at": "cutoff"}
    )
    invoice_pairs = customer_pairs(spine, facts.rename(columns={"invoice_id": "past_invoice_id"}))
    responses = response_events(_table(tables, "responses"), zones, facts)
    past_responses = past_pairs(spine, responses, at="occurred_at")
    families = [
        history_features(invoice_pairs, tables["payments"]),
        bill_features(spine, invoice_pairs, customers),
        account_features(spine, customers, past_responses),
        engagement_features(spine, _table(tables, "messages"), zones),
        response_features(past_responses),
    ]
    return _assemble(spine, families)


# --- local time -------------------------------------------------------------------------------


def _zone_rows(zones: pd.Series) -> dict[str, np.ndarray]:
    """Positions of the rows of each time zone (rows without a zone are left out)."""
    return pd.Series(np.arange(len(zones))).groupby(zones.to_numpy(), sort=False).indices


def local_midnight_to_utc(dates: pd.Series, zones: pd.Series) -> pd.Series:
    """00:00 of each calendar date in its row's IANA zone, as a UTC instant (NaT stays NaT).

    A nonexistent local midnight moves forward to the first valid instant; an ambiguous one
    reads as standard time.
    """
    naive = dates.to_numpy(dtype="datetime64[ns]")
    utc = np.full(len(dates), np.datetime64("NaT"), dtype="datetime64[ns]")
    for zone, rows in _zone_rows(zones).items():
        local = pd.DatetimeIndex(naive[rows]).tz_localize(
            zone, ambiguous=False, nonexistent="shift_forward"
        )
        utc[rows] = local.tz_convert(None).to_numpy()
    return pd.Series(utc, index=dates.index).dt.tz_localize("UTC")


def local_hours(instants: pd.Series, zones: pd.Series) -> pd.Series:
    """Fractional local hour (hour + minute/60 + whole second/3600) of UTC instants in a zone."""
    utc = instants.dt.tz_convert(None).to_numpy()
    wall = np.full(len(instants), np.datetime64("NaT"), dtype="datetime64[ns]")
    for zone, rows in _zone_rows(zones).items():
        local = pd.DatetimeIndex(utc[rows]).tz_localize("UTC").tz_convert(zone)
        wall[rows] = local.tz_localize(None).to_numpy()
    clock = pd.Series(wall, index=instants.index).dt
    return clock.hour + clock.minute / 60 + clock.second / 3600


# --- invoice facts and pairs ------------------------------------------------------------------


def invoice_facts(
    invoices: pd.DataFrame, payments: pd.DataFrame, zones: pd.Series, grace: pd.Timedelta
) -> pd.DataFrame:
    """Per invoice: amount, issued_at, due_end, first payment, settled_at, lateness, known_at."""
    invoice_zones = invoices["customer_id"].map(zones)
    facts = invoices[["invoice_id", "customer_id", "amount"]].assign(
        issued_at=local_midnight_to_utc(invoices["issue_date"], invoice_zones),
        due_end=local_midnight_to_utc(invoices["due_date"] + DAY, invoice_zones),
    )
    facts = facts.merge(payment_milestones(payments, facts), on="invoice_id", how="left")
    facts["first_partial"] = facts["first_partial"].eq(True)
    nothing_due = facts["amount"] <= SETTLE_TOLERANCE
    facts["settled_at"] = facts["settled_at"].mask(nothing_due, facts["issued_at"])
    deadline = facts["due_end"] + grace
    facts["late"] = ~(facts["settled_at"] <= deadline)
    facts["known_at"] = deadline.where(facts["late"], facts["settled_at"])
    return facts


def payment_milestones(payments: pd.DataFrame, facts: pd.DataFrame) -> pd.DataFrame:
    """Per paid invoice: first_paid_at, first_partial and settled_at (null if never settled)."""
    owed = facts[["invoice_id", "amount"]].rename(columns={"amount": "owed"})
    ordered = payments.merge(owed, on="invoice_id").sort_values(
        ["invoice_id", "paid_at", "payment_id"]
    )
    ordered["paid_so_far"] = ordered.groupby("invoice_id")["amount"].cumsum()
    settling = ordered[ordered["paid_so_far"] >= ordered["owed"] - SETTLE_TOLERANCE]
    first = ordered.drop_duplicates("invoice_id").set_index("invoice_id")
    settled = settling.drop_duplicates("invoice_id").set_index("invoice_id")["paid_at"]
    milestones = pd.DataFrame(
        {
            "first_paid_at": first["paid_at"],
            "first_partial": first["amount"] < first["owed"] - SETTLE_TOLERANCE,
            "settled_at": settled,
        }
    )
    return milestones.rename_axis("invoice_id").reset_index()


def customer_pairs(spine: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Every spine row (``row``, ``cutoff``) next to every event of its customer."""
    rows = spine[["invoice_id", "customer_id", "cutoff"]].rename(columns={"invoice_id": ROW})
    return rows.merge(events, on="customer_id")


def past_pairs(spine: pd.DataFrame, events: pd.DataFrame, at: str) -> pd.DataFrame:
    """The (row, event) pairs of one customer whose event time ``at`` is strictly before t."""
    pairs = customer_pairs(spine, events)
    return pairs[pairs[at] < pairs["cutoff"]]


def _table(tables: dict[str, pd.DataFrame], name: str) -> pd.DataFrame:
    """Table ``name``, or an empty one with its contract columns when the data set lacks it."""
    if name in tables:
        return tables[name]
    columns = SCHEMAS[name].columns.items()
    return pd.DataFrame({column: pd.Series(dtype=spec.dtype.type) for column, spec in columns})


def _rate(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, null where the denominator is 0 or null."""
    return numerator / denominator.where(denominator != 0)


# --- history ----------------------------------------------------------------------------------


def history_features(pairs: pd.DataFrame, payments: pd.DataFrame) -> pd.DataFrame:
    """The history family from (row, past invoice of the customer) pairs."""
    return pd.concat(
        [
            _history_counts(pairs),
            _days_late(pairs),
            _late_streak(pairs),
            _days_since_last_late(pairs),
            _open_balance(pairs, payments),
        ],
        axis=1,
    )


def _history_counts(pairs: pd.DataFrame) -> pd.DataFrame:
    """invoices_so_far, known_invoices, on_time_rate and partial_payment_share."""
    t = pairs["cutoff"]
    known = pairs["known_at"] < t
    first_paid = pairs["first_paid_at"] < t
    counts = (
        pd.DataFrame(
            {
                ROW: pairs[ROW],
                "invoices_so_far": pairs["issued_at"] < t,
                "known_invoices": known,
                "on_time": known & ~pairs["late"],
                "first_paid": first_paid,
                "partial": first_paid & pairs["first_partial"],
            }
        )
        .groupby(ROW)
        .sum()
    )
    counts["on_time_rate"] = _rate(counts["on_time"], counts["known_invoices"])
    counts["partial_payment_share"] = _rate(counts["partial"], counts["first_paid"])
    return counts[["invoices_so_far", "known_invoices", "on_time_rate", "partial_payment_share"]]


def _days_late(pairs: pd.DataFrame) -> pd.DataFrame:
    """Mean, max and last days_late_at(t) over invoices with due_end < t."""
    due = pairs[pairs["due_end"] < pairs["cutoff"]]
    paid_or_now = due["settled_at"].where(due["settled_at"] < due["cutoff"], due["cutoff"])
    days = ((paid_or_now - due["due_end"]) / DAY).clip(lower=0.0)
    ordered = due[[ROW, "due_end", "past_invoice_id"]].assign(days=days)
    by_row = ordered.sort_values([ROW, "due_end", "past_invoice_id"]).groupby(ROW)["days"]
    return pd.DataFrame(
        {
            "mean_days_late": by_row.mean(),
            "max_days_late": by_row.max(),
            "last_days_late": by_row.last(),
        }
    )


def _late_streak(pairs: pd.DataFrame) -> pd.Series:
    """Late known invoices counted back from the latest due_end up to the first on-time one."""
    known = pairs[pairs["known_at"] < pairs["cutoff"]].sort_values(
        [ROW, "due_end", "past_invoice_id"], ascending=[True, False, False]
    )
    on_time_seen = (~known["late"]).groupby(known[ROW]).cumsum()
    return (known["late"] & (on_time_seen == 0)).groupby(known[ROW]).sum().rename("late_streak")


def _days_since_last_late(pairs: pd.DataFrame) -> pd.Series:
    """Days from due_end + grace (the known_at of a late invoice) of the latest known late one."""
    late = pairs[pairs["late"] & (pairs["known_at"] < pairs["cutoff"])]
    by_row = late.groupby(ROW)
    return ((by_row["cutoff"].first() - by_row["known_at"].max()) / DAY).rename(
        "days_since_last_late"
    )


def _open_balance(pairs: pd.DataFrame, payments: pd.DataFrame) -> pd.Series:
    """Sum over invoices issued before t of max(0, amount - payments before t)."""
    issued = pairs.loc[
        pairs["issued_at"] < pairs["cutoff"], [ROW, "cutoff", "past_invoice_id", "amount"]
    ]
    paid = payments[["invoice_id", "paid_at", "amount"]].rename(
        columns={"invoice_id": "past_invoice_id", "amount": "paid"}
    )
    joined = issued.merge(paid, on="past_invoice_id", how="left")
    joined["paid"] = joined["paid"].where(joined["paid_at"] < joined["cutoff"], 0.0)
    per_invoice = joined.groupby([ROW, "past_invoice_id"]).agg(
        amount=("amount", "first"), paid=("paid", "sum")
    )
    balance = (per_invoice["amount"] - per_invoice["paid"]).clip(lower=0.0)
    return balance.groupby(level=ROW).sum().rename("open_balance")


# --- bill -------------------------------------------------------------------------------------


def bill_features(
    spine: pd.DataFrame, pairs: pd.DataFrame, customers: pd.DataFrame
) -> pd.DataFrame:
    """The current invoice's amount against the fee and the customer's trailing invoices."""
    window = (pairs["issued_at"] >= pairs["cutoff"] - TRAILING_BILL_WINDOW) & (
        pairs["issued_at"] < pairs["cutoff"]
    )
    trailing = pairs[window].groupby(ROW)["amount"].agg(["mean", "std", "min", "max", "count"])
    current = spine.set_index("invoice_id")
    trailing = trailing.reindex(current.index)
    fee = current["customer_id"].map(customers.set_index("customer_id")["monthly_fee"])
    spread = (trailing["count"] >= 2) & (trailing["max"] > trailing["min"])
    zscore = (current["amount"] - trailing["mean"]) / trailing["std"]
    return pd.DataFrame(
        {
            "amount": current["amount"],
            "amount_to_fee": _rate(current["amount"], fee),
            "trailing_mean_amount": trailing["mean"],
            "amount_ratio": _rate(current["amount"], trailing["mean"]),
            "amount_zscore": zscore.where(spread),
        }
    )


# --- account ----------------------------------------------------------------------------------


def account_features(
    spine: pd.DataFrame, customers: pd.DataFrame, past_responses: pd.DataFrame
) -> pd.DataFrame:
    """Profile columns, tenure, and opt-outs before t from responses (not the snapshot flags)."""
    consents = [consent_column(channel) for channel in CHANNELS]
    profile_columns = ["customer_id", "signup_date", "plan", "monthly_fee", "autopay", "language"]
    profile = spine[["invoice_id", "customer_id", "cutoff"]].merge(
        customers[profile_columns + consents], on="customer_id", how="left"
    )
    profile = profile.set_index("invoice_id")
    profile["tenure_days"] = (
        profile["cutoff"] - profile["signup_date"].dt.tz_localize("UTC")
    ) / DAY
    opted_out = _opt_outs(past_responses).reindex(profile.index, fill_value=False)
    contactable = sum(
        profile[consent_column(channel)] & ~opted_out[f"opted_out_{channel}"]
        for channel in CHANNELS
    )
    account = profile[["tenure_days", "plan", "monthly_fee", "autopay", "language", *consents]]
    return account.join(opted_out).assign(contactable_channels=contactable)


def _opt_outs(past: pd.DataFrame) -> pd.DataFrame:
    """Per row, whether an opt_out response for each channel came before t."""
    outs = past[past["type"] == "opt_out"]
    seen = outs.groupby([ROW, "channel"]).size().unstack("channel").reindex(columns=list(CHANNELS))
    return seen.notna().add_prefix("opted_out_")


# --- engagement -------------------------------------------------------------------------------


def engagement_features(
    spine: pd.DataFrame, messages: pd.DataFrame, zones: pd.Series
) -> pd.DataFrame:
    """Per-channel 90-day message funnels, reminders in 30 days and the open-hour profile."""
    sent = messages.loc[
        messages["channel"].notna(),
        ["customer_id", "channel", "sent_at", "delivered_at", "opened_at", "clicked_at"],
    ]
    pairs = past_pairs(spine, sent, at="sent_at")
    recent = pairs["sent_at"] >= pairs["cutoff"] - REMINDER_WINDOW
    reminders = recent.groupby(pairs[ROW]).sum().rename("reminders_30d")
    return pd.concat(
        [_channel_funnels(pairs), reminders, _open_hours(spine, messages, zones)], axis=1
    )


def _channel_funnels(pairs: pd.DataFrame) -> pd.DataFrame:
    """<c>_sent_90d and the delivered, open and click rates of those messages, per channel."""
    window = pairs[pairs["sent_at"] >= pairs["cutoff"] - ENGAGEMENT_WINDOW]
    t = window["cutoff"]
    steps = ["sent", "delivered", "opened", "clicked"]
    counts = (
        pd.DataFrame(
            {
                ROW: window[ROW],
                "channel": window["channel"],
                "sent": 1,
                "delivered": window["delivered_at"] < t,
                "opened": window["opened_at"] < t,
                "clicked": window["clicked_at"] < t,
            }
        )
        .groupby([ROW, "channel"])
        .sum()
        .unstack("channel")
    )
    counts = counts.reindex(columns=pd.MultiIndex.from_product([steps, CHANNELS]), fill_value=0)
    funnels = {}
    for channel in CHANNELS:
        sent, delivered = counts[("sent", channel)], counts[("delivered", channel)]
        funnels[f"{channel}_sent_90d"] = sent
        funnels[f"{channel}_delivered_rate_90d"] = _rate(delivered, sent)
        funnels[f"{channel}_open_rate_90d"] = _rate(counts[("opened", channel)], delivered)
        funnels[f"{channel}_click_rate_90d"] = _rate(counts[("clicked", channel)], delivered)
    return pd.DataFrame(funnels, index=counts.index)


def _open_hours(spine: pd.DataFrame, messages: pd.DataFrame, zones: pd.Series) -> pd.DataFrame:
    """opens_total and the circular mean, concentration and mode of local open hours before t."""
    opened = messages.loc[messages["opened_at"].notna(), ["customer_id", "opened_at"]]
    opened = opened.assign(hour=local_hours(opened["opened_at"], opened["customer_id"].map(zones)))
    pairs = past_pairs(spine, opened, at="opened_at")
    angle = 2 * np.pi * pairs["hour"] / HOURS_PER_DAY
    means = pd.DataFrame({ROW: pairs[ROW], "sin": np.sin(angle), "cos": np.cos(angle)})
    means = means.groupby(ROW).agg(
        opens_total=("sin", "size"), sin=("sin", "mean"), cos=("cos", "mean")
    )
    means["open_hour_mean"] = _hour_of_angle(np.arctan2(means["sin"], means["cos"]))
    means["open_hour_concentration"] = np.hypot(means["sin"], means["cos"])
    means["open_hour_mode"] = _mode_hour(pairs)
    return means[["opens_total", "open_hour_mean", "open_hour_concentration", "open_hour_mode"]]


def _hour_of_angle(angle: pd.Series) -> pd.Series:
    """Hours in [0, 24) of angles in radians; -1e-17 h would round to 24.0, so it reads 0.0."""
    hours = np.mod(angle * HOURS_PER_DAY / (2 * np.pi), HOURS_PER_DAY)
    return hours.where(hours < HOURS_PER_DAY, 0.0)


def _mode_hour(pairs: pd.DataFrame) -> pd.Series:
    """The most common whole local hour per row; the smallest hour on ties."""
    hours = pairs.assign(whole_hour=np.floor(pairs["hour"]))
    counts = hours.groupby([ROW, "whole_hour"]).size().rename("opens").reset_index()
    ranked = counts.sort_values([ROW, "opens", "whole_hour"], ascending=[True, False, True])
    return ranked.drop_duplicates(ROW).set_index(ROW)["whole_hour"]


# --- responses --------------------------------------------------------------------------------


def response_events(responses: pd.DataFrame, zones: pd.Series, facts: pd.DataFrame) -> pd.DataFrame:
    """Responses with the end of a promise (local) and when the invoice they name was settled."""
    promise_end = local_midnight_to_utc(
        responses["promised_date"] + DAY, responses["customer_id"].map(zones)
    )
    settled = responses["invoice_id"].map(facts.set_index("invoice_id")["settled_at"])
    events = responses[["customer_id", "invoice_id", "type", "occurred_at", "channel"]]
    return events.rename(columns={"invoice_id": "about_invoice_id"}).assign(
        promise_end=promise_end, settled_at=settled
    )


def response_features(past: pd.DataFrame) -> pd.DataFrame:
    """Promises made and broken, disputes in total and open, and recent hardship, before t."""
    t, kind = past["cutoff"], past["type"]
    promise = kind == "promise_to_pay"
    kept = past["settled_at"] <= past["promise_end"]
    counts = (
        pd.DataFrame(
            {
                ROW: past[ROW],
                "promises_made": promise,
                "promises_broken": promise & (past["promise_end"] < t) & ~kept,
                "disputes_total": kind == "dispute",
                "hardship_90d": (kind == "hardship") & (past["occurred_at"] >= t - HARDSHIP_WINDOW),
            }
        )
        .groupby(ROW)
        .sum()
    )
    counts["hardship_90d"] = counts["hardship_90d"] > 0
    return counts.join(_open_disputes(past))


def _open_disputes(past: pd.DataFrame) -> pd.Series:
    """Invoices with more disputes than dispute_resolved responses before t, per row."""
    disputes = past[
        past["about_invoice_id"].notna() & past["type"].isin(["dispute", "dispute_resolved"])
    ]
    balance = pd.Series(np.where(disputes["type"] == "dispute", 1, -1), index=disputes.index)
    per_invoice = balance.groupby([disputes[ROW], disputes["about_invoice_id"]]).sum()
    return (per_invoice > 0).groupby(level=0).sum().rename("disputes_open")


# --- assembly ---------------------------------------------------------------------------------


def _assemble(spine: pd.DataFrame, families: list[pd.DataFrame]) -> pd.DataFrame:
    """Join the families to the spine, fill the no-event values, type and sort the rows."""
    features = spine.set_index("invoice_id")[["customer_id", "cutoff"]].join(families)
    for feature in ALL_FEATURES:
        features[feature.name] = _typed(features[feature.name], feature)
    columns = ["invoice_id", "customer_id", "cutoff", *names(ALL_FEATURES)]
    table = features.rename_axis("invoice_id").reset_index()[columns]
    return table.sort_values(["cutoff", "invoice_id"], ignore_index=True)


def _typed(values: pd.Series, feature: Feature) -> pd.Series:
    """``values`` in the dtype of the feature's kind; counts 0 and flags False without events."""
    if feature.kind == "int":
        return values.fillna(0).astype("int64")
    if feature.kind == "bool":
        return values.eq(True)
    if feature.kind == "float" and feature.name in FLOAT_DEFAULTS:
        return values.astype("float64").fillna(FLOAT_DEFAULTS[feature.name])
    if feature.kind == "float":
        return values.astype("float64")
    return values.astype(object)
