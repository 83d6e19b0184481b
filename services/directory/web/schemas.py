"""The directory's HTTP shapes (msgspec Structs) and their translation to and from the domain.

Input is lenient about unknown fields (clients may send more than we read) but strict about
types: a wrong type is refused by Litestar with a 400 naming the field.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from services.directory import domain, fields
from services.directory.importing import ImportReport
from shared.categories import Category

InitialStatus = Literal["pending", "active", "paused"]

Lat = Annotated[float, Meta(description="degrees north, -90 to 90")]
Lon = Annotated[float, Meta(description="degrees east, -180 to 180")]


class AddressIn(msgspec.Struct, kw_only=True):
    line1: str = ""
    line2: str = ""
    city: str = ""
    state: str = ""
    postal_code: str = ""

    def to_domain(self) -> fields.Address:
        return fields.Address(
            line1=self.line1, line2=self.line2, city=self.city, state=self.state, postal_code=self.postal_code
        )


class LocationIn(msgspec.Struct, kw_only=True):
    lat: Lat
    lon: Lon

    def to_domain(self) -> fields.Location:
        return fields.Location(self.lat, self.lon)


class PartnerIn(msgspec.Struct, kw_only=True):
    """A new partner. ``status`` is ``active`` unless stated."""

    name: str
    category: Annotated[str, Meta(description="a slug from GET /api/v1/categories")]
    email: Annotated[str, Meta(description="where referrals are sent; never shown publicly")]
    accepting_new_clients: fields.Accepting = "yes"
    phone: str | None = None
    credentials: str = ""
    practice: str = ""
    website: str | None = None
    address: AddressIn | None = None
    location: LocationIn | None = None
    languages: list[str] = []
    telehealth: bool = False
    listed: bool = True
    status: InitialStatus = "active"
    specialties: list[str] = []
    bio: str = ""
    hours: Annotated[str, Meta(description="opening hours as the partner states them")] = ""
    insurance_notes: str = ""
    accessibility_notes: str = ""
    npi: Annotated[str | None, Meta(description="10-digit National Provider Identifier")] = None
    license_number: str = ""
    license_state: str = ""
    accepts_referrals_from: Annotated[list[str], Meta(description="professions whose referrals the partner takes")] = []
    response_window_days: int | None = None
    accepting_until: Annotated[
        date | None, Meta(description="not accepting (or waitlist) until this day; ignored when accepting is yes")
    ] = None
    licence_expires_on: Annotated[
        date | None, Meta(description="the licence's expiry day: from the day after, no referral is offered")
    ] = None

    def to_domain(self) -> domain.PartnerDetails:
        return domain.PartnerDetails(
            name=self.name,
            category=self.category,
            email=self.email,
            accepting_new_clients=self.accepting_new_clients,
            phone=self.phone,
            credentials=self.credentials,
            practice=self.practice,
            website=self.website,
            address=self.address.to_domain() if self.address else None,
            location=self.location.to_domain() if self.location else None,
            languages=tuple(self.languages),
            telehealth=self.telehealth,
            listed=self.listed,
            specialties=tuple(self.specialties),
            bio=self.bio,
            hours=self.hours,
            insurance_notes=self.insurance_notes,
            accessibility_notes=self.accessibility_notes,
            npi=self.npi,
            license_number=self.license_number,
            license_state=self.license_state,
            accepts_referrals_from=tuple(self.accepts_referrals_from),
            response_window_days=self.response_window_days,
            accepting_until=self.accepting_until,
            licence_expires_on=self.licence_expires_on,
        )


class PartnerPatch(msgspec.Struct, kw_only=True):
    """Changes to a partner seen at ``version``. Omitted fields stay as they are; ``null`` clears
    an optional one. ``address`` and ``location`` are replaced whole."""

    version: Annotated[int, Meta(ge=1, description="the version the change was made against")]
    name: str | UnsetType = UNSET
    category: str | UnsetType = UNSET
    email: str | UnsetType = UNSET
    accepting_new_clients: fields.Accepting | UnsetType = UNSET
    phone: str | UnsetType | None = UNSET
    credentials: str | UnsetType = UNSET
    practice: str | UnsetType = UNSET
    website: str | UnsetType | None = UNSET
    address: AddressIn | UnsetType | None = UNSET
    location: LocationIn | UnsetType | None = UNSET
    languages: list[str] | UnsetType = UNSET
    telehealth: bool | UnsetType = UNSET
    listed: bool | UnsetType = UNSET
    status: domain.Status | UnsetType = UNSET
    specialties: list[str] | UnsetType = UNSET
    bio: str | UnsetType = UNSET
    hours: str | UnsetType = UNSET
    insurance_notes: str | UnsetType = UNSET
    accessibility_notes: str | UnsetType = UNSET
    npi: str | UnsetType | None = UNSET
    license_number: str | UnsetType = UNSET
    license_state: str | UnsetType = UNSET
    accepts_referrals_from: list[str] | UnsetType = UNSET
    response_window_days: int | UnsetType | None = UNSET
    accepting_until: date | UnsetType | None = UNSET
    licence_expires_on: date | UnsetType | None = UNSET

    def changes(self) -> dict[str, Any]:
        """The partner-detail fields the caller sent, as domain values."""
        changes: dict[str, Any] = {}
        for name in domain.EDITABLE_FIELDS:
            value = getattr(self, name, UNSET)
            if value is UNSET:
                continue
            if isinstance(value, AddressIn | LocationIn):
                value = value.to_domain()
            elif isinstance(value, list):
                value = tuple(value)
            changes[name] = value
        return changes

    def new_status(self) -> domain.Status | None:
        return None if self.status is UNSET else self.status


class ArchiveIn(msgspec.Struct, kw_only=True):
    version: Annotated[int, Meta(ge=1)] | None = None


class AddressOut(msgspec.Struct, kw_only=True):
    line1: str
    line2: str
    city: str
    state: str
    postal_code: str


class LocationOut(msgspec.Struct, kw_only=True):
    lat: float
    lon: float


class PartnerOut(msgspec.Struct, kw_only=True):
    """A partner. ``email`` (the referral address) is only shown to admins; ``distance_km`` only
    in a search with ``near`` or ``zip``."""

    id: str
    slug: str
    version: int
    status: domain.Status
    name: str
    category: str
    accepting_new_clients: fields.Accepting
    phone: str | None
    credentials: str
    practice: str
    website: str | None
    address: AddressOut | None
    location: LocationOut | None
    languages: list[str]
    telehealth: bool
    listed: bool
    specialties: list[str]
    bio: str
    hours: str
    insurance_notes: str
    accessibility_notes: str
    npi: str | None
    license_number: str
    license_state: str
    accepts_referrals_from: list[str]
    response_window_days: int | None
    accepting_until: Annotated[date | None, Meta(description="not accepting (or waitlist) until this day")]
    licence_expires_on: date | None
    created_at: datetime
    updated_at: datetime
    last_confirmed_at: Annotated[
        datetime | None, Meta(description="when the practice last confirmed the listing; null until it does")
    ]
    email: str | UnsetType = UNSET
    distance_km: float | UnsetType = UNSET

    @classmethod
    def from_domain(cls, partner: domain.Partner, *, show_email: bool, distance_km: float | None = None) -> PartnerOut:
        fields = dataclasses.asdict(partner.details)
        if not show_email:
            del fields["email"]  # left UNSET, so the key is not in the answer at all
        if distance_km is not None:
            fields["distance_km"] = distance_km
        return msgspec.convert(
            {
                **fields,
                "id": partner.id,
                "slug": partner.slug,
                "version": partner.version,
                "status": partner.status,
                "created_at": partner.created_at,
                "updated_at": partner.updated_at,
                "last_confirmed_at": partner.last_confirmed_at,
            },
            cls,
        )


class PartnerList(msgspec.Struct, kw_only=True):
    items: list[PartnerOut]
    next_cursor: Annotated[str | None, Meta(description="pass as `cursor` for the next page")]


class CategoryOut(msgspec.Struct, kw_only=True):
    slug: str
    label: str
    kind: Literal["clinical", "non_clinical"]

    @classmethod
    def from_category(cls, category: Category) -> CategoryOut:
        return cls(slug=category.slug, label=category.label, kind=category.kind)


class RowErrorOut(msgspec.Struct, kw_only=True):
    line: int
    column: str
    reason: str


class ImportOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What an import did. With errors and without ``skip_invalid`` nothing was stored."""

    created: int
    updated: int
    unchanged: int
    skipped: int
    errors: Annotated[list[RowErrorOut], Meta(description="the first 100 bad rows")]
    more_errors: Annotated[int, Meta(description="bad rows beyond those listed (left out when 0)")] = 0

    @classmethod
    def from_report(cls, report: ImportReport) -> ImportOut:
        return cls(
            created=report.created,
            updated=report.updated,
            unchanged=report.unchanged,
            skipped=report.skipped,
            errors=[RowErrorOut(line=e.line, column=e.column, reason=e.reason) for e in report.errors],
            more_errors=report.more_errors,
        )
