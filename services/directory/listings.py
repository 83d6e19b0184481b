"""Partners keep their own listing true, without an account (design: "A directory partners keep
true"). A partner asks for a manage link on its public page and gets it by email at its referral
address on file; the link's page shows the listing as a form (GET changes nothing) and its POST
either confirms the listing as correct or changes it: the self-service fields at once, the
fields that identify the partner (:data:`services.directory.domain.REVIEWED_FIELDS`) only once
an admin approves them. Every change goes through :class:`PartnerService`, so it is versioned,
in the partner's history with who made it, and published to referrals like any other.

A manage link is good for its lifetime to look at the page; each form the page renders carries
a token of its own, acted on once (see :mod:`shared.manage_links`)."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.directory import history, listing_form, listing_store
from services.directory.columns import details_from_record, record_from_partner
from services.directory.domain import REVIEWED_FIELDS, Partner, PartnerNotFound
from services.directory.listing_store import Review
from services.directory.service import PartnerService, utcnow
from services.directory.storage import PartnerRepository, outbox
from shared import auth, manage_links
from shared import outbox as outboxes
from shared.errors import Conflict, NotFound
from shared.keys import Keyring
from shared.messages import EmailContext, EmailKind, SendEmail

Why = Literal["invalid", "expired", "used", "gone"]


class LinkRefused(Exception):
    """A manage link that cannot be acted on: tampered with or made for something else
    (``invalid``), past its expiry (``expired``), a form already submitted (``used``), or a
    partner no longer listed with the clinic (``gone``)."""

    def __init__(self, why: Why) -> None:
        super().__init__(why)
        self.why = why


class ReviewNotFound(NotFound):
    def __init__(self, review_id: str) -> None:
        super().__init__(f"no review {review_id!r}", field="id")


class ReviewClosed(Conflict):
    """The review was decided already (by another admin, or a second click)."""

    def __init__(self) -> None:
        super().__init__("this review was decided already", field="id")


@dataclass(frozen=True, kw_only=True)
class ManagePage:
    """What the manage page shows: the partner, the token its forms carry, and its changes
    waiting for review or decided lately (with the admin's note)."""

    partner: Partner
    token: str
    expires_at: datetime
    pending: list[Review]
    decided: list[Review]


@dataclass(frozen=True, kw_only=True)
class Updated:
    """What an update did: columns changed at once, and columns queued for the admin's review."""

    page: ManagePage
    applied: list[str]
    queued: list[str]


class Listings:
    """The self-service listing's use cases, and the links and emails they send."""

    def __init__(
        self,
        *,
        directory: PartnerService,
        sessions: async_sessionmaker[AsyncSession],
        reads: AsyncEngine,
        keyring: Keyring,
        base_url: str,
        admin_email: str = "",
        timezone: str = "America/New_York",
        clock: Callable[[], datetime] = utcnow,
        nudge: Callable[[], None] = lambda: None,
    ) -> None:
        self.directory = directory
        self._sessions = sessions
        self._reads = reads
        self._keyring = keyring
        self._base_url = base_url.rstrip("/")
        self.admin_email = admin_email
        self._timezone = ZoneInfo(timezone)
        self._clock = clock
        self._nudge = nudge

    # ------------------------------------------------------------------ links and emails

    def today(self) -> date:
        """Today in the clinic's time zone (capacity and licence days are the clinic's days)."""
        return self._clock().astimezone(self._timezone).date()

    def link(self, partner_id: str, *, expires_at: datetime | None = None) -> tuple[str, datetime]:
        """A manage link for the partner (its URL and expiry)."""
        expires_at = expires_at or self._clock() + manage_links.LIFETIME
        token = manage_links.issue(key=self._keyring, partner_id=partner_id, expires_at=expires_at)
        return f"{self._base_url}/manage/{token}", expires_at

    def nudge(self) -> None:
        """Tell the outbox relay that an email waits (after a commit that staged one)."""
        self._nudge()

    async def stage_email(
        self,
        session: AsyncSession,
        *,
        kind: EmailKind,
        partner: Partner,
        to: str | None = None,
        url: str = "",
        expires_at: datetime | None = None,
    ) -> None:
        """Stage an email about ``partner`` in ``session``'s transaction: to the partner (with a
        fresh manage link unless ``url`` is given) or, with ``to``, to someone else. No client
        data: :class:`EmailContext` has no field for any."""
        if not url:
            url, expires_at = self.link(partner.id)
        context = EmailContext(
            recipient_name="" if to else partner.details.name,
            partner_name=partner.details.name,
            action_url=url,
            expires_at=expires_at,
            # An email whose button is not the manage link still carries one (an approval's
            # points at the public page); the clinic's own emails do not.
            manage_url="" if to or "/manage/" in url else self.link(partner.id)[0],
        )
        await outboxes.add(
            session,
            outbox,
            SendEmail(notification_id=str(uuid.uuid4()), kind=kind, to=to or partner.details.email, context=context),
        )

    async def request_link(self, *, slug: str) -> bool:
        """Email a manage link to the partner at ``slug``, at its referral address on file. True
        when one was sent; the caller must answer the same either way (an unknown slug, an
        archived partner)."""
        async with self._sessions.begin() as session:
            partner = await PartnerRepository(session).get_by_slug(slug)
            if partner is None or partner.status == "archived":
                return False
            await self.stage_email(session, kind="listing_manage_link", partner=partner)
        self._nudge()
        return True

    # ------------------------------------------------------------------ the manage page

    async def open(self, token: str) -> ManagePage:
        """The page behind a manage link; changes nothing. Its forms carry a fresh token, with the
        link's own expiry."""
        claims = self._read(token)
        partner = await self._partner(claims.partner_id)
        fresh = manage_links.issue(key=self._keyring, partner_id=partner.id, expires_at=claims.expires_at)
        return await self._page(partner, token=fresh, expires_at=claims.expires_at)

    async def confirm(self, token: str) -> ManagePage:
        """Record that the practice confirmed its listing as correct, now."""
        claims = self._read(token)
        await self._partner(claims.partner_id)

        async def use(session: AsyncSession, _: Partner) -> None:
            await self._use(session, claims)

        partner = await self.directory.revise(
            partner_id=claims.partner_id,
            revise=lambda current, now: current.confirmed(now=now),
            actor="partner",
            action="confirmed",
            also=use,
        )
        return await self._next_page(partner, claims)

    async def update(self, token: str, form: Mapping[str, str]) -> Updated:
        """Apply the self-service fields of ``form`` at once and queue the reviewed ones for the
        admin; :class:`ListingInvalid` with every error when any value is bad (nothing stored)."""
        claims = self._read(token)
        current = await self._partner(claims.partner_id)
        if await self._was_used(claims.jti):
            raise LinkRefused("used")
        self_changes, review_changes = listing_form.parse(
            current, form, categories=self.directory.categories, today=self.today()
        )
        queued: list[str] = []

        async def use_and_queue(session: AsyncSession, revised: Partner) -> None:
            await self._use(session, claims)
            if review_changes:
                now = self._clock()
                await listing_store.add_review(
                    session, partner_id=current.id, base_version=current.version, changes=review_changes, at=now
                )
                await history.note(
                    session,
                    partner_id=current.id,
                    version=revised.version,
                    actor="partner",
                    action="review_requested",
                    at=now,
                    detail={"asked": review_changes},
                )
                queued.extend(review_changes)

        def apply(partner: Partner, now: datetime) -> Partner:
            if not self_changes:
                return partner
            details = partner.details.with_changes(self_changes)
            return partner.revise(details=details, categories=self.directory.categories, now=now)

        partner = await self.directory.revise(
            partner_id=current.id, revise=apply, actor="partner", action="updated", also=use_and_queue
        )
        applied = sorted(history.changes(current, partner))
        return Updated(page=await self._next_page(partner, claims), applied=applied, queued=queued)

    # ------------------------------------------------------------------ the admin's review

    async def reviews(self, *, status: str = "pending") -> list[tuple[Review, Partner | None]]:
        """Reviews with their partners (None for one since deleted), pending ones oldest first."""
        async with self._reads.connect() as connection:
            found = await listing_store.reviews(connection, status=status)
            repository = PartnerRepository(connection)
            return [(review, await repository.get(review.partner_id)) for review in found]

    async def pending_count(self) -> int:
        async with self._reads.connect() as connection:
            return await listing_store.count_pending(connection)

    async def decide(self, *, review_id: str, approve: bool, note: str, admin: str) -> Review:
        """Approve (apply the changes) or reject a pending review, with the admin's note; the
        partner is emailed either way (the note itself is shown on its manage page)."""
        async with self._reads.connect() as connection:
            review = await listing_store.get_review(connection, review_id)
        if review is None:
            raise ReviewNotFound(review_id)
        if review.status != "pending":
            raise ReviewClosed()
        note = note.strip()[:1000]
        actor = f"admin:{admin}"
        status = "approved" if approve else "rejected"

        async def close(session: AsyncSession, partner: Partner) -> None:
            now = self._clock()
            if not await listing_store.decide(session, review_id=review_id, status=status, by=actor, note=note, at=now):
                raise ReviewClosed()
            await self.stage_email(
                session,
                kind="listing_change_approved" if approve else "listing_change_rejected",
                partner=partner,
                url=f"{self._base_url}/partners-in-health/{partner.slug}" if approve and partner.is_public else "",
            )
            if not approve:
                await history.note(
                    session,
                    partner_id=partner.id,
                    version=partner.version,
                    actor=actor,
                    action="review_rejected",
                    at=now,
                    detail={"asked": review.changes, "note": note},
                )

        if approve:
            current = await self.directory.get(partner_id=review.partner_id, include_hidden=True)
            details, _ = details_from_record({**record_from_partner(current), **review.changes})
            # Every reviewed field, as stored now except what the review asked for.
            changes = {name: getattr(details, name) for name in REVIEWED_FIELDS}
            await self.directory.update(
                partner_id=review.partner_id,
                version=None,
                changes=changes,
                actor=actor,
                action="review_approved",
                also=close,
            )
        else:
            await self.directory.revise(
                partner_id=review.partner_id,
                revise=lambda partner, _: partner,
                actor=actor,
                action="review_rejected",
                also=close,
            )
        return dataclasses.replace(review, status=status, note=note, decided_by=actor)

    # ------------------------------------------------------------------ helpers

    def _read(self, token: str) -> manage_links.ManageClaims:
        try:
            return manage_links.read(token, key=self._keyring)
        except auth.InvalidToken as exc:
            raise LinkRefused("expired" if str(exc) == "expired" else "invalid") from None

    async def _partner(self, partner_id: str) -> Partner:
        try:
            partner = await self.directory.get(partner_id=partner_id, include_hidden=True)
        except PartnerNotFound:
            raise LinkRefused("gone") from None
        if partner.status == "archived":
            raise LinkRefused("gone")
        return partner

    async def _was_used(self, jti: str) -> bool:
        async with self._reads.connect() as connection:
            return await listing_store.link_used(connection, jti)

    async def _use(self, session: AsyncSession, claims: manage_links.ManageClaims) -> None:
        if not await listing_store.use_link(session, jti=claims.jti, partner_id=claims.partner_id, at=self._clock()):
            raise LinkRefused("used")

    async def _next_page(self, partner: Partner, claims: manage_links.ManageClaims) -> ManagePage:
        fresh = manage_links.issue(key=self._keyring, partner_id=partner.id, expires_at=claims.expires_at)
        return await self._page(partner, token=fresh, expires_at=claims.expires_at)

    async def _page(self, partner: Partner, *, token: str, expires_at: datetime) -> ManagePage:
        async with self._reads.connect() as connection:
            mine = await listing_store.reviews(connection, partner_id=partner.id, limit=10)
        return ManagePage(
            partner=partner,
            token=token,
            expires_at=expires_at,
            pending=[r for r in mine if r.status == "pending"],
            decided=[r for r in mine if r.status != "pending"][:3],
        )
