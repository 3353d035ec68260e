"""The inbound app on a tiny world: signed webhooks applied once, forged and replayed calls
changing nothing, links on signed tokens, and the effects of replies on the state."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pandas as pd
import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from dispatcher.channels.transports import outbox_folder
from dispatcher.cycle import Dispatcher, LoopReport
from dispatcher.feedback import FeedbackReport, feedback_of, post_feedback, unposted
from dispatcher.hardship import decision_overrides
from dispatcher.inbound import inbound_app
from dispatcher.links import LinkMaker
from dispatcher.loading import load_tables
from dispatcher.responses import review_promises
from dispatcher.state import (
    AuditEntry,
    CaseTask,
    Invoice,
    Message,
    MessageEvent,
    Outcome,
    Promise,
    Reminder,
    Reply,
    Suppression,
    WebhookEvent,
)
from dispatcher.tasks import close_task, export_tasks, open_silent_tasks, task_frame
from dispatcher.tokens import TokenSigner
from dispatcher.webhooks import SIGNATURE_HEADER, WebhookVerifier
from serving.client import DecisionClient
from simulation.world import World

T0 = pd.Timestamp("2024-03-20", tz="UTC").to_pydatetime()
NOW = T0 + timedelta(hours=1)


@pytest.fixture
def setup(tiny_world: World, settings, kit):
    client = DecisionClient(
        "http://decisions.test", kit.token, transport=httpx.MockTransport(kit.fake_decide())
    )
    dispatcher = Dispatcher(settings, client=client)
    tables = {**tiny_world.tables, "payments": tiny_world.tables["payments"].iloc[:0]}
    load_tables(dispatcher.sessions, tables, dispatcher.workflow)
    dispatcher.run_once(T0)  # plans: messages pending at 10:00 local
    app = TestClient(inbound_app(settings, dispatcher.sessions, clock=lambda: NOW))
    yield (
        dispatcher,
        app,
        WebhookVerifier.from_settings(settings),
        TokenSigner.from_settings(settings),
    )
    dispatcher.close()


def post(app: TestClient, verifier: WebhookVerifier, source: str, event: dict, at=NOW):
    body = json.dumps(event, default=str).encode()
    headers = {SIGNATURE_HEADER: verifier.sign(body, at), "content-type": "application/json"}
    return app.post(f"/webhooks/{source}", content=body, headers=headers)


def pending(dispatcher: Dispatcher) -> pd.DataFrame:
    with dispatcher.sessions() as session:
        rows = session.execute(
            select(Message.message_id, Message.invoice_id, Message.customer_id, Message.channel,
                   Message.status, Message.decision_id).order_by(Message.message_id)
        ).all()  # fmt: skip
    frame = pd.DataFrame(rows, columns=["message_id", "invoice_id", "customer_id", "channel",
                                        "status", "decision_id"])  # fmt: skip
    return frame[frame["status"] == "pending"].reset_index(drop=True)


def counts(dispatcher: Dispatcher) -> dict[str, int]:
    with dispatcher.sessions() as session:
        return {
            table.__tablename__: int(session.scalar(select(func.count()).select_from(table)) or 0)
            for table in (WebhookEvent, Outcome, MessageEvent, Reply, Suppression, Promise,
                          CaseTask, AuditEntry)
        }  # fmt: skip


def test_a_payment_webhook_stops_scheduled_reminders_at_once(setup) -> None:
    dispatcher, app, verifier, _ = setup
    target = pending(dispatcher).iloc[0]
    with dispatcher.sessions() as session:
        amount = session.get(Invoice, target["invoice_id"]).amount
    event = {"event_id": "evt-pay-1", "payment_id": "pay-1", "invoice_id": target["invoice_id"],
             "amount": amount, "paid_at": NOW.isoformat(), "method": "card"}  # fmt: skip
    answer = post(app, verifier, "payments", event)
    assert answer.status_code == 200 and answer.json() == {"status": "applied"}
    with dispatcher.sessions() as session:
        message = session.get(Message, target["message_id"])
        assert message.status == "blocked" and "paid" in message.reasons
        kinds = set(session.scalars(select(Outcome.kind)))
    assert kinds == {"paid"}
    dispatcher.run_once(T0 + timedelta(days=2))  # the relay sends nothing for it
    with dispatcher.sessions() as session:
        assert session.get(Message, target["message_id"]).status == "blocked"


def test_forged_stale_and_replayed_webhooks_change_nothing(setup) -> None:
    dispatcher, app, verifier, _ = setup
    target = pending(dispatcher).iloc[0]
    event = {"event_id": "evt-pay-2", "payment_id": "pay-2", "invoice_id": target["invoice_id"],
             "amount": 1e6, "paid_at": NOW.isoformat()}  # fmt: skip
    before = counts(dispatcher)
    body = json.dumps(event).encode()
    forged = WebhookVerifier((b"k" * 32,), verifier.tolerance_seconds).sign(body, NOW)
    for headers in ({}, {SIGNATURE_HEADER: forged}, {SIGNATURE_HEADER: "t=1,v1=00"},
                    {SIGNATURE_HEADER: "garbage"}):  # fmt: skip
        assert app.post("/webhooks/payments", content=body, headers=headers).status_code == 401
    stale = post(app, verifier, "payments", event, at=NOW - timedelta(hours=1))
    assert stale.status_code == 401 and "stale" in stale.json()["error"]
    tampered = {SIGNATURE_HEADER: verifier.sign(body, NOW)}
    altered = body.replace(b"pay-2", b"pay-3")
    assert app.post("/webhooks/payments", content=altered, headers=tampered).status_code == 401
    assert counts(dispatcher) == before
    assert post(app, verifier, "payments", event).json() == {"status": "applied"}
    after = counts(dispatcher)
    assert post(app, verifier, "payments", event).json() == {"status": "duplicate"}
    assert counts(dispatcher) == after
    conflict = post(app, verifier, "payments", {**event, "amount": 5.0})
    assert conflict.status_code == 409 and counts(dispatcher) == after
    unknown = post(app, verifier, "payments", {**event, "event_id": "e9", "invoice_id": "nope"})
    assert unknown.status_code == 404 and counts(dispatcher) == after
    bad = post(app, verifier, "payments", {**event, "event_id": "e10", "amount": -1})
    assert bad.status_code == 422 and counts(dispatcher) == after


def test_links_record_opens_and_clicks_and_unsubscribe_in_one_click(setup) -> None:
    dispatcher, app, _, tokens = setup
    target = pending(dispatcher).iloc[0]
    pixel = app.get(f"/o/{tokens.sign('open', target['message_id'], NOW)}")
    assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
    click = app.get(f"/c/{tokens.sign('click', target['message_id'], NOW)}",
                    follow_redirects=False)  # fmt: skip
    assert click.status_code == 302 and "/p/" in click.headers["location"]
    before = counts(dispatcher)
    guessed = tokens.sign("open", target["message_id"], NOW).replace("v1.", "v1.A", 1)
    assert app.get(f"/o/{guessed}").status_code == 200  # the pixel still loads ...
    assert app.get(f"/c/{target['message_id']}").status_code == 404  # ... ids are not tokens
    wrong = tokens.sign("open", target["message_id"], NOW)  # an open token cannot unsubscribe
    assert app.post(f"/u/{wrong}").status_code == 404
    unsubscribe = f"/u/{tokens.sign('unsubscribe', target['message_id'], NOW)}"
    assert app.get(unsubscribe).status_code == 200  # a confirmation form only
    assert counts(dispatcher) == before
    assert app.post(unsubscribe, data={"List-Unsubscribe": "One-Click"}).status_code == 200
    with dispatcher.sessions() as session:
        assert session.get(Suppression, (target["customer_id"], target["channel"])) is not None
        assert session.get(Message, target["message_id"]).status == "blocked"
        kinds = sorted(session.scalars(select(Outcome.kind)))
    assert kinds == ["clicked", "opened", "opted_out"]


def reply(app, verifier, message, text: str, event_id: str, channel: str | None = None):
    event = {"event_id": event_id, "message_id": message["message_id"], "text": text,
             "channel": channel or message["channel"], "received_at": NOW.isoformat()}  # fmt: skip
    answer = post(app, verifier, "replies", event)
    assert answer.status_code == 200, answer.text
    return answer


def test_replies_have_their_effects(setup, settings) -> None:
    dispatcher, app, verifier, _ = setup
    rows = pending(dispatcher).drop_duplicates("customer_id").reset_index(drop=True)
    stop, promise, dispute, hardship = (rows.iloc[i] for i in range(4))
    reply(app, verifier, stop, "STOP", "r1", channel="sms")
    reply(app, verifier, promise, "I will pay on 28 March", "r2")
    reply(app, verifier, dispute, "This invoice is wrong, I never ordered this. I dispute it.",
          "r3")  # fmt: skip
    reply(app, verifier, hardship, "I lost my job and cannot pay right now, can I pay in parts?",
          "r4")  # fmt: skip
    with dispatcher.sessions() as session:
        intents = dict(session.execute(select(Reply.reply_id, Reply.intent)).all())
        assert intents == {"r1": "opt_out", "r2": "promise_to_pay", "r3": "dispute",
                           "r4": "hardship"}  # fmt: skip
        assert session.get(Suppression, (stop["customer_id"], "sms")) is not None
        held = session.get(Invoice, promise["invoice_id"])
        assert held.next_stage_at > pd.Timestamp("2024-03-28", tz="UTC").to_pydatetime()
        assert session.get(Message, promise["message_id"]).status == "blocked"
        assert session.get(Invoice, dispute["invoice_id"]).dispute_opened_at == NOW
        assert session.get(Message, dispute["message_id"]).status == "blocked"
        tasks = session.scalars(select(CaseTask).where(CaseTask.stage == "dispute")).all()
        assert [t.invoice_id for t in tasks] == [dispute["invoice_id"]]
        overrides = decision_overrides(session, [hardship["customer_id"]], NOW, settings)
        assert overrides == {hardship["customer_id"]: {"hardship_90d": True}}
    with dispatcher.sessions.begin() as session:
        assert review_promises(session, NOW) == (0, 0)
        assert review_promises(session, datetime(2024, 4, 1, tzinfo=NOW.tzinfo)) == (0, 1)
        assert session.scalar(select(Promise.status)) == "broken"


def test_silent_customers_get_a_case_task_and_tasks_export_safely(setup, tmp_path) -> None:
    dispatcher, *_ = setup
    target = pending(dispatcher).iloc[0]
    with dispatcher.sessions.begin() as session:
        message = session.get(Message, target["message_id"])
        message.status, message.sent_at = "sent", NOW
        opened = open_silent_tasks(session, NOW, 1, "test")
        assert target["invoice_id"] in {session.get(CaseTask, t).invoice_id for t in opened}
        assert open_silent_tasks(session, NOW, 1, "test") == []  # once per invoice
        task = session.get(CaseTask, opened[0])
        task.reason = '=HYPERLINK("http://evil")'
    tasks = task_frame(dispatcher.sessions, "open")
    path = export_tasks(tasks, tmp_path / "tasks.csv")
    text = path.read_text()
    assert "'=HYPERLINK" in text and "\n=" not in text and ",=" not in text
    assert close_task(dispatcher.sessions, opened[0], NOW, "called the customer")
    assert not close_task(dispatcher.sessions, opened[0], NOW, "again")


def test_feedback_survives_a_service_outage_and_is_posted_once(setup) -> None:
    dispatcher, app, _, tokens = setup
    target = pending(dispatcher).iloc[0]
    app.get(f"/c/{tokens.sign('click', target['message_id'], NOW)}", follow_redirects=False)
    posted: list[dict] = []

    def down(_: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("service down")

    def up(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)["feedback"]
        posted.extend(body)
        return httpx.Response(200, json={"accepted": len(body), "duplicates": 0})

    offline = DecisionClient("http://decisions.test", transport=httpx.MockTransport(down),
                             retries=0)  # fmt: skip
    report = post_feedback(dispatcher.sessions, offline, 100, NOW)
    assert report.failed == 1 and unposted(dispatcher.sessions) == 2
    online = DecisionClient("http://decisions.test", transport=httpx.MockTransport(up))
    assert post_feedback(dispatcher.sessions, online, 100, NOW).decisions == 1
    assert posted == [{"decision_id": target["decision_id"], "opened": True, "clicked": True}]
    assert post_feedback(dispatcher.sessions, online, 100, NOW).decisions == 0
    assert unposted(dispatcher.sessions) == 0


def test_feedback_of_builds_one_cumulative_report_per_decision() -> None:
    decision = "6f1c2d3e-4b5a-4c6d-8e7f-8091a2b3c4d5"
    at = pd.Timestamp("2024-03-21", tz="UTC")
    rows = pd.DataFrame({
        "outcome_id": ["a", "b", "c"], "decision_id": [decision] * 3,
        "kind": ["delivered", "paid", "opted_out"], "at": [at] * 3,
        "value": [True, True, True], "amount": [None, 42.0, None],
    })  # fmt: skip
    (report,) = feedback_of(rows)
    assert report.delivered and report.opted_out and report.paid_amount == 42.0
    assert report.paid_at == at.to_pydatetime() and report.opened is None
    assert date(2024, 3, 21) == report.paid_at.date()


def test_run_once_closes_the_loop(tiny_world: World, kit, tmp_path) -> None:
    """One production pass reviews ended promises, opens no-response tasks and posts outcomes,
    keeping them in the outbox while the service is down."""
    decide = kit.fake_decide()
    posted: list[dict] = []
    service = {"up": True}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/feedback":
            if not service["up"]:
                raise httpx.ConnectError("service down")
            posted.extend(json.loads(request.content)["feedback"])
        return decide(request)

    settings = kit.make_settings(tmp_path / "home", no_response_reminders=1)
    client = DecisionClient("http://decisions.test", kit.token,
                            transport=httpx.MockTransport(handler), retries=0)  # fmt: skip
    dispatcher = Dispatcher(settings, client=client)
    tables = {**tiny_world.tables, "payments": tiny_world.tables["payments"].iloc[:0]}
    load_tables(dispatcher.sessions, tables, dispatcher.workflow)
    dispatcher.run_once(T0)
    app = TestClient(inbound_app(settings, dispatcher.sessions, clock=lambda: NOW))
    verifier, tokens = WebhookVerifier.from_settings(settings), TokenSigner.from_settings(settings)
    rows = pending(dispatcher).drop_duplicates("customer_id").reset_index(drop=True)
    promise, clicked = rows.iloc[0], rows.iloc[1]
    reply(app, verifier, promise, "I will pay on 22 March", "r-promise")
    app.get(f"/c/{tokens.sign('click', clicked['message_id'], NOW)}", follow_redirects=False)
    with dispatcher.sessions() as session:
        resume_at = session.scalar(select(Promise.resume_at))
        next_stage_at = session.get(Invoice, promise["invoice_id"]).next_stage_at
    service["up"] = False
    down = dispatcher.run_once(NOW + timedelta(hours=1))
    assert down.loop is not None and down.loop.feedback.failed == 1
    assert down.loop.promises_broken == 0 and unposted(dispatcher.sessions) > 0

    service["up"] = True
    later = max(resume_at, next_stage_at) + timedelta(hours=1)  # the promise ended unpaid
    report = dispatcher.run_once(later)
    assert report.loop is not None
    assert (report.loop.promises_kept, report.loop.promises_broken) == (0, 1)
    assert report.loop.silent_tasks > 0 and report.loop.feedback.failed == 0
    assert unposted(dispatcher.sessions) == 0
    assert {"decision_id": clicked["decision_id"], "opened": True, "clicked": True} in posted
    with dispatcher.sessions() as session:
        assert session.scalar(select(Promise.status)) == "broken"
        planned = session.scalars(
            select(Reminder.planned_at).where(Reminder.invoice_id == promise["invoice_id"])
        ).all()
        assert max(planned) == later  # the sequence resumed: its next stage is planned
        silent = session.scalars(select(CaseTask).where(CaseTask.stage == "no_response")).all()
        answered = {promise["invoice_id"], clicked["invoice_id"]}
        assert silent and not answered & {t.invoice_id for t in silent}
    assert dispatcher.run_once(later).loop == LoopReport(0, 0, 0, FeedbackReport())
    dispatcher.close()


def test_sent_emails_link_through_the_inbound_app(setup, settings) -> None:
    """A sent e-mail's payment link is a click token and its HTML carries the open pixel: the
    inbound app records both and redirects the click to the invoice's signed payment page."""
    dispatcher, app, _, _ = setup
    dispatcher.run_once(T0 + timedelta(days=2))
    sent = sorted((outbox_folder(settings) / "email").glob("*.json"))
    assert sent, "expected e-mails in the dry-run outbox"
    envelope = json.loads(sent[0].read_text())
    base = settings.dispatcher.link_base_url
    click = re.search(rf'href="{re.escape(base)}(/c/[^"]+)"', envelope["html"])
    pixel = re.search(rf'<img src="{re.escape(base)}(/o/[^"]+)"', envelope["html"])
    assert click and pixel and f"{base}{click[1]}" in envelope["text"]
    assert f"{base}/p/" not in envelope["text"] + envelope["html"]  # no untracked shortcut
    assert "/u/" in envelope["text"]
    assert app.get(pixel[1]).headers["content-type"] == "image/gif"
    answer = app.get(click[1], follow_redirects=False)
    assert answer.status_code == 302
    landing = urlsplit(answer.headers["location"])
    invoice_id = unquote(landing.path.rsplit("/", 1)[1])
    query = dict(parse_qsl(landing.query))
    assert invoice_id == envelope["invoice_id"]
    links = LinkMaker.from_settings(settings)
    assert links.verify_payment_link(invoice_id, int(query["e"]), query["s"], NOW)
    with dispatcher.sessions() as session:
        kinds = set(session.scalars(select(MessageEvent.kind).where(
            MessageEvent.message_id == envelope["message_id"])))  # fmt: skip
    assert {"opened", "clicked"} <= kinds


