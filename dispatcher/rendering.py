"""The one template renderer: every reminder's text, from a template per channel x tone x language.

Templates live in ``dispatcher/message_templates/<channel>/<tone>.<language>.j2``; a folder of
your own (``[dispatcher] templates_dir``) is searched first, so any file there overrides ours.
They run in Jinja2's ``SandboxedEnvironment`` (a template cannot reach Python internals) with
``StrictUndefined`` (a misspelt variable is an error, never an empty string). An offer's text is
rendered from ``offers/<offer>.<language>.j2`` (``offers/<offer>.short.<language>.j2`` for SMS
and push) and handed to the message template as ``offer_text`` / ``offer_short``.

E-mail templates start with a ``Subject:`` line; the HTML part is the text's paragraphs in
``email/layout.html.j2`` (autoescaped, links made clickable, the open pixel at the end) and must
carry the unsubscribe link.
SMS must fit ``[dispatcher] sms_max_segments`` segments (GSM-7: 160 characters alone, 153 per
part; otherwise UCS-2: 70 and 67). A template that fails raises :class:`TemplateError` naming
the template and the invoice: that message stops, never the batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from paynudge.errors import PayNudgeError

PACKAGED = Path(__file__).with_name("message_templates")
HTML_LAYOUT = "email/layout.html.j2"
SUBJECT_PREFIX = "Subject:"
SHORT_OFFER_CHANNELS = ("sms", "push")

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
"""Characters of the GSM 03.38 extension table: two septets each (escape + character)."""
SEGMENT_LIMITS = {"gsm7": (160, 153), "ucs2": (70, 67)}
"""(one-part, per-part-of-many) capacity of an SMS segment in characters of each encoding."""


class TemplateError(PayNudgeError):
    """A template could not be rendered for one message (the rest of the batch goes on)."""


@dataclass(frozen=True)
class MessageFacts:
    """Everything a template may use, for one message."""

    channel: str
    tone: str
    language: str
    offer: str
    invoice_id: str
    customer_name: str
    amount: str
    due_date: str
    days_overdue: int
    stage: str
    payment_link: str
    """The tracked link to the payment page (a click token of the inbound app)."""
    unsubscribe_link: str
    open_pixel: str
    """The open-tracking image of HTML e-mails (added by the layout, not by text templates)."""
    today: str
    extension_days: int
    extended_date: str
    instalments: int
    instalment_amount: str


FACT_FIELDS = fields(MessageFacts)
"""(Flat values: a shallow dict of them is what ``asdict`` would build, without its copying.)"""


@dataclass(frozen=True)
class RenderedMessage:
    template: str
    subject: str | None
    text: str
    html: str | None
    sms_encoding: str | None = None
    sms_segments: int | None = None


def template_name(channel: str, tone: str, language: str) -> str:
    return f"{channel}/{tone}.{language}.j2"


def sms_segments(text: str) -> tuple[str, int]:
    """The encoding an SMS needs and the number of segments ``text`` takes in it."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        encoding, units = "gsm7", sum(2 if c in GSM7_EXTENSION else 1 for c in text)
    else:
        encoding, units = "ucs2", len(text.encode("utf-16-le")) // 2
    single, part = SEGMENT_LIMITS[encoding]
    return encoding, 1 if units <= single else -(-units // part)


def format_amount(amount: float, currency: str, language: str) -> str:
    """``EUR 84.91`` in English, ``EUR 84,91`` in Dutch (decimal comma)."""
    text = f"{amount:,.2f}"
    if language == "nl":
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return f"{currency} {text}"


def format_date(day: date) -> str:
    return day.isoformat()


class Renderer:
    """Renders messages from the user's folder first, then the packaged templates."""

    def __init__(self, user_dir: Path | None = None, sms_max_segments: int = 2) -> None:
        folders = [str(p) for p in (user_dir, PACKAGED) if p is not None]
        loader = jinja2.FileSystemLoader(folders)
        self.sms_max_segments = sms_max_segments
        self._text = SandboxedEnvironment(
            loader=loader, undefined=jinja2.StrictUndefined, autoescape=False
        )
        self._html = SandboxedEnvironment(
            loader=loader, undefined=jinja2.StrictUndefined, autoescape=True
        )
        self._html.filters["linkify"] = _linkify
        self._templates: dict[tuple[bool, str], jinja2.Template] = {}
        """Templates by (HTML, name) since the last :meth:`refresh`: no file check per message."""

    def refresh(self) -> None:
        """Pick up edited template files from now on (a sending pass calls it once)."""
        self._templates.clear()

    def _template(self, name: str, *, html: bool = False) -> jinja2.Template:
        key = (html, name)
        template = self._templates.get(key)
        if template is None:
            environment = self._html if html else self._text
            template = self._templates[key] = environment.get_template(name)
        return template

    def render(self, facts: MessageFacts) -> RenderedMessage:
        """The message's text (and subject and HTML for e-mail); :class:`TemplateError` if not."""
        name = template_name(facts.channel, facts.tone, facts.language)
        try:
            return self._render(name, facts)
        except TemplateError:
            raise
        except jinja2.TemplateNotFound as error:
            raise TemplateError(
                f"template {error.name} (invoice {facts.invoice_id}, stage {facts.stage}): "
                "not found in the templates folders"
            ) from None
        except jinja2.TemplateSyntaxError as error:
            raise TemplateError(
                f"template {error.name or name} line {error.lineno} (invoice {facts.invoice_id}): "
                f"syntax error: {error.message}"
            ) from None
        except Exception as error:  # a user template can fail in any way; stop this message only
            raise TemplateError(
                f"template {name} (invoice {facts.invoice_id}, stage {facts.stage}): "
                f"{type(error).__name__}: {error}"
            ) from None

    def _render(self, name: str, facts: MessageFacts) -> RenderedMessage:
        values: dict[str, object] = {f.name: getattr(facts, f.name) for f in FACT_FIELDS}
        values["offer_text"] = self._offer(facts, values, short=False)
        values["offer_short"] = self._offer(facts, values, short=True)
        text = self._template(name).render(values).strip()
        if facts.channel == "sms":
            return self._checked_sms(name, facts, text)
        if facts.channel != "email":
            return RenderedMessage(name, None, text, None)
        first, _, body = text.partition("\n")
        if not first.startswith(SUBJECT_PREFIX):
            raise TemplateError(
                f"template {name} (invoice {facts.invoice_id}): expected a first line "
                f"'{SUBJECT_PREFIX} ...', found {first[:60]!r}"
            )
        if facts.unsubscribe_link not in body:
            raise TemplateError(
                f"template {name} (invoice {facts.invoice_id}): e-mails must show "
                "{{ unsubscribe_link }}"
            )
        subject, body = first[len(SUBJECT_PREFIX) :].strip(), body.strip()
        paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
        links = {facts.payment_link: facts.payment_link, facts.unsubscribe_link: "unsubscribe"}
        html = self._template(HTML_LAYOUT, html=True).render(
            subject=subject,
            paragraphs=paragraphs,
            language=facts.language,
            links=links,
            open_pixel=facts.open_pixel,
        )
        return RenderedMessage(name, subject, body, html)

    def _offer(self, facts: MessageFacts, values: Mapping[str, object], short: bool) -> str:
        if facts.offer == "none":
            return ""
        kind = f"{facts.offer}.short" if short else facts.offer
        if short and facts.channel not in SHORT_OFFER_CHANNELS:
            return ""
        return self._template(f"offers/{kind}.{facts.language}.j2").render(values).strip()

    def _checked_sms(self, name: str, facts: MessageFacts, text: str) -> RenderedMessage:
        encoding, segments = sms_segments(text)
        if segments > self.sms_max_segments:
            raise TemplateError(
                f"template {name} (invoice {facts.invoice_id}): the SMS takes {segments} "
                f"{encoding} segments ({len(text)} characters), at most {self.sms_max_segments} "
                "allowed"
            )
        return RenderedMessage(name, None, text, None, encoding, segments)


def _linkify(paragraph: str, links: Mapping[str, str]) -> Markup:
    """An escaped paragraph whose known links are anchors; line breaks kept."""
    html = str(escape(paragraph))
    for url, label in links.items():
        if url not in paragraph:  # most paragraphs hold no link: no escaping for them
            continue
        safe = str(escape(url))
        html = html.replace(safe, f'<a href="{safe}">{escape(label)}</a>')
    return Markup(html.replace("\n", "<br>\n"))
