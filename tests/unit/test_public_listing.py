"""The public page's words for clients: category synonyms, languages by code or name, slugs that
transliterate, distances in the clinic's unit, hours in 12-hour form, addresses without holes,
and the staff navigation by role."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.directory.domain import Partner, PartnerDetails
from services.directory.fields import Address, Location, slugify
from services.directory.search import Term, query_terms
from services.directory.web import listing
from shared import categories, languages
from shared.config import Settings
from shared.navigation import staff_links


@pytest.mark.parametrize(
    ("word", "slug"),
    [
        ("chiropractor", "chiropractic"),
        ("dietitian", "dietitian"),
        ("nutritionist", "dietitian"),
        ("counselor", "mental_health"),
        ("therapist", "mental_health"),
        ("therapist", "physical_therapy"),
        ("doctor", "primary_care"),
        ("pt", "physical_therapy"),
        ("physical therapist", "physical_therapy"),
        ("podiatrist", "podiatry"),
    ],
)
def test_everyday_words_name_categories(word: str, slug: str) -> None:
    assert slug in categories.search_words()[word]


def test_every_synonym_names_a_known_category() -> None:
    known = set(categories.load())
    assert all(slugs <= known for slugs in categories.search_words().values())


def test_a_query_is_cut_into_known_phrases_first() -> None:
    words = categories.search_words()
    assert query_terms("Physical  Therapist spanish", words) == [
        Term("physical therapist", frozenset({"physical_therapy"})),
        Term("spanish"),
    ]
    assert query_terms("Gulf", words) == [Term("gulf")]


@pytest.mark.parametrize("asked", ["es", "Spanish", "Español", "espanol", "SPANISH"])
def test_spanish_is_one_language_however_asked(asked: str) -> None:
    forms = languages.spellings(asked)
    assert {"es", "spanish", "español"} <= set(forms)
    assert languages.key(asked) == "es"
    assert languages.label(asked) == "Spanish (Español)"


def test_a_language_not_in_the_table_matches_its_own_spelling() -> None:
    assert languages.spellings("Klingon") == ("klingon",)
    assert languages.label("Klingon") == languages.label("klingon") == "Klingon"


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Dr. Søren Østergaard, DPT", "dr-soren-ostergaard-dpt"),
        ("Łukasz Nowak", "lukasz-nowak"),
        ("Straße Physio", "strasse-physio"),
        ("José Müller", "jose-muller"),
        ("Æbelø Care", "aebelo-care"),
    ],
)
def test_slugs_transliterate(name: str, slug: str) -> None:
    assert slugify(name) == slug


def _partner(*, location: Location | None, postal_code: str = "33701", city: str = "St. Petersburg") -> Partner:
    details = PartnerDetails(
        name="Bay PT",
        category="physical_therapy",
        email="intake@baypt.example",
        accepting_new_clients="yes",
        address=Address(line1="100 Main St", city=city, state="FL", postal_code=postal_code),
        location=location,
        languages=("English", "Español"),
    )
    now = datetime(2026, 11, 29, tzinfo=UTC)
    return Partner(id="p1", slug="bay-pt", details=details, status="active", version=1, created_at=now, updated_at=now)


def test_distances_are_in_miles_to_the_partner() -> None:
    partner = _partner(location=Location(27.80, -82.64))
    assert listing.distance_text(partner, 3.2187, unit="mi", searched_zip="33701") == "2.0 mi away"
    assert listing.distance_text(partner, 3.2187, unit="km") == "3.2 km away"
    assert listing.distance_text(partner, None, unit="mi") == ""


def test_a_partner_placed_by_its_zip_is_in_that_zip_not_zero_away() -> None:
    centre = Location(27.7723, -82.6386)  # 33701's centre
    partner = _partner(location=centre)
    assert listing.distance_text(partner, 0.0, unit="mi", searched_zip="33701") == "In 33701"
    assert listing.distance_text(partner, 8.0, unit="mi", searched_zip="33713") == "About 5 mi away"


def test_hours_read_in_twelve_hour_form() -> None:
    assert listing.twelve_hour("Mon–Fri 8:00–17:00, Sat 09:30–12:00") == "Mon–Fri 8:00 AM–5:00 PM, Sat 9:30 AM–12:00 PM"


def test_an_address_has_no_holes() -> None:
    assert listing.address_lines(_partner(location=None, city="", postal_code="33701")) == ["100 Main St", "FL 33701"]
    assert listing.address_lines(_partner(location=None)) == ["100 Main St", "St. Petersburg, FL 33701"]
    assert "destination=100+Main+St" in listing.directions_url(_partner(location=None))


def test_languages_show_by_name() -> None:
    assert listing.language_names(_partner(location=None)) == "English, Spanish (Español)"


def test_the_staff_navigation_follows_the_role_and_the_configured_urls() -> None:
    settings = Settings(
        directory_url="https://directory.clinic.example", referrals_url="https://referrals.clinic.example"
    )
    admin = staff_links(settings, role="admin", here="directory", path="/admin/partners/import")
    assert [link.label for link in admin] == [
        "Referrals",
        "New referral",
        "Clients",
        "Partners",
        "Import/Export",
        "Staff",
        "Partner inboxes",
        "Public page",
    ]
    assert admin[3].url == "https://directory.clinic.example/admin/partners"
    assert admin[0].url == "https://referrals.clinic.example/"
    assert [link.label for link in admin if link.current] == ["Import/Export"]
    therapist = staff_links(settings, role="therapist", here="referrals", path="/")
    assert [link.label for link in therapist] == ["Referrals", "New referral", "Clients", "Public page"]
    assert [link.label for link in therapist if link.current] == ["Referrals"]
    assert staff_links(settings, role=None, here="referrals", path="/") == []
