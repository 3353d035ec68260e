"""The inbound HTTP app (ASGI, Starlette): webhooks from providers and the links in messages.

Webhooks (``POST``, JSON, signed: see :mod:`dispatcher.webhooks`), each applied once by its
``event_id``:

- ``/webhooks/payments``: ``{event_id, payment_id, invoice_id, amount, paid_at, method}``;
- ``/webhooks/delivery``: ``{event_id, message_id, status: delivered|bounced, at}``;
- ``/webhooks/replies``: ``{event_id, channel, text, received_at, message_id?, customer_id?}``;
- ``/webhooks/customers``: ``{event_id, customer_id, event: churned, at}``.

Links (signed tokens of :mod:`dispatcher.tokens` on the message id; ids alone are never
trusted): ``GET /o/<token>`` the open pixel, ``GET /c/<token>`` the click, redirected to the
invoice's signed payment link, ``/u/<token>`` one-click unsubscribe (``POST``, RFC 8058; a
``GET`` shows a confirmation form, so link scanners unsubscribe nobody).

Answers: 200 ``{"status": "applied" | "duplicate"}``, 401 for a forged or stale signature,
404 for an unknown invoice, message or customer, 409 for an event id reused with another body,
422 for a body that breaks the contract. A refused call changes nothing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from dispatcher.database import open_database
from dispatcher.links import LinkMaker
from dispatcher.replies import classify_reply
from dispatcher.responses import (
    apply_churn,
    apply_delivery,
    apply_engagement,
    apply_payment,
    apply_reply,
    apply_unsubscribe,
    message_ref,
)
from dispatcher.state import Customer
from dispatcher.tokens import TokenError, TokenSigner
from dispatcher.webhooks import (
    SIGNATURE_HEADER,
    EventConflict,
    WebhookRefused,
    WebhookVerifier,
    claim_event,
)
from paynudge.config import Settings
from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS

Clock = Callable[[], datetime]
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
"""A transparent 1x1 GIF."""
MAX_BODY_BYTES = 64_000
"""Webhook bodies above this are refused before parsing (replies are short)."""
Id = Field(min_length=1, max_length=128)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Id


class PaymentEvent(_Event):
    payment_id: str = Id
    invoice_id: str = Id
    amount: float = Field(gt=0, allow_inf_nan=False)
    paid_at: AwareDatetime
    method: str = Field(default="transfer", min_length=1, max_length=32)


class DeliveryEvent(_Event):
    message_id: str = Id
    status: Literal["delivered", "bounced"]
    at: AwareDatetime


class ReplyEvent(_Event):
    channel: Literal[CHANNELS]  # type: ignore[valid-type]
    text: str = Field(min_length=1, max_length=10_000)
    received_at: AwareDatetime
    message_id: str | None = Field(default=None, min_length=1, max_length=128)
    customer_id: str | None = Field(default=None, min_length=1, max_length=128)


class CustomerEvent(_Event):
    customer_id: str = Id
    event: Literal["churned"]
    at: AwareDatetime


def wall_clock() -> datetime:
    return datetime.now(UTC)


class Inbound:
    """The handlers, bound to one database, settings and clock."""

    def __init__(self, settings: Settings, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.settings = settings
        self.sessions = sessions
        self.clock = clock
        self.verifier = WebhookVerifier.from_settings(settings)
        self.tokens = TokenSigner.from_settings(settings)
        self.links = LinkMaker.from_settings(settings)

    async def webhook(self, request: Request) -> Response:
        source = request.path_params["source"]
        kind = EVENTS.get(source)
        if kind is None:
            return _error(404, f"no webhook {source!r}: expected one of {', '.join(EVENTS)}")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"expected a body of at most {MAX_BODY_BYTES} bytes")
        now = self.clock()
        try:
            self.verifier.verify(request.headers.get(SIGNATURE_HEADER), body, now)
            event = kind.model_validate_json(body)
        except WebhookRefused as error:
            return _error(401, str(error))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "body"
            return _error(422, f"{where}: {first['msg']}")
        try:
            applied = await run_in_threadpool(self._apply, source, event, body, now)
        except EventConflict as error:
            return _error(409, str(error))
        except DataError as error:
            return _error(404, str(error))
        return JSONResponse({"status": "applied" if applied else "duplicate"})

    def _apply(self, source: str, event: _Event, body: bytes, now: datetime) -> bool:
        try:
            with self.sessions.begin() as session:
                if not claim_event(session, event.event_id, source, body, now):
                    return False
                HANDLERS[source](self, session, event, now)
                return True
        except IntegrityError:
            return False  # the same event applied concurrently by another worker

    def _payment(self, session: Session, event: PaymentEvent, now: datetime) -> None:
        apply_payment(session, event.payment_id, event.invoice_id, event.amount, event.paid_at,
                      event.method, now)  # fmt: skip

    def _delivery(self, session: Session, event: DeliveryEvent, now: datetime) -> None:
        apply_delivery(session, message_ref(session, event.message_id),
                       event.status == "delivered", event.at)  # fmt: skip

    def _reply(self, session: Session, event: ReplyEvent, now: datetime) -> None:
        ref = message_ref(session, event.message_id) if event.message_id else None
        customer_id = ref.customer_id if ref else event.customer_id
        if customer_id is None:
            raise DataError("reply: expected a message_id or a customer_id")
        zone = session.scalar(select(Customer.timezone).where(Customer.customer_id == customer_id))
        if zone is None:
            raise DataError(f"customer_id: no customer {customer_id!r}")
        classified = classify_reply(
            event.text, event.received_at, zone,
            min_confidence=self.settings.dispatcher.reply_min_confidence,
        )  # fmt: skip
        apply_reply(session, event.event_id, customer_id, event.channel, event.text,
                    event.received_at, classified, self.settings, ref)  # fmt: skip

    def _customer(self, session: Session, event: CustomerEvent, now: datetime) -> None:
        if session.get(Customer, event.customer_id) is None:
            raise DataError(f"customer_id: no customer {event.customer_id!r}")
        apply_churn(session, event.customer_id, event.at,
                    self.settings.policy.reward.churn_window_days)  # fmt: skip

    async def opened(self, request: Request) -> Response:
        """The pixel is always served; only a genuine token records the open."""
        now = self.clock()
        try:
            claims = self.tokens.verify(request.path_params["token"], "open", now)
            await run_in_threadpool(self._engage, claims.subject, "opened", now)
        except (TokenError, DataError):
            pass
        return Response(PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})

    async def clicked(self, request: Request) -> Response:
        now = self.clock()
        try:
            claims = self.tokens.verify(request.path_params["token"], "click", now)
            invoice_id = await run_in_threadpool(self._engage, claims.subject, "clicked", now)
        except (TokenError, DataError):
            return HTMLResponse("<p>This link is not valid (or has expired).</p>", status_code=404)
        return RedirectResponse(self.links.payment_link(invoice_id, now), status_code=302)

    def _engage(self, message_id: str, kind: str, now: datetime) -> str:
        with self.sessions.begin() as session:
            ref = message_ref(session, message_id)
            apply_engagement(session, ref, kind, now)
            return ref.invoice_id

    async def unsubscribe(self, request: Request) -> Response:
        now = self.clock()
        token = request.path_params["token"]
        try:
            claims = self.tokens.verify(token, "unsubscribe", now)
        except TokenError:
            return HTMLResponse("<p>This link is not valid (or has expired).</p>", status_code=404)
        if request.method == "GET":
            action = html.escape(str(request.url.path), quote=True)
            return HTMLResponse(
                f'<form method="post" action="{action}"><p>Stop these reminders on this channel?'
                '</p><button name="List-Unsubscribe" value="One-Click">Unsubscribe</button></form>'
            )
        try:
            await run_in_threadpool(self._unsubscribe, claims.subject, now)
        except DataError:
            return HTMLResponse("<p>This link is not valid.</p>", status_code=404)
        return HTMLResponse("<p>You will not receive these reminders on this channel again.</p>")

    def _unsubscribe(self, message_id: str, now: datetime) -> None:
        with self.sessions.begin() as session:
            apply_unsubscribe(session, message_ref(session, message_id), now, "unsubscribe")


EVENTS: dict[str, type[_Event]] = {
    "payments": PaymentEvent,
    "delivery": DeliveryEvent,
    "replies": ReplyEvent,
    "customers": CustomerEvent,
}
HANDLERS: dict[str, Callable[..., None]] = {
    "payments": Inbound._payment,
    "delivery": Inbound._delivery,
    "replies": Inbound._reply,
    "customers": Inbound._customer,
}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _health(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


def inbound_app(
    settings: Settings, sessions: sessionmaker[Session] | None = None, clock: Clock = wall_clock
) -> Starlette:
    """The inbound ASGI app (``uvicorn`` or any ASGI server; the simulation calls it in-process)."""
    inbound = Inbound(settings, sessions or open_database(settings), clock)
    return Starlette(
        routes=[
            Route("/webhooks/{source}", inbound.webhook, methods=["POST"]),
            Route("/o/{token}", inbound.opened, methods=["GET"]),
            Route("/c/{token}", inbound.clicked, methods=["GET"]),
            Route("/u/{token}", inbound.unsubscribe, methods=["GET", "POST"]),
            Route("/healthz", _health, methods=["GET"]),
        ]
    )
