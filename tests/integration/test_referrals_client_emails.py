"""The client's email (issue 12 item 4), from the referral to the inbox: staged in the outbox with
the change that causes it, sent by the real notifier worker through real Redis to a real SMTP
server. Sent only to a client who gave an email and agreed to it; in their language; the
partner's details (never a decliner's), the clinic's contact; never the client's name, the
reasons or the note."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import msgspec
import pytest
from litestar.testing import TestClient

from services.dev.mail_catcher import MailCatcher
from services.notifier import bootstrap as notifier_bootstrap
from services.notifier.jobs import runtime as notifier_runtime
from shared.config import Settings
from tests.support.notifier import notifier_settings, work
from tests.support.referrals import (
    CLIENT,
    URGENT,
    changed,
    csrf,
    deliver,
    flush,
    link_path,
    login,
    new_referral,
    partner,
    queued_emails,
)

CLIENT_EMAIL = "zelda.client@example.org"
NOTE = "Left calf warm and swollen since Tuesday"
# What must never reach the client's email: their name, the note, the reasons in any wording.
NEVER = ("Zelda", "Quintessa", "Marchbanks", "calf", "swollen", "Tuesday", "727-555-0142", "5550142")
PHYSICIANS = ["gp1", "gp2", "gp3"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Three physicians with phones, addresses and hours in the replica."""
    details = {
        "gp1": ("Dr. Ana Gomez", "+17275550101", "Mon-Fri 8am-5pm"),
        "gp2": ("Dr. Ben Ode", "+17275550102", ""),
        "gp3": ("Dr. Cy Lund", "+17275550103", "Sat 9am-1pm"),
    }
    for pid, (name, phone, hours) in details.items():
        snapshot = msgspec.structs.replace(partner(pid, "primary_care", name=name), phone=phone, hours=hours)
        deliver(settings, changed(snapshot, version=2))
    return settings


@pytest.fixture
def mailbox(settings: Settings, mail_catcher: MailCatcher) -> Iterator[MailCatcher]:
    """The real notifier, on the test's Redis, sending to a real SMTP server, with the clinic's
    contact set."""
    base = notifier_settings(settings.redis_url, mail_catcher.port, mail_catcher.directory.parent)
    notifier = msgspec.structs.replace(
        base, clinic_phone="727-555-0100", clinic_address="1 Bay St, St. Petersburg, FL 33701"
    )
    notifier_runtime.install(notifier_bootstrap.build(notifier))
    try:
        yield mail_catcher
    finally:
        notifier_runtime.uninstall()


def client_with(**fields: object) -> dict:
    return {**CLIENT, **fields}


def deliver_all(client: TestClient, settings: Settings) -> None:
    """Relay what the referrals service staged, and have the notifier send it."""
    flush(client)
    work(settings.redis_url)


def to_client(mailbox: MailCatcher) -> list[EmailMessage]:
    return [m for m in mailbox.messages() if CLIENT_EMAIL in str(m["To"])]


def readable(message: EmailMessage) -> str:
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    return "\n".join([str(message["Subject"]), plain.get_content(), html.get_content()])


def offer_links(settings: Settings) -> dict[str, str]:
    """The offer links still queued for the notifier, by partner id (read them before it runs)."""
    return {e.to.split("@")[0]: link_path(e) for e in queued_emails(settings.redis_url) if e.kind == "offer"}


def answer(client: TestClient, path: str, decision: str) -> None:
    form = {"decision": decision, "_csrf_token": csrf(client.get(path).text)}
    if decision == "decline":
        form["reason"] = "no_capacity"
    assert client.post(path, data=form).status_code == 200


def test_a_spanish_client_who_is_to_call_gets_the_accepting_partners_details_in_spanish(
    client: TestClient, settings: Settings, mailbox: MailCatcher
) -> None:
    headers = login(client)
    new_referral(
        client,
        headers,
        client=client_with(email=CLIENT_EMAIL, email_consent=True, language="es"),
        next_step="client_contacts_partner",
        note=NOTE.replace("Tuesday", "two days").replace("calf", "leg"),
    )
    flush(client)
    links = offer_links(settings)
    deliver_all(client, settings)
    assert to_client(mailbox) == []  # nothing before a partner accepts

    answer(client, links["gp1"], "accept")
    deliver_all(client, settings)

    [email] = to_client(mailbox)
    text = readable(email)
    assert email["Subject"].startswith("Su referencia: cómo comunicarse con Dr. Ana Gomez")
    assert "Hola:" in text and "aceptó atenderle" in text
    assert "(727) 555-0101" in text and "Mon-Fri 8am-5pm" in text and "St. Petersburg, FL 33701" in text
    assert "¿Preguntas? Comuníquese con Sunshine Massage" in text and "(727) 555-0100" in text
    assert "Dr. Ben Ode" not in text  # only the partner who accepted
    for secret in (*NEVER, "leg", "two days", "numbness"):
        assert secret.lower() not in text.lower(), secret


