"""The directory's partner rules, without I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.directory.domain import (
    EDITABLE_FIELDS,
    REVIEWED_FIELDS,
    SELF_SERVICE_FIELDS,
    PartnerDetails,
    StatusChangeNotAllowed,
    check_transition,
    new_partner,
)
from services.directory.fields import Address, InvalidPartner, Location, slug_base, slugify, unique_slug
from shared import categories
from shared.errors import Conflict, InvalidInput

CATEGORIES = tuple(categories.load())
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def details(**changes: object) -> PartnerDetails:
    base = PartnerDetails(name="Bay Physical Therapy", category="physical_therapy", email="intake@baypt.example")
    return replace(base, **changes)


def partner(**changes: object):
    return new_partner(
        id="p1",
        slug="bay-physical-therapy",
        details=details(**changes),
        status="active",
        categories=CATEGORIES,
        now=NOW,
    )


def test_valid_details_are_normalised() -> None:
    valid = details(
        name="  Bay   Physical Therapy ",
        email="Intake@BayPT.Example",
        phone="(727) 555-0100",
        website="baypt.example",
        address=Address(line1=" 1 Main St ", city="St. Petersburg", state="FL", postal_code="33701"),
        location=Location(27.77, -82.64),
        languages=("English", " Spanish", "english", ""),
    ).validated(categories=CATEGORIES)
    assert valid.name == "Bay Physical Therapy"
    assert valid.email == "Intake@baypt.example"
    assert valid.phone == "+17275550100"
    assert valid.website == "https://baypt.example"
    assert valid.address == Address(line1="1 Main St", city="St. Petersburg", state="FL", postal_code="33701")
    assert valid.languages == ("English", "Spanish")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"category": ""}, "category"),
        ({"category": "astrology"}, "category"),
        ({"email": ""}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "a@b"}, "email"),
        ({"email": "two words@example.org"}, "email"),
        ({"accepting_new_clients": "maybe"}, "accepting_new_clients"),
        ({"phone": "555-0100"}, "phone"),
        ({"phone": "call me"}, "phone"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"website": "https://localhost"}, "website"),
        ({"location": Location(91, 0)}, "location.lat"),
        ({"location": Location(-90.5, 0)}, "location.lat"),
        ({"location": Location(0, 180.1)}, "location.lon"),
        ({"location": Location(float("nan"), 0)}, "location.lat"),
        ({"address": Address(postal_code="1" * 21)}, "address.postal_code"),
        ({"languages": tuple(f"lang{i}" for i in range(21))}, "languages"),
        ({"telehealth": "yes"}, "telehealth"),
        ({"listed": None}, "listed"),
    ],
)
def test_each_rule_can_fail_naming_its_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidPartner) as caught:
        details(**changes).validated(categories=CATEGORIES)
    assert caught.value.field == field
    assert isinstance(caught.value, InvalidInput)


def test_an_empty_address_is_no_address() -> None:
    assert details(address=Address(city="  ")).validated(categories=CATEGORIES).address is None


def test_phone_keeps_international_numbers() -> None:
    assert details(phone="+44 20 7946 0958").validated(categories=CATEGORIES).phone == "+442079460958"


def test_new_partner_starts_at_version_1_and_not_archived() -> None:
    created = partner()
    assert (created.version, created.status, created.is_public) == (1, "active", True)
    with pytest.raises(InvalidPartner) as caught:
        new_partner(id="p", slug="s", details=details(), status="archived", categories=CATEGORIES, now=NOW)
    assert caught.value.field == "status"


def test_revise_bumps_version_only_when_something_changes() -> None:
    created = partner()
    later = NOW + timedelta(minutes=5)
    assert created.revise(details=details(), categories=CATEGORIES, now=later) is created
    renamed = created.revise(details=created.details.with_changes({"name": "Bay PT"}), categories=CATEGORIES, now=later)
    assert (renamed.version, renamed.details.name, renamed.updated_at) == (2, "Bay PT", later)
    assert renamed.slug == created.slug  # a rename keeps the public URL


def test_revise_validates_the_new_details() -> None:
    with pytest.raises(InvalidPartner) as caught:
        partner().revise(details=details(email="nope"), categories=CATEGORIES, now=NOW)
    assert caught.value.field == "email"


def test_with_changes_refuses_unknown_fields() -> None:
    with pytest.raises(InvalidPartner) as caught:
        details().with_changes({"favourite_colour": "teal"})
    assert caught.value.field == "favourite_colour"


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", "active"),
        ("active", "paused"),
        ("paused", "active"),
        ("active", "archived"),
        ("pending", "archived"),
    ],
)
def test_allowed_transitions(current: str, target: str) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target"),
    [("archived", "active"), ("archived", "pending"), ("active", "pending"), ("pending", "paused")],
)
def test_refused_transitions_conflict_on_status(current: str, target: str) -> None:
    with pytest.raises(StatusChangeNotAllowed) as caught:
        check_transition(current, target)
    assert caught.value.field == "status"
    assert isinstance(caught.value, Conflict)


def test_unknown_status_is_invalid_input() -> None:
    with pytest.raises(InvalidPartner) as caught:
        check_transition("active", "deleted")
    assert caught.value.field == "status"


def test_hidden_partners_are_not_public() -> None:
    assert not partner(listed=False).is_public
    assert not partner().revise(status="paused", categories=CATEGORIES, now=NOW).is_public


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Bay Physical Therapy", "bay-physical-therapy"),
        ("Dr. José O'Neil, DPT", "dr-jose-o-neil-dpt"),
        ("  --Ünïcödé--  ", "unicode"),
        ("A & B / C", "a-b-c"),
        ("李医生", ""),
    ],
)
def test_slugify(text: str, slug: str) -> None:
    assert slugify(text) == slug


def test_slugify_cuts_long_names_at_a_word_boundary() -> None:
    slug = slugify("word " * 40, max_length=22)
    assert slug == "word-word-word-word"
    assert slugify("x" * 100, max_length=10) == "x" * 10


def test_unique_slug_appends_a_counter_and_falls_back_for_non_latin_names() -> None:
    assert unique_slug("bay-pt", taken=set()) == "bay-pt"
    assert unique_slug("bay-pt", taken={"bay-pt", "bay-pt-2"}) == "bay-pt-3"
    assert slug_base("李医生") == "partner"
    assert len(slug_base("word " * 40)) <= 76


# --- the fields added with the full profile --------------------------------------------------


@pytest.mark.parametrize("npi", ["1234567893", "1245319599", " 1234-567-893 "])
def test_valid_npis_pass_their_check_digit(npi: str) -> None:
    assert details(npi=npi).validated(categories=CATEGORIES).npi in ("1234567893", "1245319599")


@pytest.mark.parametrize(
    ("npi", "reason"), [("1234567890", "check digit"), ("123456789", "10 digits"), ("12345678AB", "10 digits")]
)
def test_bad_npis_say_why(npi: str, reason: str) -> None:
    with pytest.raises(InvalidPartner) as caught:
        details(npi=npi).validated(categories=CATEGORIES)
    assert caught.value.field == "npi" and reason in caught.value.detail


def test_phones_are_e164_checked_against_the_numbering_plan() -> None:
    assert details(phone="727.555.0123").validated(categories=CATEGORIES).phone == "+17275550123"
    with pytest.raises(InvalidPartner) as caught:
        details(phone="+1 555 555 5555").validated(categories=CATEGORIES)  # no such area code
    assert caught.value.field == "phone"


def test_a_postal_code_without_coordinates_is_geocoded_and_given_coordinates_win() -> None:
    def geocode(zip_code: str) -> Location | None:
        return Location(27.77, -82.64) if zip_code == "33701" else None

    at_zip = details(address=Address(postal_code="33701")).validated(categories=CATEGORIES, geocode=geocode)
    assert at_zip.location == Location(27.77, -82.64)
    given = details(address=Address(postal_code="33701"), location=Location(1, 2))
    assert given.validated(categories=CATEGORIES, geocode=geocode).location == Location(1, 2)
    # A real ZIP the geocoder cannot place (no ZIP that is not a real one is stored: see below).
    unknown = details(address=Address(postal_code="90210")).validated(categories=CATEGORIES, geocode=geocode)
    assert unknown.location is None


@pytest.mark.parametrize(
    ("address", "field"),
    [
        (Address(postal_code="1234"), "address.postal_code"),
        (Address(postal_code="ABCDE"), "address.postal_code"),
        (Address(postal_code="00000"), "address.postal_code"),
        (Address(state="Florida"), "address.state"),
        (Address(state="ZZ"), "address.state"),
    ],
)
def test_a_zip_must_be_a_known_us_zip_and_a_state_its_code(address: Address, field: str) -> None:
    with pytest.raises(InvalidPartner) as refused:
        details(address=address).validated(categories=CATEGORIES)
    assert refused.value.field == field


def test_a_state_code_is_upper_cased_and_zip_plus_four_accepted() -> None:
    address = details(address=Address(state="fl", postal_code="33701-1234")).validated(categories=CATEGORIES).address
    assert address is not None and address.state == "FL" and address.postal_code == "33701-1234"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"response_window_days": 0}, "response_window_days"),
        ({"response_window_days": 91}, "response_window_days"),
        ({"response_window_days": True}, "response_window_days"),
        ({"bio": "x" * 2001}, "bio"),
        ({"specialties": "knees"}, "specialties"),
        ({"accepts_referrals_from": ("x" * 81,)}, "accepts_referrals_from"),
        ({"license_number": "x" * 41}, "license_number"),
    ],
)
def test_profile_fields_are_bounded(changes: dict, field: str) -> None:
    with pytest.raises(InvalidPartner) as caught:
        details(**changes).validated(categories=CATEGORIES)
    assert caught.value.field == field


def test_profile_lists_are_trimmed_and_deduplicated() -> None:
    valid = details(specialties=(" knees", "Knees", "backs "), license_state="fl").validated(categories=CATEGORIES)
    assert valid.specialties == ("knees", "backs")
    assert valid.license_state == "FL"


def test_phones_read_the_way_local_clients_write_them() -> None:
    from services.directory.fields import display_phone

    assert display_phone("+17275550100") == "(727) 555-0100"
    assert display_phone("+442079460000") == "+44 20 7946 0000"


def test_published_snapshot_carries_what_referrals_needs_and_nothing_private() -> None:
    from services.directory.fields import Address, Location
    from services.directory.publisher import snapshot

    full = partner(
        phone="+17275550100",
        address=Address(line1="1 Main St", city="St. Petersburg", state="FL", postal_code="33701"),
        location=Location(27.77, -82.64),
        languages=("en", "es"),
        hours="Mon–Fri",
        npi="1234567893",
        bio="Private-ish bio",
        insurance_notes="Aetna",
        license_number="PT1234",
    )
    sent = snapshot(full)
    assert (sent.id, sent.slug, sent.status, sent.email) == (
        "p1",
        "bay-physical-therapy",
        "active",
        "intake@baypt.example",
    )
    assert sent.address.postal_code == "33701" and sent.location.lat == 27.77
    assert sent.languages == ["en", "es"] and sent.hours == "Mon–Fri" and sent.phone == "+17275550100"
    assert not {"npi", "bio", "insurance_notes", "license_number"} & set(sent.__struct_fields__)


def test_published_snapshot_reads_every_detail_it_names() -> None:
    # The snapshot is built from the details by name (for speed, issue 19), and must equal the
    # conversion of all of them.
    import dataclasses

    import msgspec

    from services.directory.fields import Address, Location
    from services.directory.publisher import snapshot
    from shared.messages import PartnerSnapshot

    full = partner(
        accepting_new_clients="waitlist",
        phone="+17275550100",
        credentials="DPT",
        practice="Bay PT",
        website="https://baypt.example",
        address=Address(line1="1 Main St", line2="Suite 2", city="St. Petersburg", state="FL", postal_code="33701"),
        location=Location(27.77, -82.64),
        languages=("en", "es"),
        telehealth=True,
        accepts_referrals_from=("massage therapist",),
        response_window_days=3,
        specialties=("knees",),
        hours="Mon–Fri",
        accepting_until=date(2027, 1, 1),
        licence_expires_on=date(2028, 1, 1),
    )
    everything = {**dataclasses.asdict(full.details), "id": full.id, "slug": full.slug, "status": full.status}
    assert snapshot(full) == msgspec.convert(everything, PartnerSnapshot)


def test_api_answer_shows_the_referral_email_only_when_asked() -> None:
    import msgspec

    from services.directory.web.schemas import PartnerOut

    anonymous = msgspec.to_builtins(PartnerOut.from_domain(partner(), show_email=False))
    admin = msgspec.to_builtins(PartnerOut.from_domain(partner(), show_email=True, distance_km=1.5))
    assert "email" not in anonymous and "distance_km" not in anonymous
    assert admin["email"] == "intake@baypt.example" and admin["distance_km"] == 1.5
    assert anonymous["version"] == 1 and anonymous["name"] == "Bay Physical Therapy"


def test_a_capacity_until_day_is_kept_only_while_not_accepting() -> None:
    until = date(2027, 1, 15)
    assert (
        details(accepting_new_clients="no", accepting_until="2027-01-15")
        .validated(categories=CATEGORIES)
        .accepting_until
        == until
    )
    assert (
        details(accepting_new_clients="waitlist", accepting_until=until)
        .validated(categories=CATEGORIES)
        .accepting_until
        == until
    )
    assert (
        details(accepting_new_clients="yes", accepting_until=until).validated(categories=CATEGORIES).accepting_until
        is None
    )


@pytest.mark.parametrize("value", ["next week", "2027-13-01", 20270115, datetime(2027, 1, 15, tzinfo=UTC)])
def test_a_date_field_refuses_what_is_not_a_day_naming_it(value: object) -> None:
    with pytest.raises(InvalidPartner) as refused:
        details(licence_expires_on=value).validated(categories=CATEGORIES)
    assert refused.value.field == "licence_expires_on"


def test_a_licence_is_good_through_its_expiry_day() -> None:
    lapsing = partner(licence_expires_on=date(2026, 11, 30))
    assert not lapsing.licence_expired(date(2026, 11, 30))
    assert lapsing.licence_expired(date(2026, 12, 1))
    assert not partner().licence_expired(date(2100, 1, 1))


def test_flagging_an_unconfirmed_listing_and_confirming_it() -> None:
    listed = partner()
    later = NOW + timedelta(days=200)

    flagged = listed.flagged_unconfirmed(now=later, unlist=True)

    assert (flagged.needs_review_since, flagged.hidden_until_confirmed, flagged.version) == (later, True, 2)
    assert not flagged.is_public
    assert flagged.flagged_unconfirmed(now=later + timedelta(days=1), unlist=True) is flagged
    confirmed = flagged.confirmed(now=later + timedelta(days=2))
    assert confirmed.is_public and confirmed.needs_review_since is None
    assert (confirmed.last_confirmed_at, confirmed.version) == (later + timedelta(days=2), 3)
    kept_listed = listed.flagged_unconfirmed(now=later, unlist=False)
    assert kept_listed.is_public and kept_listed.needs_review_since == later


def test_what_a_partner_changes_itself_and_what_the_admin_reviews_are_apart_and_are_details() -> None:
    assert not SELF_SERVICE_FIELDS & REVIEWED_FIELDS
    assert SELF_SERVICE_FIELDS | REVIEWED_FIELDS <= EDITABLE_FIELDS
    # The referral address, the listing flag and the professions served stay the admin's alone.
    assert {"email", "listed", "accepts_referrals_from"}.isdisjoint(SELF_SERVICE_FIELDS | REVIEWED_FIELDS)
