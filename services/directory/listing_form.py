"""The partner's manage form (services.directory.listings): its columns, in the order the page
shows them, and what a submitted form asks for, checked all at once. No I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import date

from services.directory.columns import details_from_record, record_from_partner
from services.directory.domain import REVIEWED_FIELDS, SELF_SERVICE_FIELDS, SELF_SERVICE_ORDER, Partner
from services.directory.importing import column_of
from shared.errors import InvalidInput

# The manage form's columns (services.directory.columns), in the order the page shows them.
SELF_SERVICE_COLUMNS: tuple[str, ...] = tuple(column_of(name) for name in SELF_SERVICE_ORDER)
REVIEWED_COLUMNS: tuple[str, ...] = (
    "name",
    "category",
    "credentials",
    "license_number",
    "license_state",
    "licence_expires_on",
    "npi",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
)
FORM_COLUMNS = SELF_SERVICE_COLUMNS + REVIEWED_COLUMNS
_ADDRESS_COLUMNS = ("address_line1", "address_line2", "city", "state", "postal_code")


class ListingInvalid(InvalidInput):
    """The manage form holds bad values: ``errors`` maps each column at fault to why (all of
    them at once)."""

    def __init__(self, errors: dict[str, str]) -> None:
        first = next(iter(errors))
        super().__init__(f"{len(errors)} field(s) to fix: {errors[first]}", field=first, extra={"errors": errors})
        self.errors = errors


def parse(
    current: Partner, form: Mapping[str, str], *, categories: tuple[str, ...], today: date
) -> tuple[dict[str, object], dict[str, str]]:
    """(self-service field -> new value, reviewed column -> value asked for), only what differs
    from ``current``; :class:`ListingInvalid` naming every bad column. ``today`` is the
    clinic's: the day a partner reopens to new clients must come after it."""
    base = record_from_partner(current)
    submitted = {column: str(form[column]).strip() for column in FORM_COLUMNS if column in form}
    if submitted.get("accepting_new_clients", base["accepting_new_clients"]) == "yes":
        submitted["accepting_until"] = ""
    errors: dict[str, str] = {}
    for column, value in submitted.items():
        trial = {**base, column: value}
        if column == "accepting_until":
            trial["accepting_new_clients"] = submitted.get("accepting_new_clients", base["accepting_new_clients"])
        try:
            details, _ = details_from_record(trial)
            details.validated(categories=categories)
        except InvalidInput as exc:
            errors.setdefault(column_of(exc.field) or column, exc.detail)
    until = submitted.get("accepting_until", "")
    if until and "accepting_until" not in errors and date.fromisoformat(until) <= today:
        errors["accepting_until"] = "the day you reopen must be after today"
    if errors:
        raise ListingInvalid(errors)
    details, _ = details_from_record({**base, **submitted})
    wanted = details.validated(categories=categories)
    self_changes: dict[str, object] = {
        name: getattr(wanted, name)
        for name in sorted(SELF_SERVICE_FIELDS)
        if getattr(wanted, name) != getattr(current.details, name)
    }
    asked = record_from_partner(dataclasses.replace(current, details=wanted))
    review: dict[str, str] = {}
    for name in REVIEWED_FIELDS:
        if getattr(wanted, name) == getattr(current.details, name):
            continue
        columns = _ADDRESS_COLUMNS if name == "address" else (column_of(name),)
        review |= {column: asked[column] for column in columns}
    return self_changes, review
