"""Clinic time: how every page and email of Handoff shows an instant and a duration, so that one
deadline reads the same on the staff page, the partner's page and the email.

An instant is shown in the clinic's zone (``HANDOFF_CLINIC_TIMEZONE``), 12-hour US style with the
zone's abbreviation ("Mon, Dec 1, 2:19 PM EST"; the year only when it is not this year), optionally
with a relative hint ("in 2 days", "3 h ago"); a day as "March 1, 2027", an instant's day being
the clinic's day. A duration is given in the largest unit that keeps
it readable ("45 s", "2 min", "3 h", "2 days"), never as "0.0 h".

Plain Python; :mod:`shared.templating` and the notifier's rendering register these as the Jinja
filters ``clinic_time``, ``clinic_day`` and ``duration``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def as_instant(value: datetime | str) -> datetime:
    """A timezone-aware instant from a datetime or an ISO 8601 string; naive values are UTC (every
    timestamp Handoff stores is written in UTC)."""
    instant = datetime.fromisoformat(value) if isinstance(value, str) else value
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def format_instant(
    value: datetime | str | None,
    *,
    zone: ZoneInfo | str,
    now: datetime | None = None,
    relative: bool = False,
) -> str:
    """``value`` in the clinic's ``zone``: "Mon, Dec 1, 2:19 PM EST", with ", 2025" after the day
    when the year is not ``now``'s, and " (in 2 days)" when ``relative``. Empty for None."""
    if value is None or value == "":
        return ""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    now = as_instant(now) if now is not None else datetime.now(UTC)
    local = as_instant(value).astimezone(zone)
    hour = local.hour % 12 or 12
    year = f", {local.year}" if local.year != now.astimezone(zone).year else ""
    text = f"{local:%a}, {local:%b} {local.day}{year}, {hour}:{local:%M} {'AM' if local.hour < 12 else 'PM'} {local:%Z}"
    if relative:
        text += f" ({relative_hint(local, now=now)})"
    return text


def format_day(value: date | datetime | str | None, *, zone: ZoneInfo | str) -> str:
    """The day ``value`` falls on in the clinic's ``zone``, e.g. "March 1, 2027": a date (or an
    ISO 8601 date string) as it is, an instant as the clinic's day. Empty for None."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        # A day alone ("2027-03-01") is the clinic's day already, never midnight UTC.
        value = date.fromisoformat(value) if len(value) <= 10 else datetime.fromisoformat(value)
    if isinstance(value, datetime):
        value = as_instant(value).astimezone(ZoneInfo(zone) if isinstance(zone, str) else zone).date()
    return f"{value:%B} {value.day}, {value.year}"


def relative_hint(value: datetime | str, *, now: datetime) -> str:
    """How far ``value`` is from ``now``: "in 2 days", "3 h ago", "in 5 min", "just now"."""
    seconds = (as_instant(value) - as_instant(now)).total_seconds()
    if abs(seconds) < MINUTE:
        return "just now"
    span = duration(abs(seconds), rounding=False)
    return f"in {span}" if seconds > 0 else f"{span} ago"


def duration(value: timedelta | float | int | None, *, rounding: bool = True) -> str:
    """A span in human units: "45 s", "2 min", "3 h", "1 h 30 min", "2 days". Under an hour in
    minutes, under two days in hours (and minutes while under 10 h), then in days. Empty for None.
    ``rounding`` rounds to the nearest unit; otherwise it is cut (a relative hint never says
    "in 2 days" of a deadline 1 day and 20 hours away)."""
    if value is None:
        return ""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    step = round if rounding else int
    if seconds < MINUTE:
        return f"{step(seconds)} s"
    if seconds < HOUR:
        minutes = max(1, step(seconds / MINUTE))
        return f"{minutes} min" if minutes < 60 else "1 h"
    if seconds < 10 * HOUR:
        total = step(seconds / MINUTE)
        hours, minutes = divmod(total, 60)
        return f"{hours} h" if minutes == 0 else f"{hours} h {minutes} min"
    if seconds < 2 * DAY:
        hours = step(seconds / HOUR)
        return f"{hours} h"
    days = step(seconds / DAY)
    return f"{days} day" if days == 1 else f"{days} days"


def jinja_filters(zone: ZoneInfo | str) -> dict[str, Callable[..., str]]:
    """The filters a Jinja environment registers: ``{{ instant | clinic_time }}``, ``{{ instant |
    clinic_time(relative=True) }}``, ``{{ day_or_instant | clinic_day }}`` and ``{{ seconds |
    duration }}``."""
    zone = ZoneInfo(zone) if isinstance(zone, str) else zone
    return {
        "clinic_time": functools.partial(format_instant, zone=zone),
        "clinic_day": functools.partial(format_day, zone=zone),
        "duration": duration,
    }
