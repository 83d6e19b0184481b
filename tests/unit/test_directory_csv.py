"""The flat (CSV / form) form of a partner and reading CSV files, without I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.directory import csv_io
from services.directory.columns import COLUMNS, details_from_record, record_from_partner
from services.directory.domain import PartnerDetails, new_partner
from services.directory.fields import Address, Location
from services.directory.web.jsonld import partner_jsonld, script_json
from shared import categories

CATEGORIES = tuple(categories.load())
FULL = PartnerDetails(
    name="Bay Physical Therapy",
    category="physical_therapy",
    email="intake@baypt.example",
    accepting_new_clients="waitlist",
    phone="+17275550100",
    credentials="DPT, OCS",
    practice='Bay PT, "downtown"',
    website="https://baypt.example",
    address=Address(line1="100 Central Ave", line2="Suite 2", city="St. Petersburg", state="FL", postal_code="33701"),
    location=Location(27.770912345678, -82.6393),
    languages=("English", "Spanish"),
    telehealth=True,
    listed=False,
    specialties=("knees", "backs"),
    bio="Line one.\nLine two, with a comma.",
    hours="Mon–Fri 8–5",
    insurance_notes="Most plans",
    accessibility_notes="Step-free",
    npi="1234567893",
    license_number="PT12345",
    license_state="FL",
    accepts_referrals_from=("massage therapist", "physician"),
    response_window_days=3,
)


def partner(details: PartnerDetails = FULL, status: str = "paused"):
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return new_partner(id="p1", slug="bay", details=details, status=status, categories=CATEGORIES, now=now)  # type: ignore[arg-type]


def test_a_record_states_exactly_the_partner_it_came_from() -> None:
    stored = partner()
    record = record_from_partner(stored)

    assert set(record) == set(COLUMNS)
    details, status = details_from_record(record)
    assert details.validated(categories=CATEGORIES) == stored.details
    assert status == "paused"


def test_a_written_file_reads_back_to_the_same_partners() -> None:
    async def collect() -> str:
        async def partners():
            yield partner()
            yield partner(PartnerDetails(name="Ana Ruiz", category="dietitian", email="ana@ruiz.example"), "active")

        return "".join([chunk async for chunk in csv_io.write_csv(partners())])

    import asyncio

    text = asyncio.run(collect())
    rows = list(csv_io.read_rows(text))

    assert [row.line for row in rows] == [2, 4]  # the bio's newline makes row one two lines long
    assert rows[0].details.validated(categories=CATEGORIES) == FULL
    assert rows[1].details.name == "Ana Ruiz" and rows[1].status == "active"


def test_every_bad_line_is_reported_with_its_line_and_column() -> None:
    text = (
        "name,category,email,lat,lon,telehealth,response_window_days,status\n"
        "Good,dietitian,a@b.example,,,,,\n"
        "Bad lat,dietitian,a@b.example,north,1,,,\n"
        "Half location,dietitian,a@b.example,27,,,,\n"
        "Bad bool,dietitian,a@b.example,,,sometimes,,\n"
        "\n"
        "Bad days,dietitian,a@b.example,,,,three,\n"
        "Bad status,dietitian,a@b.example,,,,,gone\n"
        "Too many,dietitian,a@b.example,,,,,,extra\n"
    )
    errors = [(row.error.line, row.error.column) for row in csv_io.read_rows(text) if row.error]
    assert errors == [(3, "lat"), (4, "lon"), (5, "telehealth"), (7, "response_window_days"), (8, "status"), (9, "")]


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "empty"),
        ("name,category,colour,email", "unknown column"),
        ("name,category", "missing"),
        ("name,name,category,email", "twice"),
    ],
)
def test_a_bad_header_rejects_the_file(header: str, reason: str) -> None:
    with pytest.raises(csv_io.BadHeader) as caught:
        list(csv_io.read_rows(header + "\n" if header else ""))
    assert reason in caught.value.detail


def test_a_byte_order_mark_is_ignored() -> None:
    [row] = csv_io.read_rows("\ufeffname,category,email\nA,dietitian,a@b.example\n")
    assert row.details.name == "A"


def test_json_ld_describes_the_partner_and_cannot_close_its_script() -> None:
    hostile = partner(
        PartnerDetails(
            name="X </script><script>alert(1)</script>", category="neurology", email="x@y.example", bio="a & b"
        )
    )
    text = script_json(
        partner_jsonld(hostile, url="https://d.example/partners-in-health/x", category_label="Neurology")
    )

    assert "</script>" not in text and "<" not in text
    data = json.loads(text)
    assert data["name"] == "X </script><script>alert(1)</script>"
    assert data["@type"] == "Physician"
    assert "email" not in text.lower()
    full = json.loads(script_json(partner_jsonld(partner(), url="u", category_label="Physical therapy")))
    assert full["address"]["postalCode"] == "33701"
    assert full["telephone"] == "+17275550100"
    assert full["identifier"]["value"] == "1234567893"
    assert "intake@baypt.example" not in json.dumps(full)
