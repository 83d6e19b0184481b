"""The North American fast path of services.directory.fields.normalise_phone (issue 19:
phonenumbers' parse and validity check were a third of an import's row check) never disagrees
with phonenumbers: whatever it accepts, phonenumbers accepts as the same E.164 number. What it
declines, phonenumbers judges, so refusals (and their words) are its own by construction."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.directory.fields import InvalidPartner, _checked_phone, _north_american, normalise_phone


def assert_agrees(phone: str) -> None:
    fast = _north_american(phone)
    if fast is None:
        return
    try:
        expected = _checked_phone(phone)
    except InvalidPartner:
        pytest.fail(f"the fast path accepts {phone!r}, which phonenumbers refuses")
    assert fast == expected, phone


digits = st.text(alphabet="0123456789", min_size=3, max_size=3)
# Area codes and exchanges phonenumbers treats specially: N11, 555, 0/1 starts, toll-free,
# Canada and the Caribbean (same calling code, other regions), unassigned codes.
special = st.sampled_from(["555", "911", "411", "800", "888", "900", "416", "787", "876", "011", "100", "999", "370"])
line_numbers = st.text("0123456789", min_size=4, max_size=4)
groups = st.tuples(st.one_of(digits, special), st.one_of(digits, special), line_numbers)


def shapes(group: tuple[str, str, str], shape: int) -> str:
    area, exchange, line = group
    return [
        f"+1{area}{exchange}{line}",
        f"{area}{exchange}{line}",
        f"({area}) {exchange}-{line}",
        f"({area}){exchange}-{line}",
        f"{area}-{exchange}-{line}",
        f"{area}.{exchange}.{line}",
        f"{area} {exchange} {line}",
        f"1{area}{exchange}{line}",
        f"+1 {area} {exchange} {line}",
        f"{area}-{exchange}.{line}",
        f"({area} {exchange}-{line}",
        f"+1{area}{exchange}{line} x12",
        f"+{area}{exchange}{line}",
    ][shape]


written = st.builds(shapes, groups, st.integers(min_value=0, max_value=12))
# Plain-looking numbers with one odd character put anywhere (other digits, letters, spaces…).
ODD = "0123456789+()-. x#*\t\nA\u0667\uff10\u200b"
sprinkled = st.builds(
    lambda phone, odd, at: phone[:at] + odd + phone[at:],
    written,
    st.sampled_from(list(ODD)),
    st.integers(min_value=0, max_value=20),
)
anything = st.text(alphabet="0123456789+()-. ", max_size=16)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(written, sprinkled, anything))
def test_the_fast_path_gives_phonenumbers_answer(phone: str) -> None:
    assert_agrees(phone)


@pytest.mark.parametrize(
    "phone",
    ["+17275550100", "(727) 555-0100", "727-555-0100", "727.555.0100", "727 555 0100", "7275550100"],
)
def test_common_north_american_forms_take_the_fast_path(phone: str) -> None:
    # Otherwise the property above would hold for a fast path that declines everything.
    assert _north_american(phone) == "+17275550100" == _checked_phone(phone)


@pytest.mark.parametrize("phone", ["+15555555555", "+14165550100", "+18765550100", "727-555.0100", "+442079460958"])
def test_other_numbers_are_left_to_phonenumbers(phone: str) -> None:
    assert _north_american(phone) is None
    assert_agrees(phone)


def test_a_refused_number_keeps_its_words() -> None:
    with pytest.raises(InvalidPartner) as refused:
        normalise_phone("+1 555 555 5555")
    assert str(refused.value.detail) == "'+1 555 555 5555' is not a valid phone number (use +<country><number>)"
