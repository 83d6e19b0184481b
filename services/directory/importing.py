"""Bulk import bookkeeping, free of file formats: the rows to import, the errors found in them,
the report, and the index that matches a row to a stored partner by its stable key (NPI, else
name + postal code)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.directory.domain import Partner, PartnerDetails, Status, new_partner_with
from services.directory.fields import InvalidPartner, Location, slug_base, unique_slug
from shared.errors import DomainError

# Domain fields named as the flat (CSV and form) columns that hold them.
_COLUMN_OF_FIELD = {
    "address.line1": "address_line1",
    "address.line2": "address_line2",
    "address.city": "city",
    "address.state": "state",
    "address.postal_code": "postal_code",
    "location.lat": "lat",
    "location.lon": "lon",
}


def column_of(field_name: str | None) -> str:
    """The column holding domain field ``field_name`` (``address.city`` → ``city``)."""
    if not field_name:
        return ""
    return _COLUMN_OF_FIELD.get(field_name, field_name)


@dataclass(frozen=True)
class RowError:
    """Why one line of a file cannot be imported."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column or '-'}: {self.reason}"


@dataclass(frozen=True)
class ImportRow:
    """One parsed line: the partner it states and the status it asks for (None: keep the
    stored one, or ``active`` for a new partner), or the error that stopped it parsing."""

    line: int
    details: PartnerDetails | None = None
    status: Status | None = None
    error: RowError | None = None


# A report lists this many bad rows and counts the rest: a file of 200,000 bad rows once made a
# 52.9 MB answer, and whoever fixes a file fixes the first hundred problems first anyway.
MAX_REPORTED_ERRORS = 100


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    # True when errors were found and nothing was stored because of them.
    rejected: bool = False
    # The first MAX_REPORTED_ERRORS bad rows; error_count counts them all.
    errors: list[RowError] = field(default_factory=list)
    error_count: int = 0

    def add_error(self, error: RowError) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(error)

    @property
    def more_errors(self) -> int:
        """Bad rows beyond those listed in :attr:`errors`."""
        return self.error_count - len(self.errors)


def _name_key(details: PartnerDetails) -> tuple[str, str]:
    postal_code = details.address.postal_code if details.address else ""
    return " ".join(details.name.casefold().split()), postal_code.strip()[:5]


class ImportIndex:
    """Stored (and newly planned) partners by NPI and by name + postal code, and every slug."""

    def __init__(self) -> None:
        self.by_npi: dict[str, Partner] = {}
        self.by_name: dict[tuple[str, str], Partner] = {}
        self.slugs: set[str] = set()

    def add(self, partner: Partner) -> None:
        if partner.details.npi:
            self.by_npi[partner.details.npi] = partner
        self.by_name.setdefault(_name_key(partner.details), partner)
        self.slugs.add(partner.slug)

    def find(self, details: PartnerDetails) -> Partner | None:
        """The partner ``details`` describe: the one with its NPI, else the one with its name
        and postal code (unless that one is known under another NPI)."""
        if details.npi and (found := self.by_npi.get(details.npi)):
            return found
        found = self.by_name.get(_name_key(details))
        if found is not None and details.npi and found.details.npi not in (None, details.npi):
            return None
        return found


# Rows per call of an import's ``progress``: a progress bar redrawn for each row cost a twentieth
# of the import.
PROGRESS_STEP = 500


def plan_rows(
    rows: Iterable[ImportRow],
    *,
    index: ImportIndex,
    report: ImportReport,
    now: datetime,
    progress: Callable[[int], None],
    categories: tuple[str, ...],
    geocode: Callable[[str], Location | None],
) -> list[tuple[Partner | None, Partner]]:
    """(the stored partner or None, what it becomes) for each good row; each bad row goes to
    ``report``. No I/O: the part of an import that runs off the event loop."""
    planned: list[tuple[Partner | None, Partner]] = []
    claimed: dict[str, int] = {}
    count = 0
    for count, row in enumerate(rows, start=1):
        if count % PROGRESS_STEP == 0:
            progress(PROGRESS_STEP)
        if row.error is not None:
            report.add_error(row.error)
            continue
        try:
            planned.append(
                _plan_row(row, index=index, claimed=claimed, now=now, categories=categories, geocode=geocode)
            )
        except DomainError as exc:
            report.add_error(RowError(line=row.line, column=column_of(exc.field), reason=exc.detail))
    if count % PROGRESS_STEP:
        progress(count % PROGRESS_STEP)
    return planned


def _plan_row(
    row: ImportRow,
    *,
    index: ImportIndex,
    claimed: dict[str, int],
    now: datetime,
    categories: tuple[str, ...],
    geocode: Callable[[str], Location | None],
) -> tuple[Partner | None, Partner]:
    """(the stored partner or None, what it becomes) for one valid row. ``claimed`` maps each
    partner id a previous line already wrote to that line."""
    assert row.details is not None  # rows that failed to parse were set aside by the caller
    details = row.details.validated(categories=categories, geocode=geocode)
    current = index.find(details)
    if current is not None and current.id in claimed:
        raise InvalidPartner(
            f"is the same partner as line {claimed[current.id]}", field="npi" if details.npi else "name"
        )
    if current is None:
        partner = new_partner_with(
            id=str(uuid.uuid4()),
            slug=unique_slug(slug_base(details.name), taken=index.slugs),
            valid_details=details,
            status=row.status or "active",
            now=now,
        )
        index.add(partner)
        claimed[partner.id] = row.line
        return None, partner
    claimed[current.id] = row.line
    status = row.status if row.status and row.status != current.status else None
    return current, current.revised_with(valid_details=details, status=status, now=now)
