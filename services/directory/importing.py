"""Bulk import bookkeeping, free of file formats: the rows to import, the errors found in them,
the report, and the index that matches a row to a stored partner by its stable key (NPI, else
name + postal code)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.directory.domain import Partner, PartnerDetails, Status

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