def test_push_notifications_carry_the_tracked_link(tiny_world: World, settings, kit) -> None:
    """A push notification shows no link in its text: the provider gets the tracked payment
    link beside it (what a tap opens), and the inbound app records the tap as a click."""

    def push_first(request: dict) -> tuple[str, str, str] | None:
        overrides = request["overrides"]
        if overrides["consent_push"] and not overrides["opted_out_push"]:
            return "push", "friendly", "none"
        return None

    client = DecisionClient(
        "http://decisions.test",
        kit.token,
        transport=httpx.MockTransport(kit.fake_decide(push_first)),
    )
    dispatcher = Dispatcher(settings, client=client)
    tables = {**tiny_world.tables, "payments": tiny_world.tables["payments"].iloc[:0]}
    load_tables(dispatcher.sessions, tables, dispatcher.workflow)
    dispatcher.run_once(T0)
    dispatcher.run_once(T0 + timedelta(days=2))
    pushed = [
        json.loads(path.read_text()) for path in (outbox_folder(settings) / "push").glob("*.json")
    ]
    assert pushed, "expected push notifications in the dry-run outbox"
    base = settings.dispatcher.link_base_url
    assert all(envelope["link"].startswith(f"{base}/c/") for envelope in pushed)
    assert all(base not in envelope["text"] for envelope in pushed)
    app = TestClient(inbound_app(settings, dispatcher.sessions, clock=lambda: NOW))
    tapped = pushed[0]
    assert app.get(tapped["link"].removeprefix(base), follow_redirects=False).status_code == 302
    with dispatcher.sessions() as session:
        kinds = set(session.scalars(select(MessageEvent.kind).where(
            MessageEvent.message_id == tapped["message_id"])))  # fmt: skip
    assert "clicked" in kinds
    dispatcher.close()
