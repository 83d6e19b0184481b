"""The plain-address fast path of shared.emails (issue 19: email-validator was a third of an
import's row check) never disagrees with email-validator: whatever the fast path accepts,
email-validator accepts too and normalises the same way. What the fast path declines,
email-validator judges, so refusals are its own by construction."""

from __future__ import annotations

import email_validator
import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.emails import _plain_address, normalised_email

ATEXT = "abcxyzABCXYZ0189_!#$%&'*+/=?^`{|}~-"
# Characters that make an address unusual: quotes, specials, spaces, non-ASCII letters and dots
# (full-width, ideographic), look-alike at-signs, combining marks, controls.
ODD = '"(),:;<>[]\\ \t\r\n.@éüßİ\u0131\u212a\u0301\u200b\uff0e\u3002\uff20\ufe6b\u00a0\x00'
SPECIAL_TLDS = ["arpa", "invalid", "local", "localhost", "onion", "test", "example", "com", "xn--p1ai", "c0m", "123"]


def reference(address: str) -> str | None:
    """email-validator's normal form of ``address``, or None when it refuses it."""
    try:
        return validate_email(address, check_deliverability=False, allow_smtputf8=False).normalized
    except EmailNotValidError:
        return None


def assert_agrees(address: str) -> None:
    fast = _plain_address(address)
    if fast is not None:
        assert fast == reference(address), address


atoms = st.text(alphabet=ATEXT, min_size=1, max_size=12)
local_parts = st.one_of(
    st.lists(atoms, min_size=1, max_size=4).map(".".join),
    st.text(alphabet=ATEXT + ".", min_size=0, max_size=20),
    st.sampled_from(["postmaster", "Abuse", "INFO", "www", 'quoted"x', '"a b"', "a" * 64, "a" * 65]),
)
labels = st.one_of(
    st.text(alphabet="abzABZ09-", min_size=1, max_size=10),
    st.sampled_from(["xn--mnchen-3ya", "xn--", "ab--cd", "a-", "-a", "a" * 63, "a" * 64, "EXAMPLE", "Test"]),
)
domains = st.builds(
    lambda parts, tld: ".".join([*parts, tld]),
    st.lists(labels, min_size=0, max_size=4),
    st.one_of(st.sampled_from(SPECIAL_TLDS), labels),
)
structured = st.builds(lambda local, domain: f"{local}@{domain}", local_parts, domains)
# Plain-looking addresses with one odd character put anywhere.
sprinkled = st.builds(
    lambda address, odd, at: address[:at] + odd + address[at:],
    structured,
    st.sampled_from(list(ODD)),
    st.integers(min_value=0, max_value=60),
)
anything = st.text(alphabet=ATEXT + ODD + "abc.", max_size=40)


@settings(max_examples=1500, deadline=None)
@given(st.one_of(structured, sprinkled, anything))
def test_the_fast_path_gives_email_validators_answer(address: str) -> None:
    assert_agrees(address)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.integers(min_value=1, max_value=70), st.integers(0, 3))
def test_lengths_at_the_limits_agree(local_length: int, label_length: int, extra_labels: int) -> None:
    # Addresses around 254 characters in all, labels around 63 and local parts around 64.
    domain = ".".join(["d" * label_length] * (extra_labels + 1) + ["example"])
    for pad in range(0, 260 - local_length - len(domain), 37):
        address = "l" * (local_length + pad) + "@" + domain
        assert_agrees(address)
        assert_agrees("x@" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * (pad % 63 + 1) + ".com")


@pytest.mark.parametrize(
    "address",
    [
        "intake@baypt.example",
        "Ana.Ruiz+referrals@Ruiz-Dietitian.EXAMPLE",
        "Postmaster@clinic.example",
        "front@münchen.example",
        "front@xn--mnchen-3ya.example",
        "a@b.local",
        "a@localhost",
        "a@b.test",
        "a@test",
        "a@b.onion",
        "a@in-addr.arpa",
        "a@b.c0m",
        "a@b.123",
        "a@1.2.3.4",
        "a@ab--cd.example",
        "a@b-.example",
        "a@-b.example",
        "a@b..example",
        "a.@b.example",
        ".a@b.example",
        "a..b@c.example",
        '"a b"@c.example',
        "Ann <a@b.example>",
        "a@b.example\n",
        "a\u0301@b.example",
        "a@b.example.",
    ],
)
def test_adversarial_addresses_agree(address: str) -> None:
    assert_agrees(address)


def test_email_validators_switches_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(email_validator, "TEST_ENVIRONMENT", True)
    monkeypatch.setattr(email_validator, "STRICT", True)
    for address in ("a@b.test", "a@test", "a@b.local", "l" * 64 + "@b.example", "l" * 65 + "@b.example"):
        assert_agrees(address)


def test_plain_addresses_take_the_fast_path_normalised() -> None:
    # Otherwise the tests above would pass with a fast path that declines everything.
    assert _plain_address("p12@Bench.Example") == "p12@bench.example" == normalised_email("p12@Bench.Example")
    assert _plain_address("Ana.Ruiz+referrals@ruiz-dietitian.example") is not None
