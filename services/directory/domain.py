"""Partners and the rules they obey. Plain Python: no web framework, no SQL, no Redis.

A :class:`Partner` is an identity (id, slug), the details an admin edits (:class:`PartnerDetails`),
a status and a version that grows with every committed change. Rules raise the domain's own
errors, each naming the field at fault; the web layer maps them to HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime
from typing import Any, Literal, get_args

# The field rules live in their own module; the names callers know from here are re-exported.
from services.directory.fields import (
    Address,
    InvalidPartner,
    Location,
    _boolean,
    _bounded_text,
    _text_list,
    normalise_phone,
    normalise_website,
    validate_accepting,
    validate_address,
    validate_category,
    validate_date,
    validate_email,
    validate_languages,
    validate_location,
    validate_name,
    validate_npi,
    validate_response_window,
)
from shared.errors import Conflict, NotFound

Status = Literal["pending", "active", "paused", "archived"]

STATUSES: tuple[Status, ...] = get_args(Status)

# pending → active → paused → archived, as the brief draws it; a paused partner may come back.
# Archived is final: a partner that left is re-created, so its old URL never silently revives.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    "pending": frozenset({"active", "archived"}),
    "active": frozenset({"paused", "archived"}),
    "paused": frozenset({"active", "archived"}),
    "archived": frozenset(),
}
# A new partner may start anywhere but archived.
INITIAL_STATUSES: tuple[Status, ...] = ("pending", "active", "paused")


class PartnerNotFound(NotFound):
    """No such partner, or not one the caller may see."""

    def __init__(self, partner: str) -> None:
        super().__init__(f"no partner {partner!r}", field="id")


class StaleVersion(Conflict):
    """The caller edited an older version than the one stored; ``extra`` carries the current one
    so the caller can reload and retry."""

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(
            f"partner is at version {current}, not {expected}: reload it and apply the change again",
            field="version",
            extra={"current_version": current},
        )
        self.current_version = current


class StatusChangeNotAllowed(Conflict):
    """The partner's status cannot move from where it is to where the caller asked."""

    def __init__(self, *, current: Status, target: Status) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (it is final)"
        super().__init__(
            f"a {current} partner cannot become {target}; it may become {allowed}",
            field="status",
            extra={"current_status": current},
        )


@dataclass(frozen=True, kw_only=True)
class PartnerDetails:
    """What an admin states about a partner. Build it freely, then call :meth:`validated`."""

    name: str
    category: str
    email: str
    accepting_new_clients: str = "yes"
    phone: str | None = None
    credentials: str = ""
    practice: str = ""
    website: str | None = None
    address: Address | None = None
    location: Location | None = None
    languages: tuple[str, ...] = ()
    telehealth: bool = False
    listed: bool = True
    specialties: tuple[str, ...] = ()
    bio: str = ""
    hours: str = ""
    insurance_notes: str = ""
    accessibility_notes: str = ""
    npi: str | None = None
    license_number: str = ""
    license_state: str = ""
    # Professions (free text, e.g. "massage therapist") whose referrals this partner takes.
    accepts_referrals_from: tuple[str, ...] = ()
    response_window_days: int | None = None
    # Not accepting (or waitlist) until this day, when the partner is asked to confirm reopening.
    # Only kept while accepting_new_clients is not "yes".
    accepting_until: date | None = None
    # The day the partner's licence expires; from then on it is offered no referral.
    licence_expires_on: date | None = None

    def with_changes(self, changes: Mapping[str, Any]) -> PartnerDetails:
        """These details with some fields replaced (not yet validated)."""
        for name in changes:
            if name not in EDITABLE_FIELDS:
                raise InvalidPartner(f"{name!r} is not a partner detail", field=name)
        return replace(self, **changes)

    def validated(
        self, *, categories: Collection[str], geocode: Callable[[str], Location | None] | None = None
    ) -> PartnerDetails:
        """A normalised copy (trimmed text, E.164 phone, ``https://`` website…), or
        :class:`InvalidPartner` for the first rule broken. ``categories`` are the known slugs;
        ``geocode`` (postal code → centre, or None) fills in a missing location."""
        address = validate_address(self.address)
        location = validate_location(self.location)
        if location is None and address is not None and address.postal_code and geocode is not None:
            location = geocode(address.postal_code)
        return replace(
            self,
            name=validate_name(self.name),
            category=validate_category(self.category, categories=categories),
            email=validate_email(self.email),
            accepting_new_clients=validate_accepting(self.accepting_new_clients),
            phone=normalise_phone(self.phone),
            credentials=_bounded_text(self.credentials, "credentials"),
            practice=_bounded_text(self.practice, "practice"),
            website=normalise_website(self.website),
            address=address,
            location=location,
            languages=validate_languages(self.languages),
            telehealth=_boolean(self.telehealth, "telehealth"),
            listed=_boolean(self.listed, "listed"),
            specialties=_text_list(self.specialties, "specialty", field="specialties"),
            bio=_bounded_text(self.bio, "bio"),
            hours=_bounded_text(self.hours, "hours"),
            insurance_notes=_bounded_text(self.insurance_notes, "insurance_notes"),
            accessibility_notes=_bounded_text(self.accessibility_notes, "accessibility_notes"),
            npi=validate_npi(self.npi),
            license_number=_bounded_text(self.license_number, "license_number"),
            license_state=_bounded_text(self.license_state, "license_state").upper(),
            accepts_referrals_from=_text_list(
                self.accepts_referrals_from, "profession", field="accepts_referrals_from"
            ),
            response_window_days=validate_response_window(self.response_window_days),
            accepting_until=(
                None if self.accepting_new_clients == "yes" else validate_date(self.accepting_until, "accepting_until")
            ),
            licence_expires_on=validate_date(self.licence_expires_on, "licence_expires_on"),
        )


