"""Composing the notifier's MIME message and classifying SMTP failures (no network)."""

from __future__ import annotations

import itertools
import smtplib

import pytest

from services.notifier.mailer import PermanentFailure, TemporaryFailure, classify, compose, message_id
from services.notifier.rendering import RenderedEmail

RENDERED = RenderedEmail(
    subject="New urgent referral from Sunshine — ref HX-1", text="Plain words\n", html="<p>Rich words</p>\n"
)


def test_compose_sets_the_headers_a_mail_client_needs() -> None:
    message = compose(
        rendered=RENDERED,
        to="Ruiz PT <intake@ruiz.example>",
        notification_id="n-1",
        mail_from="Sunshine Massage <referrals@sunshine.example>",
        reply_to="front-desk@sunshine.example",
    ).parsed()

    assert message["To"] == "Ruiz PT <intake@ruiz.example>"
    assert message["From"] == "Sunshine Massage <referrals@sunshine.example>"
    assert message["Reply-To"] == "front-desk@sunshine.example"
    assert message["Subject"] == RENDERED.subject
    assert message["Message-ID"] == "<n-1@sunshine.example>"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content() == "Plain words\n"
    assert message.get_body(("html",)).get_content() == "<p>Rich words</p>\n"


def test_compose_leaves_out_an_empty_reply_to() -> None:
    message = compose(rendered=RENDERED, to="a@b.example", notification_id="n-1", mail_from="h@localhost").parsed()

    assert "Reply-To" not in message


def test_message_id_is_the_same_for_every_attempt() -> None:
    assert message_id("n-1", mail_from="Handoff <handoff@localhost>") == "<n-1@handoff.local>"
    odd = message_id("n 1/<x>", mail_from="handoff@clinic.example")
    assert odd == message_id("n 1/<x>", mail_from="handoff@clinic.example")
    assert odd.startswith("<") and odd.endswith("@clinic.example>") and " " not in odd


def test_compose_writes_ascii_crlf_with_the_envelope_apart() -> None:
    long_text = "Ünïcode line. " + "word " * 40 + "\n.starts with a dot\n"
    rendered = RENDERED._replace(subject="Déclined by Ruiz — ref HX-1 " + "x" * 80, text=long_text)
    outgoing = compose(
        rendered=rendered,
        to="Zoë Ruiz <intake@ruiz.example>",
        notification_id="n-1",
        mail_from="Clinic <c@clinic.example>",
    )

    assert (outgoing.sender, outgoing.recipient) == ("c@clinic.example", "intake@ruiz.example")
    assert outgoing.data.isascii()
    assert b"\n" not in outgoing.data.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in outgoing.data.split(b"\r\n"))
    message = outgoing.parsed()
    assert message["Subject"] == rendered.subject
    assert message["To"] == "Zoë Ruiz <intake@ruiz.example>"
    assert message.get_body(("plain",)).get_content() == long_text


@pytest.mark.parametrize(
    "subject",
    [
        "Déclined by Ruiz — ref HX-1 " + "x" * 80,
        "—" * 60,  # three bytes each: no encoded word may split one
        "Referral for 🩺 Dr. Zoë — " + "é" * 39 + "🦶" * 5,
    ],
)
def test_a_non_ascii_subject_folds_into_short_lines_and_reads_back_exactly(subject: str) -> None:
    outgoing = compose(
        rendered=RENDERED._replace(subject=subject),
        to="a@b.example",
        notification_id="n-1",
        mail_from="c@clinic.example",
    )

    header = outgoing.data.split(b"\r\n\r\n")[0].decode("ascii")
    folded = header[header.index("Subject: ") :].split("\r\n")
    subject_lines = [folded[0], *itertools.takewhile(lambda line: line.startswith(" "), folded[1:])]
    assert len(subject_lines) > 1 and all(len(line) <= 78 for line in subject_lines)
    assert outgoing.parsed()["Subject"] == subject


def test_an_international_domain_is_sent_as_punycode() -> None:
    outgoing = compose(rendered=RENDERED, to="info@müller.example", notification_id="n-1", mail_from="h@localhost")

    assert outgoing.recipient == "info@xn--mller-kva.example"


@pytest.mark.parametrize(
    "to", ["", "not an address", "a@b.example\r\nBcc: c@d.example", "a@b.example, c@d.example", "zoë@b.example"]
)
def test_compose_refuses_what_is_not_one_address(to: str) -> None:
    with pytest.raises(PermanentFailure, match="the recipient"):
        compose(rendered=RENDERED, to=to, notification_id="n-1", mail_from="h@localhost")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (smtplib.SMTPRecipientsRefused({"a@b.example": (550, b"5.1.1 no such user")}), PermanentFailure),
        (smtplib.SMTPRecipientsRefused({"a@b.example": (450, b"4.2.1 mailbox busy")}), TemporaryFailure),
        (smtplib.SMTPSenderRefused(553, b"5.7.1 sender not allowed", "h@localhost"), PermanentFailure),
        (smtplib.SMTPDataError(554, b"5.6.0 message refused"), PermanentFailure),
        (smtplib.SMTPDataError(451, b"4.3.0 try again later"), TemporaryFailure),
        (smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"), TemporaryFailure),
        (smtplib.SMTPConnectError(554, b"no service"), TemporaryFailure),
        (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), TemporaryFailure),
        (ConnectionRefusedError(111, "Connection refused"), TemporaryFailure),
        (TimeoutError("timed out"), TemporaryFailure),
        (OSError(101, "Network is unreachable"), TemporaryFailure),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.__name__,
)
def test_classify_retries_what_may_clear_and_gives_up_on_refusals(exc: BaseException, kind: type) -> None:
    failure = classify(exc, server="smtp.example:587")

    assert type(failure) is kind
    assert "\n" not in str(failure) and len(str(failure)) <= 200


def test_failure_detail_quotes_the_server() -> None:
    failure = classify(smtplib.SMTPRecipientsRefused({"a@b.example": (550, b"5.1.1 no such user")}))

    assert str(failure) == "recipient refused: SMTP 550 5.1.1 no such user"


def test_long_server_replies_are_cut_short() -> None:
    failure = classify(smtplib.SMTPDataError(554, b"x" * 1000))

    assert len(str(failure)) == 200 and str(failure).endswith("…")
