"""The admin's partner form (services.directory.web.admin): what each column is called, the
longest text each takes, and the names a partner's history gives the fields it changed."""

from __future__ import annotations

from collections.abc import Iterable

from services.directory.fields import MAX_LENGTHS
from services.directory.web.manage import FIELD_LABELS

# Each column's label on the form: what an error message names.
LABELS = {
    "name": "Name",
    "credentials": "Credentials",
    "category": "Category",
    "practice": "Practice or organisation",
    "specialties": "Specialties",
    "bio": "Short bio",
    "email": "Referral email",
    "phone": "Phone",
    "website": "Website",
    "address_line1": "Address",
    "address_line2": "Address, line 2",
    "city": "City",
    "state": "State",
    "postal_code": "ZIP code",
    "lat": "Latitude",
    "lon": "Longitude",
    "accepting_new_clients": "Accepting new clients",
    "telehealth": "Telehealth",
    "languages": "Languages",
    "hours": "Hours",
    "insurance_notes": "Insurance notes",
    "accessibility_notes": "Accessibility notes",
    "npi": "NPI",
    "license_number": "Licence number",
    "license_state": "Licence state",
    "accepts_referrals_from": "Takes referrals from",
    "response_window_days": "Response window (days)",
    "listed": "Listed on the public page",
    "status": "Status",
}
# The longest text each column takes (announced on the form as maxlength).
LIMITS = {
    column: MAX_LENGTHS[name]
    for column, name in {
        "name": "name",
        "credentials": "credentials",
        "practice": "practice",
        "bio": "bio",
        "email": "email",
        "website": "website",
        "address_line1": "line1",
        "address_line2": "line2",
        "city": "city",
        "postal_code": "postal_code",
        "hours": "hours",
        "insurance_notes": "insurance_notes",
        "accessibility_notes": "accessibility_notes",
        "license_number": "license_number",
        "license_state": "license_state",
    }.items()
}


def field_names(keys: Iterable[str]) -> str:
    """The fields a history entry changed, as the form and the partner's page name them."""
    return ", ".join(HISTORY_LABELS.get(key, key.replace("_", " ").capitalize()) for key in keys)


# What the history calls each field: the form's labels, the partner's own page's, and the rest.
HISTORY_LABELS = {**FIELD_LABELS, **LABELS, "licence_expires_on": "Licence expiry", "accepting_until": "Waitlist until"}