@pytest.mark.parametrize(
    "fields",
    [{"email": CLIENT_EMAIL, "email_consent": False}, {}],
    ids=["an email but no consent", "no email"],
)
def test_no_email_without_an_address_and_consent(
    client: TestClient, settings: Settings, mailbox: MailCatcher, fields: dict
) -> None:
    headers = login(client)
    new_referral(client, headers, client=client_with(**fields), next_step="client_contacts_partner")
    flush(client)
    answer(client, offer_links(settings)["gp1"], "accept")
    flush(client)

    assert not [e for e in queued_emails(settings.redis_url) if e.kind.startswith("client_")]
    work(settings.redis_url)
    assert to_client(mailbox) == []
    assert any("tess@clinic.example" in str(m["To"]) for m in mailbox.messages())  # the therapist was told


def test_no_client_email_on_acceptance_when_the_partner_makes_the_call(
    client: TestClient, settings: Settings, mailbox: MailCatcher
) -> None:
    headers = login(client)
    new_referral(client, headers, client=client_with(email=CLIENT_EMAIL, email_consent=True))
    flush(client)
    answer(client, offer_links(settings)["gp1"], "accept")
    deliver_all(client, settings)

    assert to_client(mailbox) == []


def test_a_failed_urgent_referral_tells_the_client_to_be_seen_today_and_lists_no_decliner(
    client: TestClient, settings: Settings, mailbox: MailCatcher
) -> None:
    headers = login(client)
    new_referral(
        client,
        headers,
        client=client_with(email=CLIENT_EMAIL, email_consent=True),
        reasons=URGENT,
        partner_ids=PHYSICIANS,
        note=NOTE,
    )
    flush(client)
    links = offer_links(settings)
    for pid in PHYSICIANS:
        answer(client, links[pid], "decline")
    flush(client)
    kinds = [e.kind for e in queued_emails(settings.redis_url)]
    assert kinds.count("client_referral_failed") == 1 and kinds.count("no_partner_left") == 1
    work(settings.redis_url)

    [email] = to_client(mailbox)
    text = readable(email)
    assert email["Subject"].startswith("Your referral from Sunshine Massage: where to get care")
    assert "Please be seen today" in text
    assert "Call your own doctor's office today" in text and "urgent care center today" in text
    assert "If it gets worse, call 911." in text
    for decliner in ("Dr. Ana Gomez", "Dr. Ben Ode", "Dr. Cy Lund", "555-0101", "555-0102", "555-0103"):
        assert decliner not in text, decliner
    for secret in NEVER:
        assert secret.lower() not in text.lower(), secret
    # With every physician declining, nobody is left to list: the clinic is the next call.
    assert "Please ask Sunshine Massage for the name of a professional near you." in text


def test_a_failed_referral_lists_the_partners_the_handout_lists(
    client: TestClient, settings: Settings, mailbox: MailCatcher
) -> None:
    # gp1 and gp2 decline in turn; gp3, never offered it, is a suggestion the handout tops its
    # list up with, and so is the email's.
    headers = login(client)
    referral = new_referral(
        client,
        headers,
        client=client_with(email=CLIENT_EMAIL, email_consent=True, language="es"),
        partner_ids=["gp1", "gp2"],
    )
    flush(client)
    answer(client, offer_links(settings)["gp1"], "decline")
    flush(client)
    answer(client, offer_links(settings)["gp2"], "decline")
    deliver_all(client, settings)

    [email] = to_client(mailbox)
    text = readable(email)
    assert "No pudimos encontrar un consultorio" in text and "A quién contactar" in text
    assert "Dr. Cy Lund" in text and "(727) 555-0103" in text and "Sat 9am-1pm" in text
    assert "Dr. Ana Gomez" not in text and "Dr. Ben Ode" not in text
    handout = client.get(f"/referrals/{referral['id']}/handout", headers=headers)
    assert "Dr. Cy Lund" in handout.text and "Dr. Ana Gomez" not in handout.text


def test_accepted_by_phone_emails_the_client_who_is_to_call(
    client: TestClient, settings: Settings, mailbox: MailCatcher
) -> None:
    headers = login(client)
    referral = new_referral(
        client,
        headers,
        client=client_with(email=CLIENT_EMAIL, email_consent=True),
        reasons=URGENT,
        partner_ids=PHYSICIANS,
        next_step="client_contacts_partner",
    )
    gp2 = next(o for o in referral["offers"] if o["partner_id"] == "gp2")
    path = f"/api/v1/referrals/{referral['id']}/offers/{gp2['id']}/accepted-by-phone"
    assert client.post(path, headers=headers).status_code == 200
    deliver_all(client, settings)

    [email] = to_client(mailbox)
    text = readable(email)
    assert email["Subject"].startswith("Your referral: how to reach Dr. Ben Ode")
    assert "(727) 555-0102" in text and "Please call them today, to be seen today." in text
    assert "Dr. Ana Gomez" not in text and "Dr. Cy Lund" not in text
