"""Templates: every channel x tone x language renders, strict and sandboxed, SMS segments."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from dispatcher.preview import check_templates, sample_facts
from dispatcher.rendering import Renderer, TemplateError, sms_segments
from dispatcher.stages import load_workflow
from paynudge.config import Settings
from paynudge.vocabulary import CHANNELS, LANGUAGES, OFFERS, TONES


def facts(settings: Settings, channel: str = "email", **changes: object):
    base = sample_facts(settings, load_workflow(settings), channel, "neutral", "en", "none")
    return replace(base, **changes)


def test_every_packaged_template_renders(settings: Settings) -> None:
    assert check_templates(settings) == []
    folder = Path(__file__).resolve().parents[2] / "dispatcher" / "message_templates"
    for channel in CHANNELS:
        for tone in TONES:
            for language in LANGUAGES:
                assert (folder / channel / f"{tone}.{language}.j2").is_file()


def test_email_has_subject_text_html_tracked_links_and_pixel(settings: Settings) -> None:
    message = facts(settings, offer="instalment_plan", days_overdue=4)
    rendered = Renderer().render(message)
    base = settings.dispatcher.link_base_url
    assert rendered.subject == f"Payment reminder: invoice {message.invoice_id}"
    assert message.payment_link.startswith(f"{base}/c/v1.")  # the click token, not /p/
    assert message.payment_link in rendered.text
    assert message.unsubscribe_link in rendered.text
    assert message.open_pixel not in rendered.text
    assert "3 monthly instalments" in rendered.text
    assert rendered.html is not None
    assert f'href="{message.payment_link}"' in rendered.html
    assert f'<img src="{message.open_pixel}"' in rendered.html
    assert message.open_pixel.startswith(f"{base}/o/v1.")
    assert ">unsubscribe</a>" in rendered.html


@pytest.mark.parametrize("channel", ["sms", "call", "letter"])  # push texts carry no link
def test_other_channels_show_the_click_link_and_no_pixel(settings: Settings, channel) -> None:
    message = facts(settings, channel=channel)
    rendered = Renderer().render(message)
    assert message.payment_link in rendered.text and "/c/v1." in message.payment_link
    assert message.open_pixel not in rendered.text and rendered.html is None


def test_sms_with_tracked_links_fit_for_long_names(settings: Settings) -> None:
    workflow, renderer = load_workflow(settings), Renderer(sms_max_segments=2)
    for tone in TONES:
        for language in LANGUAGES:
            for offer in OFFERS:
                base = sample_facts(settings, workflow, "sms", tone, language, offer)
                long = replace(base, customer_name="N" * 30, invoice_id="INV0000000001",
                               amount="EUR 12.345,67")  # fmt: skip
                assert (renderer.render(long).sms_segments or 0) <= 2


def test_dutch_amounts_use_a_decimal_comma(settings: Settings) -> None:
    message = replace(facts(settings, language="nl"), amount="EUR 1.234,50")
    assert "EUR 1.234,50" in Renderer().render(message).text


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [("a" * 160, "gsm7", 1), ("a" * 161, "gsm7", 2), ("a" * 306, "gsm7", 2),
     ("a" * 307, "gsm7", 3), ("€" * 80, "gsm7", 1), ("€" * 81, "gsm7", 2),
     ("ł" * 70, "ucs2", 1), ("ł" * 71, "ucs2", 2), ("ł" * 134, "ucs2", 2),
     ("😀" * 35, "ucs2", 1), ("😀" * 36, "ucs2", 2)],
)  # fmt: skip
def test_sms_segments(text: str, encoding: str, segments: int) -> None:
    assert sms_segments(text) == (encoding, segments)


def test_an_sms_over_the_segment_limit_is_refused(settings: Settings) -> None:
    long_name = facts(settings, channel="sms", tone="friendly", customer_name="Ł" * 120)
    with pytest.raises(TemplateError, match=r"sms/friendly.en.j2 .*ucs2 segments"):
        Renderer(sms_max_segments=2).render(long_name)


def test_user_templates_override_and_fail_clearly(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "sms").mkdir()
    (tmp_path / "sms" / "neutral.en.j2").write_text("Pay {{ amount }}: {{ payment_link }}")
    (tmp_path / "push").mkdir()
    (tmp_path / "push" / "neutral.en.j2").write_text("Hi {{ first_name }}")
    (tmp_path / "call").mkdir()
    (tmp_path / "call" / "neutral.en.j2").write_text("{{ amount.__class__.__mro__ }}")
    (tmp_path / "letter").mkdir()
    (tmp_path / "letter" / "neutral.en.j2").write_text("{% if %}")
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "neutral.en.j2").write_text("Subject: hi\n\nno unsubscribe link")
    renderer = Renderer(user_dir=tmp_path)
    sms = facts(settings, channel="sms")
    assert renderer.render(sms).text == f"Pay {sms.amount}: {sms.payment_link}"
    with pytest.raises(TemplateError, match=r"push/neutral.en.j2 \(invoice INV-SAMPLE.*first_name"):
        renderer.render(facts(settings, channel="push"))
    with pytest.raises(TemplateError, match=r"call/neutral.en.j2.*(SecurityError|unsafe)"):
        renderer.render(facts(settings, channel="call"))
    with pytest.raises(TemplateError, match=r"letter/neutral.en.j2 line 1.*syntax error"):
        renderer.render(facts(settings, channel="letter"))
    with pytest.raises(TemplateError, match="must show"):
        renderer.render(facts(settings, channel="email"))
    assert Renderer().render(facts(settings, channel="push")).text  # the packaged one still works
