"""The referral note's identifier guard (issue 12, item 3): partners read the note before they
accept, so a note with the client's name (or a part of it), a phone number, an email address or a
date of birth is refused; observations are not."""

from __future__ import annotations

from datetime import date

import pytest

from services.referrals.identifiers import check_note, identifiers_in_note
from shared.errors import InvalidInput

TODAY = date(2026, 11, 29)
NAME = "Zelda Quintessa Marchbanks"


def found(note: str, name: str = NAME) -> list[str]:
    return identifiers_in_note(note, client_name=name, today=TODAY)


@pytest.mark.parametrize(
    ("note", "what"),
    [
        ("Marchbanks has a swollen left calf", "Marchbanks"),
        ("marchbanks: swollen calf", "marchbanks"),
        ("Zelda's calf is warm", "Zelda"),
        ("Seen with Quintessa's sister", "Quintessa"),
        ("Zelda Quintessa Marchbanks, left calf", "Zelda Quintessa Marchbanks"),
        ("Call 727-555-0199 to book", "727-555-0199"),
        ("phone (727) 555-0199", "(727) 555-0199"),
        ("call 7275550199", "7275550199"),
        ("mobile +1 727 555 0199", "+1 727 555 0199"),
        ("home 555-0199", "555-0199"),
        ("email zq@example.com for times", "zq@example.com"),
        ("DOB 03/14/1961", "DOB 03/14/1961"),
        ("born 1961-03-14", "born 1961-03-14"),
        ("d.o.b.: 14 March 1961", "14 March 1961"),
        ("date of birth March 14, 1961", "March 14, 1961"),
        ("born in 1961", "born in 1961"),
        ("first seen 03/14/1961", "03/14/1961"),
        ("3/14/61 is when", "3/14/61"),
    ],
)
def test_identifiers_are_found(note: str, what: str) -> None:
    lines = found(note)
    assert lines and any(what in line for line in lines), lines


@pytest.mark.parametrize(
    "note",
    [
        "Left shoulder stiff for 3 weeks; no fall.",
        "Pain since 2019, worse since March.",
        "Fell on 03/14/2024, calf warm and swollen since.",
        "Seen 2026-11-20; 45-year-old, runs 5 km three times a week.",
        "Pressure 120/80 noted by client; BP cuff at home.",
        "Right knee, L4-L5 area tender, 2-3 sessions so far.",
        "Uses a 10-15 minute stretch routine.",
        "",
    ],
)
def test_observations_are_allowed(note: str) -> None:
    assert found(note) == []


def test_name_parts_are_whole_words_of_three_letters_or_more() -> None:
    # "Al" is too short to look for; "Ann" is a name part, but "planning" is not "Ann".
    assert found("Al said planning helps", name="Al Ann Lee") == []
    assert found("ann says it hurts", name="Al Ann Lee") == ["the client's name ('ann')"]
    assert found("Moore's knee", name="Casey Lindqvist-Moore") == ["the client's name ('Moore')"]


def test_the_refusal_is_a_422_on_the_note_saying_why() -> None:
    with pytest.raises(InvalidInput) as refused:
        check_note("Marchbanks, 727-555-0199", client_name=NAME, today=TODAY)
    assert refused.value.field == "note"
    assert "Partners read the note before they accept" in refused.value.detail
    assert "Marchbanks" in refused.value.detail and "727-555-0199" in refused.value.detail
    assert len(refused.value.extra["found"]) == 2
    check_note("Left shoulder, 3 weeks", client_name=NAME, today=TODAY)
