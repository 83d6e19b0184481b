"""The emails to a client (issue 12 item 4): the partner's details in the client's language,
phones for people, the clinic's contact from settings, no empty sections, and catalogs that
translate every string the templates use."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages import pofile
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from services.notifier.rendering import CLIENT_KINDS, Renderer
from shared import translations
from shared.messages import Address, EmailContext, PartnerContact

ROOT = Path(__file__).resolve().parents[2]
CLINIC = "Sunshine Massage"
RUIZ = PartnerContact(
    name="Ruiz Physical Therapy",
    credentials="DPT",
    phone="7275550199",
    phone_link="+17275550199",
    address=Address(line1="200 Central Ave", city="St. Petersburg", state="FL", postal_code="33701"),
    hours="Mon-Fri 8am-6pm",
    website="ruizpt.example",
)
BARE = PartnerContact(name="Bay Family Medicine")


@pytest.fixture
def renderer() -> Renderer:
    return Renderer(
        clinic_name=CLINIC,
        timezone="America/New_York",
        clinic_phone="+1 727 555 0100",
        clinic_address="1 Bay St, St. Petersburg, FL 33701",
        clinic_website="https://sunshine.example",
    )


def client_email(**changes: object) -> EmailContext:
    fields: dict = {
        "reference": "HX-1234",
        "urgency": "routine",
        "partner_name": RUIZ.name,
        "partners": [RUIZ],
        "language": "en",
    }
    return EmailContext(**{**fields, **changes})


def test_the_accepting_partners_details_with_the_phone_for_people_and_a_tel_link(renderer: Renderer) -> None:
    email = renderer.render("client_partner_details", client_email())

    assert email.subject == "Your referral: how to reach Ruiz Physical Therapy — ref HX-1234"
    for body in (email.text, email.html):
        assert "has agreed to see you" in body and "Please contact them to book" in body
        assert "(727) 555-0199" in body and "7275550199" not in body.replace("+17275550199", "")
        assert "200 Central Ave, St. Petersburg, FL 33701" in body
        assert "Mon-Fri 8am-6pm" in body and "ruizpt.example" in body
    assert 'href="tel:+17275550199"' in email.html
    assert 'href="https://ruizpt.example"' in email.html


def test_the_clinics_contact_comes_from_settings(renderer: Renderer) -> None:
    email = renderer.render("client_partner_details", client_email())

    for body in (email.text, email.html):
        assert f"Questions? Contact {CLINIC}" in body
        assert "(727) 555-0100" in body and "1 Bay St, St. Petersburg, FL 33701" in body
        assert "https://sunshine.example" in body
    assert 'href="tel:+17275550100"' in email.html


def test_no_empty_sections(renderer: Renderer) -> None:
    bare_clinic = Renderer(clinic_name=CLINIC, timezone="America/New_York")

    email = bare_clinic.render("client_partner_details", client_email(partners=[BARE], partner_name=BARE.name))

    for body in (email.text, email.html):
        assert "Bay Family Medicine" in body
        for label in ("Questions?", "Phone", "Address", "Hours", "Website", "video"):
            assert label not in body, label
    assert "tel:" not in email.html and "href" not in email.html


def test_a_spanish_client_reads_it_in_spanish(renderer: Renderer) -> None:
    email = renderer.render("client_partner_details", client_email(language="es", urgency="urgent"))

    assert email.subject == "Su referencia: cómo comunicarse con Ruiz Physical Therapy — ref HX-1234"
    for body in (email.text, email.html):
        assert "Hola:" in body and "aceptó atenderle" in body
        assert "Teléfono: " in body and "Dirección: " in body and "Horario: " in body
        assert "Llámelos hoy para que le vean hoy mismo." in body and "llame al 911" in body
        assert "¿Preguntas? Comuníquese con Sunshine Massage" in body
        assert "Please" not in body and "Hello" not in body
    assert '<html lang="es">' in email.html


@pytest.mark.parametrize("language", ["es-MX", "ES", "es_US"])
def test_a_regional_spanish_is_spanish(renderer: Renderer, language: str) -> None:
    assert "Hola:" in renderer.render("client_referral_failed", client_email(language=language)).text


@pytest.mark.parametrize("language", ["", "ht", "xx-<script>"])
def test_a_language_without_a_catalog_is_english(renderer: Renderer, language: str) -> None:
    email = renderer.render("client_referral_failed", client_email(language=language))

    assert email.text.startswith("Hello,")
    assert '<html lang="en">' in email.html


def test_a_failed_urgent_referral_says_to_be_seen_today(renderer: Renderer) -> None:
    email = renderer.render("client_referral_failed", client_email(urgency="urgent", partner_name=""))

    assert email.subject == f"Your referral from {CLINIC}: where to get care — ref HX-1234"
    for body in (email.text, email.html):
        assert "Please be seen today" in body
        assert "Call your own doctor's office today" in body and "urgent care center today" in body
        assert "If it gets worse, call 911." in body
        assert "You can also call the practices listed below." in body and "Ruiz Physical Therapy" in body


def test_a_failed_urgent_referral_in_spanish(renderer: Renderer) -> None:
    email = renderer.render("client_referral_failed", client_email(urgency="urgent", language="es"))

    assert email.subject == f"Su referencia de {CLINIC}: dónde recibir atención — ref HX-1234"
    for body in (email.text, email.html):
        assert "Por favor, hágase ver hoy mismo" in body and "Si empeora, llame al 911." in body
        assert "centro de atención urgente" in body and "A quién contactar" in body


@pytest.mark.parametrize(("urgency", "when"), [("soon", "within the next week"), ("routine", "when it suits you")])
def test_a_failed_referral_that_is_not_urgent_says_when(renderer: Renderer, urgency: str, when: str) -> None:
    email = renderer.render("client_referral_failed", client_email(urgency=urgency))

    for body in (email.text, email.html):
        assert when in body and "be seen today" not in body and "Whom to contact" in body


def test_a_failed_referral_with_no_partner_to_list_points_to_the_clinic(renderer: Renderer) -> None:
    email = renderer.render("client_referral_failed", client_email(partners=[], urgency="urgent"))

    for body in (email.text, email.html):
        assert f"Please ask {CLINIC} for the name of a professional near you." in body
        assert "Whom to contact" not in body and "listed below" not in body


def test_a_website_that_is_not_a_web_link_is_never_a_link(renderer: Renderer) -> None:
    odd = PartnerContact(name="Odd", website="javascript:alert(1)", phone="not a phone", phone_link="javascript:x")
    email = renderer.render("client_partner_details", client_email(partners=[odd]))

    assert "javascript:alert(1)" in email.text
    assert 'href="javascript' not in email.html and "tel:javascript" not in email.html
    assert "Phone: not a phone" in email.text


def test_a_client_email_never_greets_by_name(renderer: Renderer) -> None:
    for kind in sorted(CLIENT_KINDS):
        email = renderer.render(kind, client_email(recipient_name="SENTINEL-NAME-7f3a"))
        assert "SENTINEL-NAME-7f3a" not in email.text + email.html + email.subject


def test_partner_emails_stay_in_english_whatever_the_language_says(renderer: Renderer) -> None:
    email = renderer.render("referral_declined", EmailContext(reference="HX-9", language="es"))
    assert email.text.startswith("Hello,\n\nThe partner declined your referral.")


# --- The catalogs ----------------------------------------------------------------------------


def _template_messages() -> set[str]:
    """Every string the code asks the catalogs for, found as ``pybabel extract`` finds them
    (through the repository's babel.cfg)."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = extract_from_dir(str(ROOT), method_map=method_map, options_map=options_map)
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_the_templates_and_the_handout_ask_for_the_strings_of_client_emails() -> None:
    messages = _template_messages()
    assert "Please be seen today" in messages
    assert "Your referral from %(clinic)s: where to get care" in messages  # a subject
    assert "What to do today, and if it gets worse" in messages  # the handout's


@pytest.mark.parametrize("language", sorted(translations.available() - {translations.DEFAULT}))
def test_every_string_of_a_client_email_is_translated(language: str) -> None:
    with (translations.LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as source:
        catalog = pofile.read_po(source, locale=language)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}

    missing = _template_messages() - translated
    assert not missing, f"{language} lacks {sorted(missing)}"
    unused = translated - _template_messages()
    assert not unused, f"{language} translates strings no template uses: {sorted(unused)}"


def test_spanish_and_english_to_start() -> None:
    assert {"en", "es"} <= translations.available()
    assert translations.language("es-419") == "es"
    assert translations.language("fr") == "en"
