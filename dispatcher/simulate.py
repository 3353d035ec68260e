"""Simulated cycles: the dispatcher against the simulated world, on a simulated clock.

Each day the dispatcher plans and sends (deciding through the decision service), then the world
answers by its ground truth (:mod:`simulation.truth`), through the inbound app's signed webhooks
and links like any provider would: deliveries, opens and clicks, opt-outs, replies (promises,
hardship, disputes, in the customer's language, classified by the reply classifier), churn and
payments. Payment chances come from :func:`simulation.truth.action_probabilities` for the action
actually sent, with the lift of earlier opened reminders. Every event is applied at its own
instant, in order. The same customers run once with the learned policy and once with the
static ladder; both are summarised by the collection KPIs.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select
from starlette.testclient import TestClient

from dispatcher.cycle import Dispatcher
from dispatcher.inbound import inbound_app
from dispatcher.kpi_export import kpi_tables, write_kpi_tables
from dispatcher.kpis import KpiReport, compute_kpis
from dispatcher.loading import load_tables
from dispatcher.local_service import LocalDecisionService
from dispatcher.state import Message
from dispatcher.tokens import TokenSigner
from dispatcher.webhooks import SIGNATURE_HEADER, WebhookVerifier
from paynudge.config import Settings
from paynudge.errors import PayNudgeError
from serving.client import DecisionClient
from serving.decision import Components
from serving.decision_log import DecisionLog
from simulation import behaviour
from simulation.logging_policy import action_code
from simulation.truth import GroundTruth, action_probabilities, response_probabilities
from simulation.world import World

DAY = timedelta(days=1)
MONTH_DAYS = 30.4
SERVICE_URL = "http://decisions.local"
REPLIES = {
    "en": {
        "opt_out": "STOP",
        "dispute": "This invoice is wrong, I dispute it.",
        "hardship": "I lost my job and cannot pay right now, can I pay in parts?",
        "promise_to_pay": "I will pay on {day} {month}",
    },
    "nl": {
        "opt_out": "STOPPEN",
        "dispute": "Deze factuur klopt niet, ik ben het er niet mee eens.",
        "hardship": "Ik ben mijn baan kwijt en kan nu niet betalen, kan ik in termijnen betalen?",
        "promise_to_pay": "ik betaal op {day} {month}",
    },
}
MONTHS = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "nl": (
        "januari",
        "februari",
        "maart",
        "april",
        "mei",
        "juni",
        "juli",
        "augustus",
        "september",
        "oktober",
        "november",
        "december",
    ),
}


@dataclass
class SimulatedClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RunResult:
    """One simulated run: its KPI report, tables and what the world did."""

    name: str
    kpis: KpiReport
    tables: dict[str, pd.DataFrame]
    events: dict[str, int] = field(default_factory=dict)


class SimulatedWorld:
    """The customers of a simulated world answering one dispatcher through its inbound app."""

    def __init__(self, world: World, dispatcher: Dispatcher, settings: Settings, seed: int) -> None:
        self.truth = GroundTruth.from_world(world)
        self.engagement = world.config.parameters.engagement
        self.customers = world.tables["customers"].set_index("customer_id")
        self.dispatcher = dispatcher
        self.clock = SimulatedClock(pd.Timestamp(world.config.start, tz="UTC").to_pydatetime())
        self.http = TestClient(inbound_app(settings, dispatcher.sessions, self.clock))
        self.verifier = WebhookVerifier.from_settings(settings)
        self.tokens = TokenSigner.from_settings(settings)
        self.rng = np.random.default_rng(seed)
        self.queue: list[tuple[datetime, int, str, dict]] = []
        self.counter = itertools.count()
        self.seen: set[str] = set()
        self.opens: dict[str, pd.Timestamp] = {}
        self.history = pd.DataFrame(
            columns=["message_id", "invoice_id", "channel", "tone", "offer", "sent_at"]
        )
        self.disputed: set[str] = set()
        self.hardship: set[str] = set()
        self.churned: set[str] = set()
        self.counts: dict[str, int] = {}

    def day(self, start: datetime) -> None:
        """One simulated day: dispatch, then the world's answers, in time order."""
        end = start + DAY
        self.clock.now = end
        self.dispatcher.run_once(end, close=False)
        sent = self._new_messages()
        self._answer(sent)
        self._payments(start, end, sent)
        self._churn(start, end)
        self._apply_until(end)
        self.dispatcher.close_loop(end)  # the day's answers: promises, silent invoices, feedback

    def _new_messages(self) -> pd.DataFrame:
        with self.dispatcher.sessions() as session:
            rows = session.execute(
                select(
                    Message.message_id,
                    Message.invoice_id,
                    Message.customer_id,
                    Message.channel,
                    Message.tone,
                    Message.offer,
                    Message.sent_at,
                ).where(Message.status == "sent")
            ).all()
        frame = pd.DataFrame(
            rows,
            columns=[
                "message_id",
                "invoice_id",
                "customer_id",
                "channel",
                "tone",
                "offer",
                "sent_at",
            ],
        )
        frame = frame[~frame["message_id"].isin(self.seen)].reset_index(drop=True)
        self.seen.update(frame["message_id"])
        frame["sent_at"] = pd.to_datetime(frame["sent_at"], utc=True)
        return frame

    def _answer(self, sent: pd.DataFrame) -> None:
        """Delivery, open, click, opt-out and replies of each new message, by the ground truth."""
        if sent.empty:
            return
        e, n, rng = self.engagement, len(sent), self.rng
        attempts = sent.groupby("invoice_id").cumcount().to_numpy() + self._attempts(sent)
        truth = response_probabilities(
            self.truth,
            sent["invoice_id"],
            sent["channel"],
            sent["tone"],
            sent["offer"],
            sent["sent_at"],
            attempts,
        )
        p_deliver = sent["channel"].map(e.delivery_share).to_numpy(dtype=float)
        delivered = rng.random(n) < p_deliver
        opened = delivered & (rng.random(n) < truth["p_open"].to_numpy() / p_deliver)
        delay = rng.exponential(e.open_delay_mean_hours, n)
        open_at = sent["sent_at"] + pd.to_timedelta(delay, unit="h")
        opted = delivered & (rng.random(n) < truth["p_opt_out"].to_numpy() / p_deliver)
        clicks = (
            opened
            & sent["channel"].isin(e.link_channels).to_numpy()
            & (rng.random(n) < e.click_otherwise_share)
        )
        for i, row in enumerate(sent.itertuples()):
            at = row.sent_at.to_pydatetime()
            status = "delivered" if delivered[i] else "bounced"
            self._push(
                at + timedelta(minutes=1),
                "delivery",
                {"message_id": row.message_id, "status": status, "at": at + timedelta(minutes=1)},
            )
            if opened[i]:
                self.opens[row.message_id] = open_at.iloc[i]
                self._push(open_at.iloc[i].to_pydatetime(), "open", {"message_id": row.message_id})
                if clicks[i]:
                    click_at = open_at.iloc[i].to_pydatetime() + timedelta(minutes=1)
                    self._push(click_at, "click", {"message_id": row.message_id})
                self._reply(row, open_at.iloc[i].to_pydatetime())
            if opted[i]:
                self._opt_out(row, at + timedelta(hours=1))
        self.history = pd.concat(
            [self.history, sent.drop(columns="customer_id")], ignore_index=True
        )

    def _attempts(self, sent: pd.DataFrame) -> np.ndarray:
        before = self.history["invoice_id"].value_counts()
        return sent["invoice_id"].map(before).fillna(0).to_numpy(dtype=np.int64)

    def _reply(self, row: object, opened_at: datetime) -> None:
        """A dispute of a disputed invoice, hardship of a shocked one, or sometimes a promise."""
        e, invoice = self.engagement, self.truth.invoices.loc[row.invoice_id]  # type: ignore[attr-defined]
        customer = row.customer_id  # type: ignore[attr-defined]
        at = opened_at + timedelta(minutes=30)
        if bool(invoice["disputed"]) and row.invoice_id not in self.disputed:  # type: ignore[attr-defined]
            self.disputed.add(row.invoice_id)  # type: ignore[attr-defined]
            return self._send_reply(row, "dispute", at)
        if (
            bool(invoice["income_shock"])
            and customer not in self.hardship
            and (self.rng.random() < e.hardship_share_when_shocked)
        ):
            self.hardship.add(customer)
            return self._send_reply(row, "hardship", at)
        able = behaviour.sigmoid(np.array([invoice["capacity"]]))[0]
        if self.rng.random() < e.promise_base_share + e.promise_constrained_share * (1 - able):
            promised = (at + timedelta(days=float(self.rng.uniform(*e.broken_promise_days)))).date()
            return self._send_reply(row, "promise_to_pay", at, promised)
        return None

    def _send_reply(self, row: object, intent: str, at: datetime, promised: object = None) -> None:
        language = self._language(row.customer_id)  # type: ignore[attr-defined]
        text = REPLIES[language][intent]
        if promised is not None:
            text = text.format(day=promised.day, month=MONTHS[language][promised.month - 1])  # type: ignore[attr-defined]
        channel = row.channel if row.channel in ("email", "sms") else "email"  # type: ignore[attr-defined]
        self._push(
            at,
            "replies",
            {
                "message_id": row.message_id,
                "channel": channel,  # type: ignore[attr-defined]
                "text": text,
                "received_at": at,
            },
        )
        self.counts[f"reply_{intent}"] = self.counts.get(f"reply_{intent}", 0) + 1

    def _opt_out(self, row: object, at: datetime) -> None:
        if row.channel == "email":  # type: ignore[attr-defined]
            self._push(at, "unsubscribe", {"message_id": row.message_id})  # type: ignore[attr-defined]
        else:
            language = self._language(row.customer_id)  # type: ignore[attr-defined]
            self._push(
                at,
                "replies",
                {
                    "message_id": row.message_id,
                    "channel": row.channel,  # type: ignore[attr-defined]
                    "text": REPLIES[language]["opt_out"],
                    "received_at": at,
                },
            )
        self.counts["opt_out"] = self.counts.get("opt_out", 0) + 1

    def _language(self, customer_id: str) -> str:
        language = str(self.customers.at[customer_id, "language"])
        return language if language in REPLIES else "en"

    def _payments(self, start: datetime, end: datetime, sent: pd.DataFrame) -> None:
        """Each open invoice pays within the day with its true chance, after the day's message."""
        with self.dispatcher.sessions() as session:
            from dispatcher.state import Invoice

            open_ids = list(
                session.scalars(
                    select(Invoice.invoice_id).where(
                        Invoice.paid_at.is_(None), Invoice.issue_date <= start.date()
                    )
                )
            )
        ids = [i for i in open_ids if i in self.truth.invoices.index]
        if not ids:
            return
        last = sent.sort_values("sent_at").drop_duplicates("invoice_id", keep="last")
        last = last.set_index("invoice_id").reindex(ids)
        truth = dataclasses.replace(
            self.truth, opens=pd.Series(self.opens, dtype="datetime64[ns, UTC]")
        )
        history = self.history[~self.history["message_id"].isin(last["message_id"].dropna())]
        chances = action_probabilities(
            truth,
            ids,
            pd.Series([pd.Timestamp(start)] * len(ids)),
            start=pd.Series([pd.Timestamp(start)] * len(ids)),
            deadlines={"day": pd.Series([pd.Timestamp(end)] * len(ids))},
            history=history,
        )["p_day"]
        codes = np.zeros(len(ids), dtype=np.int64)
        has = last["channel"].notna().to_numpy()
        if has.any():
            codes[has] = action_code(
                *(self._codes(last[c][has], c) for c in ("channel", "tone", "offer"))
            )
        p = chances[np.arange(len(ids)), codes]
        pays = self.rng.random(len(ids)) < p
        after = pd.to_datetime(last["sent_at"], utc=True).fillna(pd.Timestamp(start)).to_numpy()
        for k in np.flatnonzero(pays):
            begin = pd.Timestamp(after[k])
            at = (begin + (pd.Timestamp(end) - begin) * float(self.rng.random())).to_pydatetime()
            invoice = self.truth.invoices.loc[ids[k]]
            amount = self._amount(ids[k])
            message = last["message_id"].iloc[k]
            if (
                isinstance(message, str)
                and message in self.opens
                and self.rng.random() < (self.engagement.click_if_paying_share)
            ):
                self._push(at - timedelta(minutes=2), "click", {"message_id": message})
            self._push(
                at,
                "payments",
                {
                    "payment_id": f"SIM-{ids[k]}",
                    "invoice_id": ids[k],
                    "amount": amount,
                    "paid_at": at,
                    "method": "card",
                },
            )
            del invoice
        self.counts["payments"] = self.counts.get("payments", 0) + int(pays.sum())

    def _amount(self, invoice_id: str) -> float:
        from dispatcher.state import Invoice

        with self.dispatcher.sessions() as session:
            return float(session.get(Invoice, invoice_id).amount)  # type: ignore[union-attr]

    @staticmethod
    def _codes(values: pd.Series, column: str) -> np.ndarray:
        from paynudge.vocabulary import CHANNELS, OFFERS, TONES

        vocabulary = {"channel": CHANNELS, "tone": TONES, "offer": OFFERS}[column]
        return values.map({name: i for i, name in enumerate(vocabulary)}).to_numpy(dtype=np.int64)

    def _churn(self, start: datetime, end: datetime) -> None:
        people = self.truth.customers
        alive = people.index[~people.index.isin(list(self.churned))]
        months = (end - start) / timedelta(days=MONTH_DAYS)
        hazard = people.loc[alive, "churn_monthly"].to_numpy(dtype=float) * months
        leave = self.rng.random(len(alive)) < -np.expm1(-hazard)
        for customer in alive[leave]:
            self.churned.add(customer)
            at = start + (end - start) * float(self.rng.random())
            self._push(at, "customers", {"customer_id": customer, "event": "churned", "at": at})
        self.counts["churned"] = len(self.churned)

    def _push(self, at: datetime, kind: str, payload: dict) -> None:
        heapq.heappush(self.queue, (at, next(self.counter), kind, payload))

    def _apply_until(self, end: datetime) -> None:
        while self.queue and self.queue[0][0] <= end:
            at, number, kind, payload = heapq.heappop(self.queue)
            self.clock.now = at
            self._call(kind, payload, f"sim-{number}")
        self.clock.now = end

    def _call(self, kind: str, payload: dict, event_id: str) -> None:
        if kind in ("open", "click", "unsubscribe"):
            purpose = {"open": "open", "click": "click", "unsubscribe": "unsubscribe"}[kind]
            route = {"open": "o", "click": "c", "unsubscribe": "u"}[kind]
            token = self.tokens.sign(purpose, payload["message_id"], self.clock.now)
            method = self.http.post if kind == "unsubscribe" else self.http.get
            answer = method(f"/{route}/{token}", follow_redirects=False)
            ok = answer.status_code in (200, 302)
        else:
            body = json.dumps({"event_id": event_id, **payload}, default=str).encode()
            headers = {
                SIGNATURE_HEADER: self.verifier.sign(body, self.clock.now),
                "content-type": "application/json",
            }
            answer = self.http.post(f"/webhooks/{kind}", content=body, headers=headers)
            ok = answer.status_code == 200
        if not ok:
            raise PayNudgeError(f"simulation: the inbound app refused {kind}: {answer.text[:300]}")


