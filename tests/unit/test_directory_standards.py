"""The pure parts of the standards APIs: stable ids, the NUCC codes of the vocabulary, HSDS's page
envelope and the FHIR search parameters."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from services.directory import fhir_search, hsds
from services.directory.identifiers import partner_of, practice_id, twin_id
from services.directory.search import InvalidSearch
from shared import categories

VOCABULARY = categories.load()


def test_twin_ids_are_stable_distinct_valid_and_lead_back_to_their_partner() -> None:
    partner = str(uuid.uuid4())
    location, service_at_location = twin_id(partner, "location"), twin_id(partner, "service_at_location")
    assert twin_id(partner, "location") == location
    assert len({partner, location, service_at_location}) == 3
    assert uuid.UUID(location).version == 4 and uuid.UUID(location).variant == uuid.RFC_4122
    assert partner_of(location, "location") == partner
    assert partner_of(location, "service_at_location") != partner
    assert partner_of(location.upper(), "location") is None  # one spelling per object
    assert partner_of("not-a-uuid", "location") is None


def test_partners_naming_one_practice_share_its_id_and_others_have_their_own() -> None:
    assert practice_id(practice="Bay  Physical Therapy", partner_id="a") == practice_id(
        practice="bay physical therapy ", partner_id="b"
    )
    assert practice_id(practice="", partner_id="a") != practice_id(practice="", partner_id="b")
    assert practice_id(practice="", partner_id="a") != practice_id(practice="a", partner_id="a")


def test_categories_with_a_nucc_code_carry_its_display_and_the_file_is_checked(tmp_path: Path) -> None:
    coded = {slug: c.nucc for slug, c in VOCABULARY.items() if c.nucc}
    assert coded["primary_care"] == "207Q00000X" and coded["physical_therapy"] == "225100000X"
    assert {"personal_training", "mental_health"} <= set(VOCABULARY) - set(coded)
    assert all(VOCABULARY[slug].nucc_display for slug in coded)

    bad = tmp_path / "categories.toml"
    bad.write_text('[[category]]\nslug = "x"\nlabel = "X"\nkind = "clinical"\nnucc = "207Q"\n')
    with pytest.raises(ValueError, match="NUCC code"):
        categories.load.__wrapped__(bad)


@pytest.mark.parametrize(
    ("number", "total", "expected"),
    [
        (1, 25, {"total_pages": 3, "first_page": True, "last_page": False, "empty": False}),
        (3, 25, {"total_pages": 3, "first_page": False, "last_page": True, "empty": False}),
        (1, 0, {"total_pages": 0, "first_page": True, "last_page": True, "empty": True}),
    ],
)
def test_the_hsds_page_envelope(number: int, total: int, expected: dict) -> None:
    contents = [{"id": str(n)} for n in range(min(10, max(total - (number - 1) * 10, 0)))]
    page = hsds.page(contents, total=total, number=number, size=10)
    assert {key: page[key] for key in expected} == expected
    assert (page["total_items"], page["page_number"], page["size"]) == (total, number, len(contents))


def _radius(**given: str) -> float:
    query = fhir_search.partner_query(categories=VOCABULARY, **given)
    assert query is not None and query.near is not None
    return query.near.radius_km


def test_fhir_near_accepts_fhir_syntax_and_units() -> None:
    assert _radius(near="27.77|-82.64|10|mi") == pytest.approx(16.09344)
    assert _radius(near="27.77|-82.64") == 50
    assert _radius(near_zip="33701|2500|m") == pytest.approx(2.5)


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"near": "27.77"}, "near"),
        ({"near": "27.77|-82.64|5|parsecs"}, "near"),
        ({"near": "27.77|-82.64|0"}, "near"),
        ({"near": "95|-82.64"}, "near"),
        ({"near_zip": "ABCDE"}, "near-zip"),
        ({"near": "27.77|-82.64", "near_zip": "33701"}, "near-zip"),
        ({"specialty": "http://snomed.info/sct|123"}, "specialty"),
        ({"accepting": "maybe"}, "accepting"),
    ],
)
def test_fhir_search_values_that_cannot_be_read_name_their_parameter(given: dict, field: str) -> None:
    with pytest.raises(InvalidSearch) as refused:
        fhir_search.partner_query(categories=VOCABULARY, **given)
    assert refused.value.field == field


def test_fhir_specialty_maps_nucc_codes_and_labels_to_categories() -> None:
    query = fhir_search.partner_query(categories=VOCABULARY, specialty="http://nucc.org/provider-taxonomy|111N00000X")
    assert query is not None and query.category == "chiropractic"
    assert fhir_search.partner_query(categories=VOCABULARY, specialty="999999999X") is None
    label = fhir_search.partner_query(categories=VOCABULARY, specialty_text=" Personal  Training")
    assert label is not None and label.category == "personal_training"
    assert fhir_search.unknown("Practitioner", ["name", "_count", "specialty"]) == ["specialty"]
