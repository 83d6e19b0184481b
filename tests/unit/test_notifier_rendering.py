"""Rendering every kind of notifier email: subjects, both bodies, escaping, and the promise that
templates can only show what ``EmailContext`` carries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import get_args

import jinja2.meta
import jinja2.nodes
import msgspec
import pytest

from services.notifier.mailer import compose
from services.notifier.rendering import (
    CLIENT_KINDS,
    GETTEXT_NAMES,
    KINDS,
    SUBJECTS,
    TEMPLATE_VARIABLES,
    TEMPLATES,
    CannotRender,
    Renderer,
    environment,
)
from shared import codec
from shared.messages import EmailContext, EmailKind, PartnerContact, SendEmail

CLINIC = "Sunshine Massage"
LINK = "https://referrals.example/respond/tok3n"


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(clinic_name=CLINIC, timezone="America/New_York")


def context(**changes: object) -> EmailContext:
    fields: dict = {
        "recipient_name": "Dr. Ana Ruiz",
        "partner_name": "Ruiz Physical Therapy",
        "reference": "HX-1234",
        "urgency": "urgent",
        "action_url": LINK,
        "expires_at": datetime(2026, 5, 12, 21, 0, tzinfo=UTC),
    }
    return EmailContext(**{**fields, **changes})


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_a_subject_text_and_html(renderer: Renderer, kind: str) -> None:
    email = renderer.render(kind, context())

    assert email.subject.endswith("— ref HX-1234")
    assert "\n" not in email.subject
    # An email to a client greets nobody by name: the recipient's name would be client data.
    assert email.text.startswith("Hello," if kind in CLIENT_KINDS else "Hello Dr. Ana Ruiz,")
    assert "HX-1234" in email.text and CLINIC in email.text
    assert "<" not in email.text
    assert email.html.lstrip().startswith("<!doctype html>")
    assert "HX-1234" in email.html and CLINIC in email.html


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_its_two_templates(kind: str) -> None:
    assert (TEMPLATES / f"{kind}.html").is_file()
    assert (TEMPLATES / f"{kind}.txt").is_file()


def test_the_kinds_rendered_are_the_kinds_the_contract_names() -> None:
    assert set(SUBJECTS) == KINDS == set(get_args(EmailKind))


def test_no_template_without_a_kind() -> None:
    shared = {"layout", "_parts", "client_layout", "_client_parts", "_client_subjects"}
    assert {path.stem for path in TEMPLATES.iterdir()} - shared == KINDS


@pytest.mark.parametrize(
    ("urgency", "subject"),
    [
        ("urgent", "New urgent referral from Sunshine Massage — ref HX-1234"),
        ("soon", "New referral (within a week) from Sunshine Massage — ref HX-1234"),
        ("routine", "New routine referral from Sunshine Massage — ref HX-1234"),
    ],
)
def test_offer_subject_says_urgency_clinic_and_reference(renderer: Renderer, urgency: str, subject: str) -> None:
    assert renderer.render("offer", context(urgency=urgency)).subject == subject


def test_offer_carries_the_link_and_the_deadline_in_clinic_time(renderer: Renderer) -> None:
    email = renderer.render("offer", context())

    for body in (email.text, email.html):
        assert LINK in body
        # The format of every page too (shared.clinic_time, issue 13): "Tue, May 12, 5:00 PM EDT",
        # the year named only when it is not this one.
        assert re.search(r"Tue, May 12(, 2026)?, 5:00 PM EDT", body)
        assert "the client should be seen today" in body
        assert "offered to a few practices at once: the first to accept takes it" in body


def test_only_an_urgent_offer_says_it_went_to_several_practices(renderer: Renderer) -> None:
    for urgency in ("soon", "routine"):
        email = renderer.render("offer", context(urgency=urgency))
        for body in (email.text, email.html):
            assert "at once" not in body and "offered to another partner" in body


def test_a_taken_offer_thanks_the_partner_and_says_nothing_is_needed(renderer: Renderer) -> None:
    email = renderer.render("offer_taken", context(action_url=""))
    assert email.subject.startswith("Taken by another practice, no action needed")
    for body in (email.text, email.html):
        assert "another practice has accepted it" in body and "don't need to do anything" in body


def test_therapist_emails_name_the_partner_in_the_subject(renderer: Renderer) -> None:
    assert renderer.render("referral_accepted", context()).subject == "Accepted by Ruiz Physical Therapy — ref HX-1234"
    assert renderer.render("referral_declined", context()).subject == "Declined by Ruiz Physical Therapy — ref HX-1234"


# Every email to the therapist who made the referral (services.referrals.unit_of_work.email_therapist).
THERAPIST_KINDS = ("referral_accepted", "referral_declined", "offer_expired", "no_partner_left", "outcome_reported")


@pytest.mark.parametrize("kind", THERAPIST_KINDS)
def test_therapist_emails_link_to_the_referral_in_both_bodies(renderer: Renderer, kind: str) -> None:
    staff_page = "https://referrals.clinic.example/referrals/0b7c1f9e-3d2a-4c55-9d1e-1f2a3b4c5d6e"
    email = renderer.render(kind, context(action_url=staff_page))
    assert re.search(rf"Open the referral[^:\n]*: {re.escape(staff_page)}\n", email.text)
    assert re.search(rf'<a href="{re.escape(staff_page)}"[^>]*>Open the referral[^<]*</a>', email.html)


def test_html_escapes_what_it_is_given(renderer: Renderer) -> None:
    hostile = "<script>alert('x')</script>"
    for kind in sorted(KINDS):
        partners = [PartnerContact(name=hostile, hours=hostile, website=hostile)]
        email = renderer.render(kind, context(partner_name=hostile, recipient_name=hostile, partners=partners))

        assert "<script>" not in email.html, kind
        assert "&lt;script&gt;" in email.html, kind


def test_a_line_break_cannot_reach_the_subject_header(renderer: Renderer) -> None:
    email = renderer.render("referral_accepted", context(partner_name="Ruiz\r\nBcc: someone@example.com"))

    assert email.subject == "Accepted by Ruiz Bcc: someone@example.com — ref HX-1234"


def test_templates_use_only_the_allowed_variables() -> None:
    env = environment()
    for path in sorted(TEMPLATES.iterdir()):
        tree = env.parse(path.read_text())
        # Macros imported from _parts.html look undeclared inside a block; they are not data.
        imports = [name for node in tree.find_all(jinja2.nodes.FromImport) for name in node.names]
        macros = {name if isinstance(name, str) else name[1] for name in imports}
        used = jinja2.meta.find_undeclared_variables(tree) - macros - GETTEXT_NAMES
        assert used <= TEMPLATE_VARIABLES, f"{path.name} uses {sorted(used - TEMPLATE_VARIABLES)}"


def test_the_allowed_variables_are_the_email_context_and_the_clinic() -> None:
    # A field added to EmailContext is not shown by any template until it is allowed here: that
    # is the moment to check it holds no client data.
    derived = {"clinic", "subject", "urgency_subject", "urgency_label", "expires_on"}
    # The clinic's own contact, from settings, for the client's questions.
    derived |= {"clinic_phone", "clinic_phone_link", "clinic_address", "clinic_website"}
    assert TEMPLATE_VARIABLES == set(EmailContext.__struct_fields__) | derived


def test_unknown_kind_cannot_render(renderer: Renderer) -> None:
    with pytest.raises(CannotRender, match="unknown email kind 'offer_v2'"):
        renderer.render("offer_v2", context())


@pytest.mark.parametrize("kind", ["offer", "offer_reminder", "report_outcome"])
def test_an_offer_without_its_link_cannot_render(renderer: Renderer, kind: str) -> None:
    with pytest.raises(CannotRender, match="action_url is required"):
        renderer.render(kind, context(action_url=""))


def test_only_web_links_become_buttons(renderer: Renderer) -> None:
    with pytest.raises(CannotRender, match="not an http"):
        renderer.render("referral_accepted", context(action_url="javascript:alert(1)"))


def test_emails_without_a_link_or_deadline_still_read_well(renderer: Renderer) -> None:
    email = renderer.render("referral_declined", EmailContext(reference="HX-9"))

    assert email.subject == "Declined by the partner — ref HX-9"
    assert email.text.startswith("Hello,\n\nThe partner declined your referral.")
    assert "http" not in email.text


# --- No client data in any email -------------------------------------------------------------

# One sentinel per client field of a referral (design.md: referral in), plus the reasons.
CLIENT_SENTINELS = {
    "name": "SENTINEL-CLIENT-NAME-7f3a",
    "email": "sentinel-client-7f3a@client.example",
    "phone": "+15550107311",
    "postal_code": "SENTINEL-ZIP-7f3a",
    "note": "SENTINEL-NOTE-swollen-calf-7f3a",
    "reasons": "SENTINEL-REASON-calf_swelling_one_side-7f3a",
}


def payload_with_client_fields(kind: str) -> bytes:
    """A SendEmail as a careless producer might write it: the client's fields beside the real
    ones, at the top level and inside the context."""
    client = dict(CLIENT_SENTINELS)
    message = {
        "type": "send_email",
        "notification_id": "n-1",
        "kind": kind,
        "to": "Ruiz PT <intake@ruiz.example>",
        "referral_id": "r-1",
        "client": client,
        "note": client["note"],
        "reasons": [client["reasons"]],
        "context": {
            "recipient_name": "Dr. Ana Ruiz",
            "partner_name": "Ruiz Physical Therapy",
            "reference": "HX-1234",
            "urgency": "urgent",
            "action_url": LINK,
            "expires_at": "2026-05-12T21:00:00Z",
            "client": client,
            "client_name": client["name"],
            "note": client["note"],
            "reason": client["reasons"],
        },
    }
    return msgspec.json.encode(message)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_client_field_reaches_subject_headers_or_bodies(renderer: Renderer, kind: str) -> None:
    command = codec.decode(payload_with_client_fields(kind))
    assert isinstance(command, SendEmail)

    outgoing = compose(
        rendered=renderer.render(command.kind, command.context),
        to=command.to,
        notification_id=command.notification_id,
        mail_from="Sunshine Massage <referrals@sunshine.example>",
        reply_to="front-desk@sunshine.example",
    )

    message = outgoing.parsed()
    readable = [
        outgoing.data.decode("ascii"),  # the raw bytes, headers included
        *(f"{name}: {value}" for name, value in message.items()),  # decoded headers
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    ]
    for sentinel in CLIENT_SENTINELS.values():
        for text in readable:
            assert sentinel.lower() not in text.lower()
    assert "HX-1234" in readable[-2] and "HX-1234" in readable[-1]  # the scan reads real bodies


def test_the_accepted_email_says_who_makes_the_next_call(renderer: Renderer) -> None:
    partner_calls = renderer.render("referral_accepted", context(next_step="partner_contacts_client"))
    assert "will contact the client to book" in partner_calls.text
    assert "will contact the client to book" in partner_calls.html
    client_calls = renderer.render("referral_accepted", context(next_step="client_contacts_partner"))
    assert "the client is to contact them to book" in client_calls.text
    assert "the client is to contact them to book" in client_calls.html
    assert "will contact the client" not in client_calls.text


def test_an_email_to_a_partner_carries_its_manage_link_in_both_bodies(renderer: Renderer) -> None:
    manage = "https://directory.example/manage/m4nage"

    email = renderer.render("offer", context(manage_url=manage))

    assert f"Update your listing with {CLINIC}: {manage}" in email.text
    assert f'href="{manage}"' in email.html
    assert manage not in renderer.render("offer", context()).text


def test_a_manage_link_that_is_not_a_web_link_is_refused(renderer: Renderer) -> None:
    with pytest.raises(CannotRender, match="manage_url"):
        renderer.render("offer", context(manage_url="javascript:alert(1)"))


def test_an_email_to_a_partner_carries_its_inbox_link_in_both_bodies(renderer: Renderer) -> None:
    inbox = "https://referrals.example/inbox/1nb0x"

    email = renderer.render("offer_reminder", context(inbox_url=inbox))

    assert f"All your referrals from {CLINIC} in one place: {inbox}" in email.text
    assert f'href="{inbox}"' in email.html
    assert inbox not in renderer.render("offer_reminder", context()).text


def test_an_inbox_link_that_is_not_a_web_link_is_refused(renderer: Renderer) -> None:
    with pytest.raises(CannotRender, match="inbox_url"):
        renderer.render("offer", context(inbox_url="javascript:alert(1)"))
