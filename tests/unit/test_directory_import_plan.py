"""Planning an import (services.directory.importing.plan_rows), without I/O: each row is checked
once (issue 19: creating the partner validated the row's details a second time, which doubled
the cost of a row), and what is planned is exactly the validated row."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.directory.domain import PartnerDetails, new_partner
from services.directory.fields import Address, Location
from services.directory.importing import PROGRESS_STEP, ImportIndex, ImportReport, ImportRow, plan_rows
from shared import categories

CATEGORIES = tuple(categories.load())
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def geocode(postal_code: str) -> Location | None:
    return Location(27.77, -82.64) if postal_code.startswith("33701") else None


def row(line: int, name: str, **changes: object) -> ImportRow:
    details = PartnerDetails(
        name=name,
        category="physical_therapy",
        email=f"Intake@{name.split()[0]}.EXAMPLE",
        phone="(727) 555-0100",
        address=Address(city="St. Petersburg", state="fl", postal_code="33701"),
        **changes,  # type: ignore[arg-type]
    )
    return ImportRow(line=line, details=details)


def test_each_row_is_validated_once_and_planned_as_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = new_partner(
        id="stored",
        slug="gulf-pt",
        details=row(0, "Gulf PT").details,  # type: ignore[arg-type]
        status="paused",
        categories=CATEGORIES,
        now=NOW,
    )
    index = ImportIndex()
    index.add(stored)
    rows = [row(2, "  Bay   PT "), row(3, "Gulf PT", website="gulfpt.example"), row(4, "Tampa PT")]
    expected = [r.details.validated(categories=CATEGORIES, geocode=geocode) for r in rows]  # type: ignore[union-attr]

    checked: list[str] = []
    validated = PartnerDetails.validated

    def counting(self: PartnerDetails, **kwargs: object) -> PartnerDetails:
        checked.append(self.name)
        return validated(self, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(PartnerDetails, "validated", counting)
    report = ImportReport()
    done: list[int] = []
    planned = plan_rows(
        rows, index=index, report=report, now=NOW, progress=done.append, categories=CATEGORIES, geocode=geocode
    )

    assert report.error_count == 0 and sum(done) == len(rows)
    assert checked == [r.details.name for r in rows]  # type: ignore[union-attr]
    assert [revised.details for _, revised in planned] == expected
    assert [current for current, _ in planned] == [None, stored, None]
    (_, bay), (_, gulf), _ = planned
    assert (bay.version, bay.status, bay.details.email, bay.details.location) == (
        1,
        "active",
        "Intake@bay.example",
        Location(27.77, -82.64),
    )
    assert (gulf.version, gulf.status, gulf.details.website) == (2, "paused", "https://gulfpt.example")


def test_a_bad_row_is_reported_with_the_validators_words() -> None:
    report = ImportReport()
    planned = plan_rows(
        [row(2, "Bay PT", accepting_new_clients="maybe"), row(3, "Gulf PT")],
        index=ImportIndex(),
        report=report,
        now=NOW,
        progress=lambda _: None,
        categories=CATEGORIES,
        geocode=geocode,
    )
    assert len(planned) == 1
    assert [str(error) for error in report.errors] == [
        "line 2, column accepting_new_clients: accepting_new_clients must be one of yes, no, waitlist"
    ]


def test_progress_counts_every_row_in_steps() -> None:
    done: list[int] = []
    rows = [row(line, f"Partner {line}") for line in range(2, 2 + PROGRESS_STEP + 7)]
    plan_rows(
        rows,
        index=ImportIndex(),
        report=ImportReport(),
        now=NOW,
        progress=done.append,
        categories=CATEGORIES,
        geocode=geocode,
    )
    assert done == [PROGRESS_STEP, 7]
