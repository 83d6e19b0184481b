"""A partner's history on the admin page names the fields it changed as people read them."""

from __future__ import annotations

from services.directory.web.partner_form import field_names


def test_changed_fields_are_named_by_their_labels() -> None:
    assert field_names(["license_number", "licence_expires_on", "postal_code", "accepting_new_clients"]) == (
        "Licence number, Licence expiry, ZIP code, Accepting new clients"
    )
    # A field without a label still reads as words, never as a key.
    assert field_names(["some_new_field"]) == "Some new field"
