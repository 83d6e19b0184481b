"""Phone numbers as people read them. Partners' numbers are stored in E.164 (``+17275550100``,
see services.directory.fields); pages show them in the local form and dial them through a
``tel:`` link with the stored number."""

from __future__ import annotations

import phonenumbers

# The clinic and its partners are local: a number from this region reads in its national form.
HOME_REGION = "US"


def for_people(phone: str) -> str:
    """``(727) 555-0100`` at home, the international form (``+44 20 7946 0000``) otherwise, and
    the text as given when it is not a phone number."""
    try:
        number = phonenumbers.parse(phone, HOME_REGION)
    except phonenumbers.NumberParseException:
        return phone
    local = phonenumbers.region_code_for_number(number) == HOME_REGION
    style = phonenumbers.PhoneNumberFormat.NATIONAL if local else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    return phonenumbers.format_number(number, style)
