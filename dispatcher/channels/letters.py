"""Letters to PDF (fpdf2) in the outbox folder, for a print-and-mail provider to pick up."""

from __future__ import annotations

from pathlib import Path

from fpdf import FPDF

from dispatcher.channels.base import Envelope, SendFailed
from dispatcher.channels.files import write_atomically

FONT = "Helvetica"
FONT_SIZE_PT = 11
LINE_HEIGHT_MM = 6
MARGIN_MM = 25
LATIN_1 = "latin-1"
"""The core PDF fonts cover Latin-1; other characters are replaced (and the letter still goes)."""


def letter_pdf(envelope: Envelope) -> bytes:
    """An A4 letter of the envelope's text, one paragraph after another."""
    pdf = FPDF(format="A4")
    pdf.set_margins(MARGIN_MM, MARGIN_MM, MARGIN_MM)
    pdf.set_title(envelope.subject or f"invoice {envelope.invoice_id}")
    pdf.add_page()
    pdf.set_font(FONT, size=FONT_SIZE_PT)
    text = envelope.text.replace("€", "EUR").encode(LATIN_1, "replace").decode(LATIN_1)
    pdf.multi_cell(0, LINE_HEIGHT_MM, text)
    return bytes(pdf.output())


class LetterOutbox:
    """``pdf``: ``<outbox>/letters/<message_id>.pdf``; writing twice leaves one file."""

    name = "pdf"
    idempotent = True

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, envelope: Envelope) -> str:
        path = self.folder / "letters" / f"{envelope.message_id}.pdf"
        try:
            write_atomically(path, letter_pdf(envelope))
        except OSError as error:
            raise SendFailed(f"letters outbox {path}: {error.strerror}", retry=True) from None
        return str(path)

    def close(self) -> None:
        pass
