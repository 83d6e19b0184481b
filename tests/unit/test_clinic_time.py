"""Clinic time (shared.clinic_time): one instant reads the same everywhere, in the clinic's zone,
12-hour US style, with relative hints; days as the clinic's days; durations in human units."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from shared.clinic_time import duration, format_day, format_instant, relative_hint

NEW_YORK = "America/New_York"
NOW = datetime(2026, 11, 29, 15, 0, tzinfo=UTC)


def test_an_instant_reads_in_the_clinic_zone_twelve_hour_with_its_abbreviation() -> None:
    deadline = datetime(2026, 12, 1, 19, 19, tzinfo=UTC)
    assert format_instant(deadline, zone=NEW_YORK, now=NOW) == "Tue, Dec 1, 2:19 PM EST"
    # The same instant from an ISO string, as templates sometimes hold it.
    assert format_instant("2026-12-01T19:19:00+00:00", zone=NEW_YORK, now=NOW) == "Tue, Dec 1, 2:19 PM EST"
    assert format_instant(deadline, zone="America/Los_Angeles", now=NOW) == "Tue, Dec 1, 11:19 AM PST"


def test_midnight_and_noon_are_twelve() -> None:
    midnight, noon = datetime(2026, 12, 2, 5, 0, tzinfo=UTC), datetime(2026, 12, 2, 17, 5, tzinfo=UTC)
    assert format_instant(midnight, zone=NEW_YORK, now=NOW) == "Wed, Dec 2, 12:00 AM EST"
    assert format_instant(noon, zone=NEW_YORK, now=NOW) == "Wed, Dec 2, 12:05 PM EST"


def test_daylight_saving_time_changes_the_offset_and_the_abbreviation() -> None:
    # US DST in 2026: starts Mar 8 at 2:00 AM, ends Nov 1 at 2:00 AM (New York).
    before = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # 1:30 AM EST
    after = datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 3:30 AM EDT
    assert format_instant(before, zone=NEW_YORK, now=NOW) == "Sun, Mar 8, 1:30 AM EST"
    assert format_instant(after, zone=NEW_YORK, now=NOW) == "Sun, Mar 8, 3:30 AM EDT"
    # The repeated hour in November: the same wall clock, two instants, told apart by the zone.
    first = datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    second = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    assert format_instant(first, zone=NEW_YORK, now=NOW) == "Sun, Nov 1, 1:30 AM EDT"
    assert format_instant(second, zone=NEW_YORK, now=NOW) == "Sun, Nov 1, 1:30 AM EST"


def test_another_year_is_named_and_naive_values_are_utc() -> None:
    assert format_instant(datetime(2025, 7, 4, 16, 0), zone=NEW_YORK, now=NOW) == "Fri, Jul 4, 2025, 12:00 PM EDT"
    assert format_instant(None, zone=NEW_YORK) == ""


@pytest.mark.parametrize(
    ("later", "hint"),
    [
        (timedelta(days=2, hours=1), "in 2 days"),
        (timedelta(days=1, hours=20), "in 44 h"),
        (timedelta(hours=3), "in 3 h"),
        (timedelta(minutes=5, seconds=30), "in 5 min"),
        (timedelta(seconds=20), "just now"),
        (-timedelta(hours=3, minutes=10), "3 h 10 min ago"),
        (-timedelta(days=3), "3 days ago"),
    ],
)
def test_relative_hints(later: timedelta, hint: str) -> None:
    assert relative_hint(NOW + later, now=NOW) == hint


def test_the_relative_hint_follows_the_instant() -> None:
    text = format_instant(NOW + timedelta(days=2), zone=NEW_YORK, now=NOW, relative=True)
    assert text == "Tue, Dec 1, 10:00 AM EST (in 2 days)"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (42, "42 s"),
        (150, "2 min"),  # 2.5 minutes: never "0.0 h"
        (170, "3 min"),
        (119, "2 min"),
        (3599, "1 h"),
        (2.5 * 3600, "2 h 30 min"),
        (3 * 3600, "3 h"),
        (30 * 3600, "30 h"),
        (5 * 86400, "5 days"),
        (None, ""),
    ],
)
def test_durations_in_human_units(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_a_duration_may_be_a_timedelta() -> None:
    assert duration(timedelta(minutes=2, seconds=50)) == "3 min"


def test_a_day_is_the_clinics_day() -> None:
    # 1:30 AM UTC on December 2 is still the evening of December 1 in New York.
    assert format_day(datetime(2026, 12, 2, 1, 30, tzinfo=UTC), zone=NEW_YORK) == "December 1, 2026"
    assert format_day("2026-12-02T01:30:00+00:00", zone=NEW_YORK) == "December 1, 2026"
    # A day alone is already the clinic's: never read as midnight UTC.
    assert format_day(date(2027, 3, 1), zone=NEW_YORK) == "March 1, 2027"
    assert format_day("2027-03-01", zone=NEW_YORK) == "March 1, 2027"
    assert format_day(None, zone=NEW_YORK) == format_day("", zone=NEW_YORK) == ""
