"""The transport of each channel, built from ``[dispatcher] transports``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx

from dispatcher.channels.base import Transport
from dispatcher.channels.files import FileOutbox
from dispatcher.channels.letters import LetterOutbox
from dispatcher.channels.smtp import SmtpTransport
from dispatcher.channels.webhook import WebhookTransport
from paynudge.config import Settings


def outbox_folder(settings: Settings) -> Path:
    return settings.dispatcher.outbox_dir or settings.home / "outbox"


def build_transports(
    settings: Settings, http_transport: httpx.BaseTransport | None = None
) -> dict[str, Transport]:
    """One transport per channel (shared where channels share a kind, e.g. one webhook)."""
    options = settings.dispatcher
    folder = outbox_folder(settings)
    made: dict[str, Transport] = {}
    by_channel: dict[str, Transport] = {}
    factories: dict[str, Callable[[], Transport]] = {
        "dry_run": lambda: FileOutbox(folder),
        "pdf": lambda: LetterOutbox(folder),
        "smtp": lambda: SmtpTransport(options.smtp),
        "webhook": lambda: WebhookTransport(options.webhook, http_transport),
    }
    for channel, kind in options.transports.items():
        if kind not in made:
            made[kind] = factories[kind]()
        by_channel[channel] = made[kind]
    return by_channel