EDITABLE_FIELDS: frozenset[str] = frozenset(f.name for f in fields(PartnerDetails))

# What a partner changes on its own through a manage link, applied at once: how to reach it and
# whether it takes new clients. Everything else that identifies it (who, what kind, where, which
# licence) waits for the admin's review (:data:`REVIEWED_FIELDS`).
# In the order the partner's manage page shows them.
SELF_SERVICE_ORDER: tuple[str, ...] = (
    "accepting_new_clients",
    "accepting_until",
    "hours",
    "telehealth",
    "languages",
    "phone",
    "website",
    "bio",
    "specialties",
    "insurance_notes",
    "accessibility_notes",
    "response_window_days",
)
SELF_SERVICE_FIELDS: frozenset[str] = frozenset(SELF_SERVICE_ORDER)
REVIEWED_FIELDS: frozenset[str] = frozenset(
    {"name", "category", "credentials", "license_number", "license_state", "licence_expires_on", "npi", "address"}
)


@dataclass(frozen=True, kw_only=True)
class Partner:
    id: str
    slug: str
    details: PartnerDetails
    status: Status
    version: int
    created_at: datetime
    updated_at: datetime = field(compare=False)
    # When the practice last confirmed the listing as correct; None until it first does.
    last_confirmed_at: datetime | None = None
    # Since when the listing has gone unconfirmed past its grace period (the admin's "needs
    # review"); None while it is confirmed in time.
    needs_review_since: datetime | None = None
    # Kept off the public pages until the practice confirms (HANDOFF_UNLIST_UNCONFIRMED).
    hidden_until_confirmed: bool = False

    @property
    def is_public(self) -> bool:
        """Shown to the public (pages and anonymous API): active, listed and not held back for
        want of a confirmation."""
        return self.status == "active" and self.details.listed and not self.hidden_until_confirmed

    def licence_expired(self, today: date) -> bool:
        """Whether the licence expired before ``today`` (it is valid through its expiry day)."""
        expires = self.details.licence_expires_on
        return expires is not None and expires < today

    def confirmed(self, *, now: datetime) -> Partner:
        """This partner confirmed by its practice ``now``, at the next version: no longer in need
        of review, and back on the public pages if it was held back."""
        return replace(
            self,
            last_confirmed_at=now,
            needs_review_since=None,
            hidden_until_confirmed=False,
            version=self.version + 1,
            updated_at=now,
        )

    def flagged_unconfirmed(self, *, now: datetime, unlist: bool) -> Partner:
        """This partner flagged for the admin's review (and held back from the public pages when
        ``unlist``); itself when that is already so."""
        hidden = self.hidden_until_confirmed or unlist
        if self.needs_review_since is not None and hidden == self.hidden_until_confirmed:
            return self
        return replace(
            self,
            needs_review_since=self.needs_review_since or now,
            hidden_until_confirmed=hidden,
            version=self.version + 1,
            updated_at=now,
        )

    def revise(
        self,
        *,
        details: PartnerDetails | None = None,
        status: Status | None = None,
        categories: Collection[str],
        now: datetime,
        geocode: Callable[[str], Location | None] | None = None,
    ) -> Partner:
        """This partner with new details and/or status at the next version; itself unchanged
        when nothing differs (so a no-op edit publishes nothing)."""
        valid = None if details is None else details.validated(categories=categories, geocode=geocode)
        return self.revised_with(valid_details=valid, status=status, now=now)

    def revised_with(self, *, valid_details: PartnerDetails | None, status: Status | None, now: datetime) -> Partner:
        """:meth:`revise` with details the caller already validated (an import checks each row
        once, and this is its result: validating again doubled the cost of a row)."""
        new_details = self.details if valid_details is None else valid_details
        new_status = self.status if status is None else status
        if new_status != self.status:
            check_transition(self.status, new_status)
        if new_details == self.details and new_status == self.status:
            return self
        return replace(self, details=new_details, status=new_status, version=self.version + 1, updated_at=now)


def new_partner(
    *,
    id: str,
    slug: str,
    details: PartnerDetails,
    status: Status,
    categories: Collection[str],
    now: datetime,
    geocode: Callable[[str], Location | None] | None = None,
) -> Partner:
    """A partner at version 1, its details validated."""
    valid = details.validated(categories=categories, geocode=geocode)
    return new_partner_with(id=id, slug=slug, valid_details=valid, status=status, now=now)


def new_partner_with(*, id: str, slug: str, valid_details: PartnerDetails, status: Status, now: datetime) -> Partner:
    """:func:`new_partner` with details the caller already validated (:meth:`PartnerDetails.validated`):
    an import checks each row once, and creating the partner from that result must not redo it."""
    if status not in INITIAL_STATUSES:
        raise InvalidPartner(f"a new partner's status must be one of {', '.join(INITIAL_STATUSES)}", field="status")
    return Partner(id=id, slug=slug, details=valid_details, status=status, version=1, created_at=now, updated_at=now)


def check_transition(current: Status, target: Status) -> None:
    if target not in STATUSES:
        raise InvalidPartner(f"status must be one of {', '.join(STATUSES)}", field="status")
    if target not in TRANSITIONS[current]:
        raise StatusChangeNotAllowed(current=current, target=target)
