"""The client as a person to reach, knowing no framework: what a client record must hold (a
name; a date of birth, if given, in the past; contact details that work), which language they
speak, how they like to be contacted, and who makes the next call once a partner accepts.

Clients are never matched by name: nothing here compares two clients. Every check raises the
domain's :class:`~shared.errors.InvalidInput` naming the field at fault (``client.<field>``)."""

from __future__ import annotations

from datetime import date
from typing import Literal

import phonenumbers

from shared.emails import InvalidEmail, normalised_email
from shared.errors import InvalidInput

PreferredContact = Literal["phone", "text", "email"]
NextStep = Literal["partner_contacts_client", "client_contacts_partner"]

PREFERRED_CONTACT: dict[str, str] = {"phone": "Phone call", "text": "Text message", "email": "Email"}
# Who makes the next call once a partner has accepted, in the words each reader needs.
NEXT_STEPS: dict[str, str] = {
    "partner_contacts_client": "The partner contacts the client to book",
    "client_contacts_partner": "The client contacts the partner to book",
}
# What the accepting partner is asked to do (their page and nothing else shows it).
NEXT_STEP_FOR_PARTNER: dict[str, str] = {
    "partner_contacts_client": "Please call the client to book.",
    "client_contacts_partner": "The client will call you to book.",
}
# The languages a client may be recorded as speaking: ISO 639-1 codes, named as partners' listings
# name them (the directory lists languages by their English names, which matching compares).
LANGUAGES: dict[str, str] = {
    "en": "English",
    "es": "Spanish",
    "ht": "Haitian Creole",
    "pt": "Portuguese",
    "fr": "French",
    "vi": "Vietnamese",
    "zh": "Chinese",
    "ar": "Arabic",
    "ru": "Russian",
    "tl": "Tagalog",
    "ko": "Korean",
    "de": "German",
    "it": "Italian",
    "pl": "Polish",
    "uk": "Ukrainian",
    "asl": "American Sign Language",
}
DEFAULT_LANGUAGE = "en"
# Numbers without "+" are read as North American: the clinic and its clients are local.
PHONE_REGION = "US"
# No one alive was born before this; an earlier year is a typing slip.
EARLIEST_BIRTH = date(1900, 1, 1)


def language_code(value: str | None, *, field: str = "client.language") -> str:
    """The code of a language given as a code (``es``) or its English name (``Spanish``);
    :data:`DEFAULT_LANGUAGE` when none is given."""
    if value is None or not value.strip():
        return DEFAULT_LANGUAGE
    wanted = value.strip().casefold()
    for code, name in LANGUAGES.items():
        if wanted in (code, name.casefold()):
            return code
    raise InvalidInput(
        f"unknown language {value.strip()!r}: use one of {', '.join(LANGUAGES)}",
        field=field,
        extra={"languages": LANGUAGES},
    )


def language_name(code: str) -> str:
    """A language code's name for people and for matching partners (``es`` → ``Spanish``); a
    language recorded before the codes (migrated as it was typed) stays as it was typed."""
    return LANGUAGES.get(code, code)


def normalised_phone(phone: str | None, *, field: str = "client.phone") -> str | None:
    """E.164 (``+17275550199``) for a number a person can be called or texted on; None if blank."""
    if phone is None or not phone.strip():
        return None
    try:
        number = phonenumbers.parse(phone, PHONE_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise InvalidInput(f"{phone.strip()!r} is not a phone number: give one such as 727-555-0199", field=field)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(phone: str | None) -> str:
    """How a stored number reads to a person: ``(727) 555-0199`` at home, international abroad."""
    if not phone:
        return ""
    try:
        number = phonenumbers.parse(phone, PHONE_REGION)
    except phonenumbers.NumberParseException:
        return phone
    local = phonenumbers.region_code_for_number(number) == PHONE_REGION
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)


def normalised_phone_or_none(phone: str | None) -> str:
    """A stored number as E.164 for a ``tel:`` link; "" when it cannot be read as one (a number
    migrated as it was typed)."""
    try:
        return normalised_phone(phone) or ""
    except InvalidInput:
        return ""


def phone_digits(phone: str | None) -> str:
    """Only the digits of a number, to find a client by any way of writing it."""
    return "".join(ch for ch in phone or "" if ch.isdigit())


def normalised_client_email(email: str | None, *, field: str = "client.email") -> str | None:
    if email is None or not email.strip():
        return None
    try:
        return normalised_email(email.strip())
    except InvalidEmail as exc:
        raise InvalidInput(f"{email.strip()!r} is not an email address: {exc}", field=field) from None


def check_date_of_birth(born: date | None, *, today: date, field: str = "client.date_of_birth") -> None:
    if born is None:
        return
    if born > today:
        raise InvalidInput("the date of birth is in the future", field=field)
    if born < EARLIEST_BIRTH:
        raise InvalidInput(f"the date of birth is before {EARLIEST_BIRTH.year}: check the year", field=field)


def preferred_contact(
    chosen: str | None, *, phone: str | None, email: str | None, field: str = "client.preferred_contact"
) -> PreferredContact | None:
    """How the client likes to be contacted: as chosen, which must be a way they can be reached;
    when not chosen, their phone if they gave one, else their email."""
    if chosen is None or chosen == "":
        return "phone" if phone else "email" if email else None
    if chosen not in PREFERRED_CONTACT:
        raise InvalidInput(f"preferred contact must be one of {', '.join(PREFERRED_CONTACT)}", field=field)
    if chosen in ("phone", "text") and not phone:
        raise InvalidInput(f"the client prefers {PREFERRED_CONTACT[chosen].lower()}s but gave no phone", field=field)
    if chosen == "email" and not email:
        raise InvalidInput("the client prefers email but gave no email address", field=field)
    return "email" if chosen == "email" else "text" if chosen == "text" else "phone"


def check_reachable(*, phone: str | None, email: str | None, next_step: str, field: str = "client") -> None:
    """The partner can only call a client whose phone or email the referral carries."""
    if next_step == "partner_contacts_client" and not phone and not email:
        raise InvalidInput(
            "the partner is to contact the client, but the client has no phone or email: add one, "
            "or choose that the client contacts the partner",
            field=field,
        )
