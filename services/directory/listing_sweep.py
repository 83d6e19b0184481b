"""The directory worker's sweep (``handoff worker directory``, every
``HANDOFF_SWEEP_INTERVAL_SECONDS``): the confirmation cycle, the capacity "until" days that came,
and the licences about to expire.

- Every ``HANDOFF_ATTESTATION_DAYS`` after a partner last confirmed its listing (or was added)
  it is emailed a manage link asking to confirm; halfway through the grace period, if it has not,
  it is reminded once; after ``HANDOFF_ATTESTATION_GRACE_DAYS`` it is flagged "needs review" for
  the admin, and with ``HANDOFF_UNLIST_UNCONFIRMED`` held back from the public pages until it
  confirms. The grace period runs from the request, not the due date, so a partner is never
  flagged without having been asked for that long.
- A partner not taking new clients until a day is asked on that day whether it is again.
- The clinic (``HANDOFF_CLINIC_EMAIL``) is told 30 days before a partner's licence expires.

Each email is sent once, whatever the number of workers and restarts: its notice row (partner,
kind, cycle) is claimed in the transaction that stages the email (see :mod:`.listing_store`),
and a cycle is named by its due date, so a new confirmation starts a new one."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.directory import listing_store
from services.directory.domain import Partner, StaleVersion
from services.directory.listings import Listings
from shared.messages import EmailKind

log = logging.getLogger(__name__)

LICENCE_NOTICE_DAYS = 30


@dataclass
class SweepReport:
    asked: int = 0
    reminded: int = 0
    flagged: int = 0
    reopening: int = 0
    licences: int = 0


@dataclass(frozen=True, kw_only=True)
class Cycle:
    """The confirmation cycle's settings."""

    every: timedelta
    grace: timedelta
    unlist: bool


class ListingSweep:
    def __init__(
        self,
        *,
        listings: Listings,
        sessions: async_sessionmaker[AsyncSession],
        reads: AsyncEngine,
        cycle: Cycle,
        admin_url: str,
    ) -> None:
        self._listings = listings
        self._sessions = sessions
        self._reads = reads
        self._cycle = cycle
        self._admin_url = admin_url.rstrip("/")

    async def run(self, *, now: datetime) -> SweepReport:
        report = SweepReport()
        await self._confirmations(now, report)
        await self._reopenings(now, report)
        await self._licences(now, report)
        return report

    async def _confirmations(self, now: datetime, report: SweepReport) -> None:
        cycle = self._cycle
        async with self._reads.connect() as connection:
            due = await listing_store.due_for_confirmation(
                connection, confirmed_before=now - cycle.every, unlist=cycle.unlist
            )
        for partner in due:
            due_at = (partner.last_confirmed_at or partner.created_at) + cycle.every
            key = due_at.astimezone(UTC).isoformat()
            async with self._reads.connect() as connection:
                asked_at = await listing_store.notice_sent(
                    connection, partner_id=partner.id, kind="confirm_request", cycle=key
                )
                reminded_at = await listing_store.notice_sent(
                    connection, partner_id=partner.id, kind="confirm_reminder", cycle=key
                )
            if asked_at is None:
                report.asked += await self._notify(partner, "confirm_request", key, "listing_confirm_request", at=now)
                continue
            if reminded_at is None and now >= asked_at + cycle.grace / 2:
                report.reminded += await self._notify(
                    partner, "confirm_reminder", key, "listing_confirm_reminder", at=now
                )
            if now >= asked_at + cycle.grace:
                report.flagged += await self._flag(partner)

    async def _reopenings(self, now: datetime, report: SweepReport) -> None:
        async with self._reads.connect() as connection:
            due = await listing_store.reopening_due(connection, today=self._listings.today())
        for partner in due:
            assert partner.details.accepting_until is not None
            key = partner.details.accepting_until.isoformat()
            report.reopening += await self._notify(partner, "reopen", key, "listing_reopen", at=now)

    async def _licences(self, now: datetime, report: SweepReport) -> None:
        to = self._listings.admin_email
        async with self._reads.connect() as connection:
            due = await listing_store.licences_expiring(
                connection, by=self._listings.today() + timedelta(days=LICENCE_NOTICE_DAYS)
            )
        if due and not to:
            log.warning("%d partner licence(s) expire soon, but HANDOFF_CLINIC_EMAIL is not set to tell", len(due))
            return
        for partner in due:
            assert partner.details.licence_expires_on is not None
            key = partner.details.licence_expires_on.isoformat()
            report.licences += await self._notify(
                partner,
                "licence_expiring",
                key,
                "licence_expiring",
                at=now,
                to=to,
                url=f"{self._admin_url}/admin/partners/{partner.id}",
                expires_at=datetime.combine(partner.details.licence_expires_on, time(12), tzinfo=UTC),
            )

    async def _notify(
        self,
        partner: Partner,
        notice: str,
        key: str,
        kind: EmailKind,
        *,
        at: datetime,
        to: str | None = None,
        url: str = "",
        expires_at: datetime | None = None,
    ) -> int:
        """Claim the notice and stage its email in one transaction: 1 when this sweep sent it, 0
        when another (or an earlier) one did."""
        async with self._sessions.begin() as session:
            if not await listing_store.claim_notice(session, partner_id=partner.id, kind=notice, cycle=key, at=at):
                return 0
            await self._listings.stage_email(session, kind=kind, partner=partner, to=to, url=url, expires_at=expires_at)
        self._listings.nudge()
        log.info("listing sweep: %s for partner %s (%s)", notice, partner.id, key)
        return 1

    async def _flag(self, partner: Partner) -> int:
        unlist = self._cycle.unlist
        try:
            flagged = await self._listings.directory.revise(
                partner_id=partner.id,
                revise=lambda current, now: (
                    current.flagged_unconfirmed(now=now, unlist=unlist)
                    # Confirmed meanwhile: nothing to flag.
                    if current.last_confirmed_at == partner.last_confirmed_at
                    else current
                ),
                actor="system",
                action="flagged_unconfirmed",
            )
        except StaleVersion:
            return 0  # another sweep or a confirmation got there first; the next pass looks again
        return int(flagged.version != partner.version and flagged.needs_review_since is not None)
