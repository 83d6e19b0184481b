"""What every referral use case works with: the service's dependencies, in one immutable value
built once per process (see :class:`services.referrals.service.Referrals`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.referrals.history import HistoryCache
from services.referrals.rules import Rules
from shared import clinic_time
from shared.config import Settings
from shared.keys import Keyring

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, kw_only=True)
class Context:
    sessions: async_sessionmaker[AsyncSession]
    rules: Rules
    settings: Settings
    # Signs partner links with its newest key, and verifies them with any it keeps (see
    # services.referrals.links and shared.keys).
    signing_key: Keyring
    clock: Clock
    # Partners' answering histories for ranking, re-read once a minute (services.referrals.history).
    history: HistoryCache = field(default_factory=HistoryCache)

    def today(self) -> date:
        """Today in the clinic's time zone: a licence is valid through its expiry day there."""
        return self.clock().astimezone(ZoneInfo(self.settings.clinic_timezone)).date()

    def when(self, moment: datetime | None) -> str:
        """``moment`` as people at the clinic read it (the timeline is written in words, not ISO
        stamps): "Mon, Dec 1, 2:19 PM EST", in HANDOFF_CLINIC_TIMEZONE."""
        return clinic_time.format_instant(moment, zone=self.settings.clinic_timezone, now=self.clock())

    def labels(self, codes: list[str]) -> str:
        """Reason codes as their labels, for the timeline."""
        return "; ".join(self.rules.reasons[c].label if c in self.rules.reasons else c for c in codes)
