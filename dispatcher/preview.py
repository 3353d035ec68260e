"""Previewing and checking templates: any template for a stored or a sample invoice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import product

from dispatcher.links import LinkMaker
from dispatcher.rendering import (
    MessageFacts,
    RenderedMessage,
    Renderer,
    TemplateError,
    format_amount,
)
from dispatcher.stages import Workflow, load_workflow
from paynudge.config import Settings
from paynudge.errors import DataError
from paynudge.vocabulary import CHANNELS, LANGUAGES, OFFERS, TONES

SAMPLE = {"invoice_id": "INV-SAMPLE", "name": "Sam Sample", "amount": 84.91}
SAMPLE_OVERDUE_DAYS = 10
PREVIEW_MESSAGE_ID = "00000000-0000-5000-8000-000000000000"
"""As long as a real message id, so previews and checks see links of the real length."""


def sample_facts(
    settings: Settings,
    workflow: Workflow,
    channel: str,
    tone: str,
    language: str,
    offer: str,
    invoice: dict[str, object] | None = None,
) -> MessageFacts:
    """The facts of a message about ``invoice`` (a sample invoice when None), dated today."""
    now = datetime.now(UTC)
    today = now.date()
    row = invoice or {**SAMPLE, "due_date": today - timedelta(days=SAMPLE_OVERDUE_DAYS)}
    due = row["due_date"]
    assert isinstance(due, date)
    amount = float(row["amount"])  # type: ignore[arg-type]
    links = LinkMaker.from_settings(settings)
    terms = workflow.offers
    return MessageFacts(
        channel=channel, tone=tone, language=language, offer=offer,
        invoice_id=str(row["invoice_id"]), customer_name=str(row["name"]),
        amount=format_amount(amount, workflow.currency, language), due_date=due.isoformat(),
        days_overdue=max((today - due).days, 0), stage="preview",
        **links.message_links(PREVIEW_MESSAGE_ID, now), today=today.isoformat(),
        extension_days=terms.extension_days,
        extended_date=(max(due, today) + timedelta(days=terms.extension_days)).isoformat(),
        instalments=terms.instalments,
        instalment_amount=format_amount(amount / terms.instalments, workflow.currency, language),
    )  # fmt: skip


def preview_message(
    settings: Settings,
    channel: str,
    tone: str,
    language: str,
    offer: str,
    invoice_id: str | None = None,
) -> RenderedMessage:
    """Render one template; ``invoice_id`` is looked up in the dispatcher's database."""
    choices = (("channel", channel, CHANNELS), ("tone", tone, TONES),
               ("language", language, LANGUAGES), ("offer", offer, OFFERS))  # fmt: skip
    for name, value, allowed in choices:
        if value not in allowed:
            raise DataError(f"--{name}: expected one of {', '.join(allowed)}, found {value!r}")
    workflow = load_workflow(settings)
    invoice = _stored_invoice(settings, invoice_id) if invoice_id else None
    options = settings.dispatcher
    renderer = Renderer(options.templates_dir, options.sms_max_segments)
    facts = sample_facts(settings, workflow, channel, tone, language, offer, invoice)
    return renderer.render(facts)


def check_templates(settings: Settings) -> list[str]:
    """Every combination rendered for the sample invoice; the errors (empty: all render)."""
    workflow = load_workflow(settings)
    options = settings.dispatcher
    renderer = Renderer(options.templates_dir, options.sms_max_segments)
    problems = []
    for channel, tone, language, offer in product(CHANNELS, TONES, LANGUAGES, OFFERS):
        try:
            renderer.render(sample_facts(settings, workflow, channel, tone, language, offer))
        except TemplateError as error:
            problems.append(str(error))
    return problems


def _stored_invoice(settings: Settings, invoice_id: str) -> dict[str, object]:
    from sqlalchemy import select

    from dispatcher.database import open_database
    from dispatcher.state import Customer, Invoice

    sessions = open_database(settings)
    with sessions() as session:
        row = session.execute(
            select(Invoice.invoice_id, Invoice.amount, Invoice.due_date, Customer.name)
            .join(Customer, Customer.customer_id == Invoice.customer_id)
            .where(Invoice.invoice_id == invoice_id)
        ).first()
    if row is None:
        raise DataError(f"--invoice: {invoice_id!r} is not in the dispatcher's database")
    return dict(row._mapping)
