"""One email validator for every service (issue 16, item 9): the directory once stored
``victim,evil@evil.com`` for a partner, which the notifier then refused, so that partner's offers
silently went nowhere. The directory (partners), referrals (staff) and the notifier (recipients)
accept and refuse exactly the same addresses."""

from __future__ import annotations

import pytest

from services.directory.fields import InvalidPartner, validate_email
from services.notifier.mailer import PermanentFailure, compose
from services.notifier.rendering import RenderedEmail
from services.referrals.identity import staff_email
from shared.errors import InvalidInput

GOOD = ["intake@baypt.example", "Ana.Ruiz+referrals@ruiz-dietitian.example", "front@münchen.example"]
BAD = [
    "victim,evil@evil.com",
    "victim@evil.com,other@evil.com",
    "ann\r\nBcc: x@evil.example",
    "tab\there@clinic.example",
    "<script>x@clinic.example",
    "x@clinic.example<script>",
    "no-domain@",
    "@no-local.example",
    "two@@at.example",
    "dot@nodot",
    "josé@clinic.example",  # the notifier's SMTP cannot send to a non-ASCII mailbox
    "a" * 250 + "@x.example",
]


def directory_accepts(address: str) -> bool:
    try:
        validate_email(address)
    except InvalidPartner as refused:
        assert refused.field == "email"
        return False
    return True


def referrals_accepts(address: str) -> bool:
    try:
        staff_email(address)
    except InvalidInput as refused:
        assert refused.field == "email"
        return False
    return True


def notifier_accepts(address: str) -> bool:
    rendered = RenderedEmail(subject="Hello", text="Hello", html="<p>Hello</p>")
    try:
        compose(rendered=rendered, to=address, notification_id="n-1", mail_from="Handoff <handoff@localhost>")
    except PermanentFailure:
        return False
    return True


@pytest.mark.parametrize("address", GOOD + BAD)
def test_every_service_accepts_the_same_addresses(address: str) -> None:
    expected = address in GOOD
    assert (directory_accepts(address), referrals_accepts(address), notifier_accepts(address)) == (expected,) * 3
