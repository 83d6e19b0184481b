"""Offer deadlines in business days, in the clinic's timezone."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def add_business_days(start: datetime, days: int, *, timezone: str, holidays: Collection[date] = ()) -> datetime:
    """``start`` moved forward by ``days`` business days (Mon–Fri, not a holiday) at the same
    local time. An offer sent on Friday afternoon with one day is due Monday afternoon."""
    zone = ZoneInfo(timezone)
    local = start.astimezone(zone)
    remaining = days
    while remaining > 0:
        local += timedelta(days=1)
        if local.weekday() < 5 and local.date() not in holidays:
            remaining -= 1
    # Re-attach the zone so the offset is right across a DST change.
    return local.replace(tzinfo=None).replace(tzinfo=zone)
