"""Offer deadlines in business days: weekends and the clinic's holidays skipped, local time kept."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from services.referrals.offers import add_business_days
from shared.config import ConfigError, load_settings

NY = "America/New_York"


def test_friday_plus_one_is_monday() -> None:
    friday = datetime(2030, 11, 8, 14, 0, tzinfo=UTC)
    assert add_business_days(friday, 1, timezone=NY).astimezone(UTC) == datetime(2030, 11, 11, 14, 0, tzinfo=UTC)


def test_holidays_are_skipped_like_weekends() -> None:
    friday = datetime(2030, 11, 8, 14, 0, tzinfo=UTC)
    due = add_business_days(friday, 1, timezone=NY, holidays={date(2030, 11, 11)})
    assert due.astimezone(UTC) == datetime(2030, 11, 12, 14, 0, tzinfo=UTC)


def test_days_count_in_the_clinic_time_zone() -> None:
    # Saturday 02:00 UTC is still Friday evening in New York: one day is Monday evening there.
    late_friday = datetime(2030, 11, 9, 2, 0, tzinfo=UTC)
    assert add_business_days(late_friday, 1, timezone=NY).astimezone(UTC) == datetime(2030, 11, 12, 2, 0, tzinfo=UTC)


def test_holidays_setting_is_a_comma_list_of_iso_dates() -> None:
    settings = load_settings(environ={"HANDOFF_CLINIC_HOLIDAYS": "2030-12-25, 2031-01-01,"})
    assert settings.holidays == {date(2030, 12, 25), date(2031, 1, 1)}
    assert load_settings(environ={}).holidays == frozenset()
    with pytest.raises(ConfigError, match="HANDOFF_CLINIC_HOLIDAYS: '25/12/2030' is not an ISO date"):
        load_settings(environ={"HANDOFF_CLINIC_HOLIDAYS": "25/12/2030"})
    with pytest.raises(ConfigError, match="HANDOFF_SWEEP_INTERVAL_SECONDS"):
        load_settings(environ={"HANDOFF_SWEEP_INTERVAL_SECONDS": "0"})