def run_simulation(
    world: World,
    settings: Settings,
    components: Components,
    months: int,
    name: str,
    ladder: bool = False,
    seed: int = 0,
) -> RunResult:
    """Run the dispatcher against ``world`` for ``months`` simulated months (state in
    HOME/simulate/name, started afresh: an earlier run's invoices and events would collide with
    another world's). The policy's draws use ``dispatcher.decision_seed``, else ``seed``: the
    same world and seed give the same run."""
    home = settings.home / "simulate" / name
    shutil.rmtree(home, ignore_errors=True)
    draws = settings.dispatcher.decision_seed
    dispatch = {"outbox_dir": home / "outbox", "decision_seed": seed if draws is None else draws}
    run_settings = settings.model_copy(
        update={
            "database_url": f"sqlite:///{(home / 'dispatcher.db').absolute()}",
            "dispatcher": settings.dispatcher.model_copy(update=dispatch),
        }
    )
    log = DecisionLog(home / "decisions.db")
    client = DecisionClient(SERVICE_URL, transport=LocalDecisionService(components, log, ladder))
    dispatcher = Dispatcher(run_settings, client=client)
    try:
        customers = world.tables["customers"].copy()
        for column in [c for c in customers.columns if c.startswith("opted_out_")]:
            customers[column] = False
        tables = {
            "customers": customers,
            "invoices": world.tables["invoices"],
            "payments": world.tables["payments"].iloc[:0],
        }
        load_tables(dispatcher.sessions, tables, dispatcher.workflow)
        simulated = SimulatedWorld(world, dispatcher, run_settings, seed)
        start = pd.Timestamp(world.config.start, tz="UTC").to_pydatetime()
        days = round(months * MONTH_DAYS)
        for offset in range(days):
            simulated.day(start + offset * DAY)
        tables = kpi_tables(dispatcher.sessions)
        write_kpi_tables(tables, home / "kpi_tables")
        end = pd.Timestamp(start + days * DAY)
        report = compute_kpis(
            tables,
            settings.policy.channel_costs,
            settings.kpis,
            as_of=end,
            grace_days=settings.late_grace_days,
        )
        return RunResult(name, report, tables, dict(simulated.counts))
    finally:
        dispatcher.close()


def decision_log_path(settings: Settings, name: str) -> Path:
    return settings.home / "simulate" / name / "decisions.db"
