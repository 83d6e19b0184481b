"""The referral service layer: issuing referrals, offering them to one partner at a time,
partners' answers, cancellation, and applying the messages other services send.

Every change and the messages it causes are written in one transaction (messages go to the
outbox); the relay is nudged after the commit.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import msgspec
from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.referrals import charts, links, matching
from services.referrals.domain import (
    CLOSED_STATUSES,
    DECLINE_REASONS,
    OPEN_STATUSES,
    check_consent,
    check_transition,
    diagnostic_wording,
)
from services.referrals.intake import ReferralDraft, SuggestionQuery
from services.referrals.offers import add_business_days
from services.referrals.outcomes import CLEARANCES, OUTCOMES, TARGET_STATUS, OutcomeReport, check_report
from services.referrals.records import (
    ClearanceRecord,
    Dashboard,
    EmergencyAdvice,
    OfferRecord,
    OutcomeRecord,
    ReferralRecord,
    Suggestion,
    TimelineEntry,
)
from services.referrals.rules import Assessment, Rules
from services.referrals.storage import (
    audit_log,
    email_deliveries,
    idempotency_keys,
    offers,
    outbox,
    outcomes,
    partners,
    referral_events,
    referrals,
    staff_users,
)
from shared import categories, codec, geo
from shared import outbox as outbox_module
from shared.auth import InvalidToken, Staff
from shared.config import Settings
from shared.errors import Conflict, InvalidInput, NotFound
from shared.messages import EmailContext, EmailDelivery, PartnerChanged, PartnerSnapshot, SendEmail

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


class EmergencyStop(InvalidInput):
    """An emergency reason: no referral; the therapist must act now (call 911 / 988)."""


class ScopeViolation(InvalidInput):
    """A chosen partner's category is not allowed for the referral's reasons."""


class LinkRefused(Exception):
    """A partner link that cannot be used: ``why`` is invalid, expired or used."""

    def __init__(self, why: Literal["invalid", "expired", "used"]) -> None:
        super().__init__(why)
        self.why = why


class OfferPage(msgspec.Struct, kw_only=True):
    """What a partner sees behind a link: no client name, only what they need to decide."""

    offer_id: str
    partner_name: str
    reference: str
    urgency: str
    reasons: list[str]
    guidance: list[str]
    note: str
    expires_at: datetime
    # The partner has said they have seen it (the referral is ``received``).
    acknowledged: bool = False


class Handout(msgspec.Struct, kw_only=True):
    """The client's printable handout: why, in plain words, and whom to contact. No diagnosis."""

    referral_id: str
    reference: str
    client_name: str
    urgency: str
    why: list[str]
    partners: list[PartnerSnapshot]
    # True when a partner has accepted: the handout then names only them.
    accepted: bool = False


class ReportPage(msgspec.Struct, kw_only=True):
    """What a partner sees behind an outcome-report link."""

    partner_name: str
    reference: str
    urgency: str
    reasons: list[str]
    status: str
    booked_for: date | None = None


# How many partners a handout lists when none has accepted: enough choice, one printed sheet.
HANDOUT_PARTNERS = 4
# How long an outcome-report link stays good: long enough for a waiting list and a first visit.
REPORT_LINK_DAYS = 90


class SweepReport(msgspec.Struct, kw_only=True, frozen=True):
    """What one deadline sweep did (another sweep running at once may have done the rest)."""

    reminded: int = 0
    expired: int = 0


class Referrals:
    """Issue, follow and answer referrals."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker,
        rules: Rules,
        settings: Settings,
        on_commit: Callable[[], None] = lambda: None,
        clock: Clock = system_clock,
    ) -> None:
        self._sessions = sessions
        self._rules = rules
        self._settings = settings
        self._key = settings.signing_key()
        self._on_commit = on_commit
        self._clock = clock

    def now(self) -> datetime:
        """The service's clock (injected in tests)."""
        return self._clock()

    # ------------------------------------------------------------------ issuing

    async def assess(self, *, staff: Staff, reasons: list[str]) -> Assessment:
        """What the rules say for ``reasons``. An emergency is recorded in the audit log (the advice
        was given) and raised as :class:`EmergencyStop`."""
        assessment = self._rules.assess(reasons)
        if assessment.emergencies:
            await self._record_emergency(staff=staff, assessment=assessment)
            raise self._emergency(assessment)
        return assessment

    async def suggest(self, *, query: SuggestionQuery) -> list[Suggestion]:
        """Partners in scope for the query's reasons, best first, each with why."""
        return [suggestion for suggestion, _ in await self._ranked(query)]

    async def _ranked(self, query: SuggestionQuery) -> list[tuple[Suggestion, PartnerSnapshot]]:
        assessment = self._rules.assess(query.reasons)
        if assessment.emergencies:
            raise self._emergency(assessment)
        near = None
        if query.postal_code:
            near = geo.centroid(query.postal_code)
            if near is None:
                raise InvalidInput(f"{query.postal_code!r} is not a known US ZIP code", field="postal_code")
        async with self._sessions() as session:
            candidates = await self._replica(session, categories_=assessment.categories)
            history = await self._history(session, [p.id for p in candidates])
        ranked = matching.rank(
            candidates,
            assessment,
            near=near,
            near_label=(query.postal_code or "").strip()[:5],
            language=query.language,
            telehealth=query.telehealth,
            history=history,
            limit=query.limit,
        )
        by_id = {p.id: p for p in candidates}
        return [(suggestion, by_id[suggestion.partner_id]) for suggestion in ranked]

    async def _history(self, session: AsyncSession, partner_ids: list[str]) -> dict[str, matching.PartnerHistory]:
        """Each partner's answers to past offers (acceptance rate, median time to accept)."""
        if not partner_ids:
            return {}
        rows = (
            await session.execute(
                select(offers.c.partner_id, offers.c.status, offers.c.offered_at, offers.c.responded_at).where(
                    offers.c.partner_id.in_(partner_ids), offers.c.status.in_(("accepted", "declined", "expired"))
                )
            )
        ).all()
        by_partner: dict[str, list] = {}
        for row in rows:
            offered = row.offered_at and _aware(row.offered_at)
            responded = row.responded_at and _aware(row.responded_at)
            by_partner.setdefault(row.partner_id, []).append((row.status, offered, responded))
        completed = dict(
            (
                await session.execute(
                    select(outcomes.c.partner_id, func.count(func.distinct(outcomes.c.referral_id)))
                    .where(outcomes.c.partner_id.in_(partner_ids), outcomes.c.outcome == "completed")
                    .group_by(outcomes.c.partner_id)
                )
            ).all()
        )
        return {
            pid: msgspec.structs.replace(matching.history_from(answers), completed=completed.get(pid, 0))
            for pid, answers in by_partner.items()
        }

    async def create(self, *, staff: Staff, draft: ReferralDraft, idempotency_key: str | None = None) -> ReferralRecord:
        """Issue a referral and offer it to its first partner. With ``idempotency_key``, the same
        key and body give the same referral once; another body under that key is refused.

        The key is stored with its answer in the referral's own transaction: a request that fails
        part way (the database busy or away) leaves no trace, so sending it again is always safe,
        and the same request sent twice at once waits for the first and replays it."""
        if not idempotency_key:
            return await self._create(staff=staff, draft=draft)
        if len(idempotency_key) > 200:
            raise InvalidInput("Idempotency-Key must be at most 200 characters", field="Idempotency-Key")
        key = {
            "staff_id": staff.id,
            "key": idempotency_key,
            "body_hash": hashlib.sha256(msgspec.json.encode(draft)).hexdigest(),
        }
        stored = await self._replay(key)
        if stored is not None:
            return stored
        try:
            return await self._create(staff=staff, draft=draft, key=key)
        except IntegrityError:
            # The key is unique: the same request, sent at the same moment, committed first.
            stored = await self._replay(key)
            if stored is None:
                raise
            return stored

    async def _replay(self, key: dict) -> ReferralRecord | None:
        """The answer stored under an Idempotency-Key, None if there is none; 422 when the key was
        used with another body."""
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(idempotency_keys.c.body_hash, idempotency_keys.c.response).where(
                        idempotency_keys.c.staff_id == key["staff_id"], idempotency_keys.c.key == key["key"]
                    )
                )
            ).first()
        if row is None:
            return None
        if row.body_hash != key["body_hash"]:
            raise InvalidInput("this Idempotency-Key was used with a different request body", field="Idempotency-Key")
        return msgspec.convert(row.response, ReferralRecord)

    async def _create(self, *, staff: Staff, draft: ReferralDraft, key: dict | None = None) -> ReferralRecord:
        assessment = await self.assess(staff=staff, reasons=list(draft.reasons))
        chosen = await self._choose_partners(draft=draft, assessment=assessment)
        vocabulary = categories.load()
        check_consent(
            given=draft.consent.given,
            scope=list(draft.consent.scope),
            kinds_needed={vocabulary[p.category].kind for p in chosen},
        )
        now = self._clock()
        referral_id = str(uuid.uuid4())
        reference = _new_reference()
        consent = {**msgspec.to_builtins(draft.consent), "recorded_at": now.isoformat(), "recorded_by": staff.email}
        async with self._sessions.begin() as session:
            await session.execute(
                insert(referrals).values(
                    id=referral_id,
                    reference=reference,
                    status="requested",
                    urgency=assessment.urgency,
                    reasons=list(draft.reasons),
                    note=draft.note,
                    client=msgspec.to_builtins(draft.client),
                    consent=consent,
                    created_by=staff.id,
                    created_at=now,
                    updated_at=now,
                )
            )
            await session.execute(
                insert(offers),
                [
                    {
                        "id": str(uuid.uuid4()),
                        "referral_id": referral_id,
                        "partner_id": p.id,
                        "position": i,
                        "status": "queued",
                    }
                    for i, p in enumerate(chosen)
                ],
            )
            await self._event(
                session,
                referral_id,
                actor=staff.email,
                from_status=None,
                to_status="requested",
                why=f"issued for {', '.join(draft.reasons)} to {len(chosen)} partner(s) in turn",
            )
            await self._offer_next(session, referral_id=referral_id, reference=reference, urgency=assessment.urgency)
            # Read back in the same transaction: what was committed, without another round trip.
            record = await self._read(session, await self._reload(session, referral_id))
            if key is not None:
                await session.execute(
                    insert(idempotency_keys).values(
                        **key, response=msgspec.to_builtins(record), status_code=201, created_at=now
                    )
                )
        self._on_commit()
        return record

    async def _choose_partners(self, *, draft: ReferralDraft, assessment: Assessment) -> list[PartnerSnapshot]:
        if draft.partner_ids is None:
            near = (
                draft.client.postal_code
                if draft.client.postal_code and geo.centroid(draft.client.postal_code)
                else None
            )
            ranked = await self._ranked(
                SuggestionQuery(
                    reasons=list(draft.reasons),
                    postal_code=near,
                    language=draft.client.language,
                )
            )
            if not ranked:
                raise InvalidInput(
                    "no active partner in the directory can take these reasons",
                    field="reasons",
                    extra={"categories": assessment.categories},
                )
            return [partner for _, partner in ranked]
        if not draft.partner_ids:
            raise InvalidInput(
                "give at least one partner, or leave partner_ids out for suggestions", field="partner_ids"
            )
        if len(set(draft.partner_ids)) != len(draft.partner_ids):
            raise InvalidInput("a partner is listed twice", field="partner_ids")
        async with self._sessions() as session:
            found = {p.id: p for p in await self._replica(session, ids=list(draft.partner_ids))}
        chosen = []
        for index, partner_id in enumerate(draft.partner_ids):
            field = f"partner_ids[{index}]"
            partner = found.get(partner_id)
            if partner is None:
                raise InvalidInput(f"unknown partner {partner_id!r}", field=field)
            if partner.status != "active":
                raise InvalidInput(f"{partner.name} is {partner.status} and cannot receive referrals", field=field)
            if partner.category not in assessment.categories:
                refusing = [r.code for r in assessment.reasons if partner.category not in r.categories]
                raise ScopeViolation(
                    f"{partner.name} ({partner.category}) is outside the scope allowed for {', '.join(refusing)}",
                    field=field,
                    extra={"partner_id": partner_id, "reasons": refusing, "allowed": assessment.categories},
                )
            chosen.append(partner)
        return chosen

    def _emergency(self, assessment: Assessment) -> EmergencyStop:
        advice = EmergencyAdvice(
            urgency="emergency", instruction=assessment.instruction(), reasons=[r.code for r in assessment.emergencies]
        )
        return EmergencyStop(
            f"Emergency: do not refer. {advice.instruction}", field="reasons", extra=msgspec.to_builtins(advice)
        )

    async def _record_emergency(self, *, staff: Staff, assessment: Assessment) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(audit_log).values(
                    at=self._clock(),
                    actor=staff.email,
                    action="emergency_advice_given",
                    referral_id=None,
                    detail={
                        "reasons": [r.code for r in assessment.emergencies],
                        "instruction": assessment.instruction(),
                        "rules_version": self._rules.version,
                    },
                )
            )

    # ------------------------------------------------------------------ offers

    async def _next_queued(self, session: AsyncSession, referral_id: str):
        """The referral's next queued offer to a partner still active, or None."""
        return (
            await session.execute(
                select(offers.c.id, offers.c.partner_id, partners.c.name, partners.c.email)
                .join(partners, partners.c.id == offers.c.partner_id)
                .where(offers.c.referral_id == referral_id, offers.c.status == "queued", partners.c.status == "active")
                .order_by(offers.c.position)
                .limit(1)
            )
        ).first()

    async def _offer_next(self, session: AsyncSession, *, referral_id: str, reference: str, urgency: str) -> bool:
        """Offer the referral to its next queued partner; False when none is left."""
        row = await self._next_queued(session, referral_id)
        if row is None:
            return False
        now = self._clock()
        # Stored in UTC: SQLite keeps a datetime's wall time only, and every reader assumes UTC.
        expires_at = add_business_days(
            now,
            getattr(self._settings, f"offer_days_{urgency}"),
            timezone=self._settings.clinic_timezone,
            holidays=self._settings.holidays,
        ).astimezone(UTC)
        await session.execute(
            update(offers).where(offers.c.id == row.id).values(status="offered", offered_at=now, expires_at=expires_at)
        )
        token = links.issue(key=self._key, offer_id=row.id, expires_at=expires_at)
        await self._email(
            session,
            referral_id=referral_id,
            kind="offer",
            to=row.email,
            context=EmailContext(
                recipient_name=row.name,
                partner_name=row.name,
                reference=reference,
                urgency=urgency,
                action_url=f"{self._settings.public_url('referrals')}/respond/{token}",
                expires_at=expires_at,
            ),
        )
        await self._event(
            session,
            referral_id,
            actor="system",
            from_status="requested",
            to_status="requested",
            why=f"offered to {row.name} until {expires_at.isoformat()}",
        )
        return True

    async def _advance(self, session: AsyncSession, referral: object, *, actor: str) -> None:
        """After an offer closes without acceptance: next partner, or fail and tell the therapist."""
        referral = await self._reload(session, referral.id)
        if await self._next_queued(session, referral.id) is None:
            await self._transition(session, referral, "failed", actor=actor, why="no partner left to offer it to")
            await self._email_therapist(session, referral, kind="no_partner_left")
            return
        if referral.status == "received":
            # "Received" belonged to the partner whose offer just closed.
            await self._transition(
                session,
                referral,
                "requested",
                actor=actor,
                why="the partner who had it closed their offer; offering the next one",
            )
        await self._offer_next(session, referral_id=referral.id, reference=referral.reference, urgency=referral.urgency)

    # ------------------------------------------------------------------ deadlines

    async def sweep(self) -> SweepReport:
        """Act on every offer's stored deadline as of now: remind the partner once past half the
        time to answer, expire the offer at its deadline (the therapist is told, the next partner
        offered, or the referral fails).

        Safe to run at any interval, after an outage, and by several workers at once: each offer
        changes by a conditional UPDATE (``WHERE status = 'offered' ...``) in its own transaction
        with the emails it causes, so only the sweep whose UPDATE matched sends them."""
        now = self._clock()
        reminded = expired = 0
        async with self._sessions() as session:
            due = (
                await session.execute(
                    select(offers.c.id, offers.c.offered_at, offers.c.expires_at, offers.c.reminded_at)
                    .join(referrals, referrals.c.id == offers.c.referral_id)
                    .where(
                        offers.c.status == "offered",
                        offers.c.expires_at.is_not(None),
                        referrals.c.status.in_(("requested", "received")),
                    )
                    .order_by(offers.c.expires_at)
                )
            ).all()
        for row in due:
            offered_at, expires_at = _aware(row.offered_at), _aware(row.expires_at)
            if expires_at <= now:
                expired += await self._expire(row.id, now=now)
            elif row.reminded_at is None and offered_at + (expires_at - offered_at) / 2 <= now:
                reminded += await self._remind(row.id, now=now)
        return SweepReport(reminded=reminded, expired=expired)

    async def _remind(self, offer_id: str, *, now: datetime) -> int:
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(offers)
                .where(
                    offers.c.id == offer_id,
                    offers.c.status == "offered",
                    offers.c.reminded_at.is_(None),
                    offers.c.expires_at > now,
                )
                .values(reminded_at=now)
            )
            if claimed.rowcount != 1:
                return 0  # Answered, expired or reminded by another sweep meanwhile.
            row = (
                await session.execute(
                    select(
                        offers.c.referral_id,
                        offers.c.expires_at,
                        partners.c.name,
                        partners.c.email,
                        referrals.c.reference,
                        referrals.c.urgency,
                        referrals.c.status,
                    )
                    .join(partners, partners.c.id == offers.c.partner_id)
                    .join(referrals, referrals.c.id == offers.c.referral_id)
                    .where(offers.c.id == offer_id)
                )
            ).one()
            expires_at = _aware(row.expires_at)
            # A fresh token for the same offer: links are stateless and die with the offer.
            token = links.issue(key=self._key, offer_id=offer_id, expires_at=expires_at)
            await self._email(
                session,
                referral_id=row.referral_id,
                kind="offer_reminder",
                to=row.email,
                context=EmailContext(
                    recipient_name=row.name,
                    partner_name=row.name,
                    reference=row.reference,
                    urgency=row.urgency,
                    action_url=f"{self._settings.public_url('referrals')}/respond/{token}",
                    expires_at=expires_at,
                ),
            )
            await self._event(
                session,
                row.referral_id,
                actor="system",
                from_status=row.status,
                to_status=row.status,
                why=f"{row.name} reminded: half the time to answer has passed",
            )
        self._on_commit()
        return 1

    async def _expire(self, offer_id: str, *, now: datetime) -> int:
        async with self._sessions.begin() as session:
            row = (
                await session.execute(
                    select(offers.c.referral_id, offers.c.expires_at, partners.c.name, partners.c.email)
                    .join(partners, partners.c.id == offers.c.partner_id)
                    .where(offers.c.id == offer_id)
                )
            ).one()
            # responded_at is the deadline itself, not the sweep's time: the same record whenever
            # the sweep runs.
            claimed = await session.execute(
                update(offers)
                .where(offers.c.id == offer_id, offers.c.status == "offered", offers.c.expires_at <= now)
                .values(status="expired", responded_at=row.expires_at)
            )
            if claimed.rowcount != 1:
                return 0  # Answered or expired by another sweep meanwhile.
            referral = await self._reload(session, row.referral_id)
            await self._event(
                session,
                referral.id,
                actor="system",
                from_status=referral.status,
                to_status=referral.status,
                why=f"offer to {row.name} expired unanswered at {_aware(row.expires_at).isoformat()}",
            )
            context = EmailContext(
                recipient_name=row.name, partner_name=row.name, reference=referral.reference, urgency=referral.urgency
            )
            await self._email(session, referral_id=referral.id, kind="offer_withdrawn", to=row.email, context=context)
            if await self._next_queued(session, referral.id) is not None:
                # When none is left, _advance sends the therapist no_partner_left instead.
                await self._email_therapist(session, referral, kind="offer_expired", partner_name=row.name)
            if referral.status in ("requested", "received"):
                # The next partner's time starts when they are sent the offer, not at the old
                # deadline: after an outage they still get their full time to answer.
                await self._advance(session, referral, actor="system")
        self._on_commit()
        return 1

    async def _reload(self, session: AsyncSession, referral_id: str):
        return (await session.execute(select(referrals).where(referrals.c.id == referral_id))).one()

    async def open_offer(self, *, token: str) -> OfferPage:
        """The offer behind a partner link, for the confirmation page. Audits the view; changes
        nothing else (mail scanners follow links)."""
        async with self._sessions.begin() as session:
            offer, referral, partner = await self._usable_offer(session, token)
            await session.execute(
                insert(audit_log).values(
                    at=self._clock(),
                    actor=f"partner:{offer.partner_id}",
                    action="partner_viewed_referral",
                    referral_id=referral.id,
                    detail={"offer_id": offer.id},
                )
            )
        reasons = [self._rules.reasons[c] for c in referral.reasons if c in self._rules.reasons]
        return OfferPage(
            offer_id=offer.id,
            partner_name=partner.name,
            reference=referral.reference,
            urgency=referral.urgency,
            reasons=[r.label for r in reasons],
            guidance=[r.guidance for r in reasons],
            note=referral.note,
            expires_at=_aware(offer.expires_at),
            acknowledged=referral.status == "received",
        )

    async def acknowledge(self, *, token: str) -> None:
        """The partner says they have seen the referral and will answer: ``requested → received``.

        This is the explicit POST that marks a referral received. Opening the link cannot do it,
        because mail scanners open links too; a second acknowledgement changes nothing."""
        async with self._sessions.begin() as session:
            offer, referral, partner = await self._usable_offer(session, token)
            if referral.status != "requested":
                return
            await self._transition(
                session,
                referral,
                "received",
                actor=f"partner:{partner.name}",
                why=f"{partner.name} has seen the referral and will answer by {_aware(offer.expires_at).isoformat()}",
            )

    async def answer(
        self, *, token: str, decision: str, reason: str | None = None, note: str = ""
    ) -> Literal["accepted", "declined"]:
        """A partner's accept or decline through their link. Single use: a second answer, or an
        answer after the deadline, raises :class:`LinkRefused`."""
        async with self._sessions.begin() as session:
            # The link is checked first: a used or forged link is refused whatever the form says.
            offer, referral, partner = await self._usable_offer(session, token)
            if decision not in ("accept", "decline"):
                raise InvalidInput("decision must be accept or decline", field="decision")
            if decision == "decline" and reason not in DECLINE_REASONS:
                raise InvalidInput(
                    f"a reason is required to decline: one of {', '.join(DECLINE_REASONS)}", field="reason"
                )
            now = self._clock()
            new_status = "accepted" if decision == "accept" else "declined"
            claimed = await session.execute(
                update(offers)
                .where(offers.c.id == offer.id, offers.c.status == "offered")
                .values(status=new_status, responded_at=now, decline_reason=reason, decline_note=note[:2000] or None)
            )
            if claimed.rowcount != 1:
                raise LinkRefused("used")
            actor = f"partner:{partner.name}"
            if decision == "accept":
                await self._transition(session, referral, "accepted", actor=actor, why=f"accepted by {partner.name}")
                await self._email_therapist(session, referral, kind="referral_accepted", partner_name=partner.name)
                await self._send_report_link(session, offer_id=offer.id, referral=referral, partner=partner)
            else:
                await self._event(
                    session,
                    referral.id,
                    actor=actor,
                    from_status=referral.status,
                    to_status=referral.status,
                    why=f"declined by {partner.name}: {DECLINE_REASONS[reason]}",
                )
                await self._email_therapist(session, referral, kind="referral_declined", partner_name=partner.name)
                await self._advance(session, referral, actor="system")
        self._on_commit()
        return new_status  # type: ignore[return-value]

    async def _usable_offer(self, session: AsyncSession, token: str):
        try:
            offer_id = links.read(token, key=self._key)
        except InvalidToken as exc:
            raise LinkRefused("expired" if str(exc) == "expired" else "invalid") from None
        row = (
            await session.execute(
                select(offers, referrals.c.reference, referrals.c.status.label("referral_status"))
                .join(referrals, referrals.c.id == offers.c.referral_id)
                .where(offers.c.id == offer_id)
            )
        ).first()
        if row is None:
            raise LinkRefused("invalid")
        if row.status != "offered" or row.referral_status not in OPEN_STATUSES:
            raise LinkRefused("used")
        if _aware(row.expires_at) <= self._clock():
            raise LinkRefused("expired")
        referral = (await session.execute(select(referrals).where(referrals.c.id == row.referral_id))).one()
        partner = (await session.execute(select(partners).where(partners.c.id == row.partner_id))).one()
        return row, referral, partner

    # ------------------------------------------------------------------ outcome reports

    async def _send_report_link(
        self, session: AsyncSession, *, offer_id: str, referral: object, partner: object
    ) -> None:
        """Email the accepting partner a fresh outcome-report link; any earlier one stops working."""
        nonce = secrets.token_urlsafe(18)
        await session.execute(update(offers).where(offers.c.id == offer_id).values(report_nonce=nonce))
        expires_at = self._clock() + timedelta(days=REPORT_LINK_DAYS)
        token = links.issue(key=self._key, offer_id=offer_id, expires_at=expires_at, purpose="report", nonce=nonce)
        await self._email(
            session,
            referral_id=referral.id,
            kind="report_outcome",
            to=partner.email,
            context=EmailContext(
                recipient_name=partner.name,
                partner_name=partner.name,
                reference=referral.reference,
                urgency=referral.urgency,
                action_url=f"{self._settings.public_url('referrals')}/report/{token}",
                expires_at=expires_at,
            ),
        )

    async def _usable_report(self, session: AsyncSession, token: str):
        try:
            offer_id, nonce = links.read_report(token, key=self._key)
        except InvalidToken as exc:
            raise LinkRefused("expired" if str(exc) == "expired" else "invalid") from None
        offer = (await session.execute(select(offers).where(offers.c.id == offer_id))).first()
        if offer is None:
            raise LinkRefused("invalid")
        referral = (await session.execute(select(referrals).where(referrals.c.id == offer.referral_id))).one()
        if (
            offer.status != "accepted"
            or offer.report_nonce != nonce
            or referral.status not in ("accepted", "in-progress")
        ):
            raise LinkRefused("used")
        partner = (await session.execute(select(partners).where(partners.c.id == offer.partner_id))).one()
        return offer, referral, partner, nonce

    async def open_report(self, *, token: str) -> ReportPage:
        """The referral behind an outcome-report link, for its form. Audits the view only."""
        async with self._sessions.begin() as session:
            offer, referral, partner, _ = await self._usable_report(session, token)
            await session.execute(
                insert(audit_log).values(
                    at=self._clock(),
                    actor=f"partner:{offer.partner_id}",
                    action="partner_viewed_referral",
                    referral_id=referral.id,
                    detail={"offer_id": offer.id, "purpose": "report"},
                )
            )
            booked = (
                await session.execute(
                    select(outcomes.c.booked_for)
                    .where(outcomes.c.referral_id == referral.id, outcomes.c.outcome == "booked")
                    .order_by(outcomes.c.id.desc())
                    .limit(1)
                )
            ).first()
        return ReportPage(
            partner_name=partner.name,
            reference=referral.reference,
            urgency=referral.urgency,
            reasons=[self._rules.reasons[c].label for c in referral.reasons if c in self._rules.reasons],
            status=referral.status,
            booked_for=booked.booked_for if booked else None,
        )

    async def report(self, *, token: str, report: OutcomeReport) -> str:
        """A partner's outcome report through their link: recorded, the referral moved (booked →
        in-progress, completed, no-show → on hold with the therapist), the therapist emailed, and
        after a booking a fresh link sent for the next report. Each link is good for one report."""
        async with self._sessions.begin() as session:
            offer, referral, partner, nonce = await self._usable_report(session, token)
            check_report(report)
            claimed = await session.execute(
                update(offers).where(offers.c.id == offer.id, offers.c.report_nonce == nonce).values(report_nonce=None)
            )
            if claimed.rowcount != 1:
                raise LinkRefused("used")
            await session.execute(
                insert(outcomes).values(
                    referral_id=referral.id,
                    offer_id=offer.id,
                    partner_id=partner.id,
                    outcome=report.outcome,
                    booked_for=report.booked_for,
                    clearance=report.clearance,
                    areas_to_avoid=report.areas_to_avoid.strip(),
                    pressure_limit=report.pressure_limit.strip(),
                    note=report.note.strip(),
                    reported_at=self._clock(),
                )
            )
            actor = f"partner:{partner.name}"
            why = f"{partner.name} reported: {OUTCOMES[report.outcome]}"
            if report.booked_for:
                why += f" for {report.booked_for.isoformat()}"
            if report.clearance:
                why += f"; {CLEARANCES[report.clearance]}"
            target = TARGET_STATUS[report.outcome]
            if target == referral.status:
                await self._event(
                    session, referral.id, actor=actor, from_status=referral.status, to_status=target, why=why
                )
            else:
                await self._transition(session, referral, target, actor=actor, why=why)
            await self._email_therapist(session, referral, kind="outcome_reported", partner_name=partner.name)
            if report.outcome == "booked":
                await self._send_report_link(session, offer_id=offer.id, referral=referral, partner=partner)
        self._on_commit()
        return target

    # ------------------------------------------------------------------ the client's handout

    async def handout(self, *, staff: Staff, referral_id: str, printed: bool = False) -> Handout:
        """The client's handout: the partner who accepted, or else the referral's partners still
        active, topped up with the best suggestions for its reasons. Every view is audited, and
        so is every print (``printed``)."""
        async with self._sessions.begin() as session:
            referral = await self._referral_for(session, staff, referral_id)
            rows = (
                await session.execute(
                    select(offers.c.partner_id, offers.c.status)
                    .where(offers.c.referral_id == referral.id)
                    .order_by(offers.c.position)
                )
            ).all()
            await session.execute(
                insert(audit_log).values(
                    at=self._clock(),
                    actor=staff.email,
                    action="handout_printed" if printed else "handout_viewed",
                    referral_id=referral.id,
                    detail={"reference": referral.reference},
                )
            )
            accepted = [r.partner_id for r in rows if r.status == "accepted"]
            wanted = accepted or list(dict.fromkeys(r.partner_id for r in rows))
            found = {p.id: p for p in await self._replica(session, ids=wanted)}
        listed = [found[pid] for pid in wanted if pid in found and found[pid].status == "active"]
        if not accepted and len(listed) < HANDOUT_PARTNERS:
            postal = referral.client.get("postal_code") or None
            try:
                ranked = await self._ranked(
                    SuggestionQuery(
                        reasons=list(referral.reasons),
                        postal_code=postal if postal and geo.centroid(postal) else None,
                        limit=HANDOUT_PARTNERS * 2,
                    )
                )
            except InvalidInput:
                ranked = []
            for _, partner in ranked:
                if len(listed) >= HANDOUT_PARTNERS:
                    break
                if partner.id not in {p.id for p in listed}:
                    listed.append(partner)
        reasons = [self._rules.reasons[c] for c in referral.reasons if c in self._rules.reasons]
        return Handout(
            referral_id=referral.id,
            reference=referral.reference,
            client_name=str(referral.client.get("name", "")),
            urgency=referral.urgency,
            why=[r.lay_wording or r.label for r in reasons],
            partners=listed,
            accepted=bool(accepted),
        )

    # ------------------------------------------------------------------ staff actions

    async def cancel(self, *, staff: Staff, referral_id: str, reason: str = "") -> ReferralRecord:
        async with self._sessions.begin() as session:
            referral = await self._referral_for(session, staff, referral_id)
            await self._transition(
                session, referral, "cancelled", actor=staff.email, why=reason or "cancelled by the therapist"
            )
            await self._withdraw_open_offers(session, referral, kind="referral_cancelled")
        self._on_commit()
        return await self.get(staff=staff, referral_id=referral_id)

    async def hold(self, *, staff: Staff, referral_id: str, reason: str = "") -> ReferralRecord:
        """Pause a referral. An offer still waiting for its partner's answer is withdrawn (the
        partner is told) and goes back to the head of the queue; an accepted one stays."""
        async with self._sessions.begin() as session:
            referral = await self._referral_for(session, staff, referral_id)
            await self._transition(
                session, referral, "on-hold", actor=staff.email, why=reason or "put on hold by the therapist"
            )
            waiting = (
                await session.execute(
                    select(offers.c.id, partners.c.name, partners.c.email)
                    .join(partners, partners.c.id == offers.c.partner_id)
                    .where(offers.c.referral_id == referral.id, offers.c.status == "offered")
                )
            ).all()
            for row in waiting:
                await session.execute(
                    update(offers)
                    .where(offers.c.id == row.id, offers.c.status == "offered")
                    .values(status="queued", offered_at=None, expires_at=None, reminded_at=None)
                )
                await self._email(
                    session,
                    referral_id=referral.id,
                    kind="offer_withdrawn",
                    to=row.email,
                    context=EmailContext(
                        recipient_name=row.name,
                        partner_name=row.name,
                        reference=referral.reference,
                        urgency=referral.urgency,
                    ),
                )
        self._on_commit()
        return await self.get(staff=staff, referral_id=referral_id)

    async def resume(self, *, staff: Staff, referral_id: str) -> ReferralRecord:
        """Take a referral off hold: back with its accepting partner (who gets a fresh report link
        if theirs was used), or offered again, with a full deadline, to the next partner."""
        async with self._sessions.begin() as session:
            referral = await self._referral_for(session, staff, referral_id)
            if referral.status != "on-hold":
                raise Conflict(f"a referral that is {referral.status} is not on hold", field="status")
            accepted = (
                await session.execute(
                    select(offers.c.id, offers.c.report_nonce, partners.c.name, partners.c.email)
                    .join(partners, partners.c.id == offers.c.partner_id)
                    .where(offers.c.referral_id == referral.id, offers.c.status == "accepted")
                )
            ).first()
            if accepted is not None:
                booked = (
                    await session.execute(
                        select(outcomes.c.id).where(
                            outcomes.c.referral_id == referral.id, outcomes.c.outcome == "booked"
                        )
                    )
                ).first()
                await self._transition(
                    session,
                    referral,
                    "in-progress" if booked else "accepted",
                    actor=staff.email,
                    why="resumed by the therapist",
                )
                if accepted.report_nonce is None:
                    await self._send_report_link(session, offer_id=accepted.id, referral=referral, partner=accepted)
            elif await self._next_queued(session, referral.id) is not None:
                await self._transition(
                    session, referral, "requested", actor=staff.email, why="resumed by the therapist"
                )
                await self._offer_next(
                    session, referral_id=referral.id, reference=referral.reference, urgency=referral.urgency
                )
            else:
                await self._transition(
                    session, referral, "failed", actor=staff.email, why="resumed with no partner left to offer it to"
                )
        self._on_commit()
        return await self.get(staff=staff, referral_id=referral_id)

    async def forward_candidates(self, *, reasons: list[str]) -> list[PartnerSnapshot]:
        """Active partners in scope for ``reasons``, by name: who a referral may be forwarded to."""
        assessment = self._rules.assess(reasons)
        async with self._sessions() as session:
            found = await self._replica(session, categories_=assessment.categories)
        return sorted(found, key=lambda p: p.name.casefold())

    async def forward(self, *, staff: Staff, referral_id: str, partner_id: str) -> ReferralRecord:
        """Offer a declined, failed or held referral to a partner of the therapist's choice, in
        scope and covered by the consent like any other; whatever it still had open is withdrawn."""
        async with self._sessions.begin() as session:
            referral = await self._referral_for(session, staff, referral_id)
            if referral.status not in ("rejected", "failed", "on-hold"):
                raise Conflict(
                    f"a referral that is {referral.status} cannot be forwarded; put it on hold first", field="status"
                )
            assessment = self._rules.assess(list(referral.reasons))
            found = await self._replica(session, ids=[partner_id])
            partner = found[0] if found else None
            if partner is None:
                raise InvalidInput(f"unknown partner {partner_id!r}", field="partner_id")
            if partner.status != "active":
                raise InvalidInput(
                    f"{partner.name} is {partner.status} and cannot receive referrals", field="partner_id"
                )
            if partner.category not in assessment.categories:
                raise ScopeViolation(
                    f"{partner.name} ({partner.category}) is outside the scope allowed for this referral's reasons",
                    field="partner_id",
                    extra={"allowed": assessment.categories},
                )
            check_consent(
                given=bool(referral.consent.get("given")),
                scope=list(referral.consent.get("scope", [])),
                kinds_needed={categories.load()[partner.category].kind},
            )
            await self._withdraw_open_offers(session, referral, kind="offer_withdrawn")
            # The partner who had accepted it (before a no-show, say) no longer has it either.
            await session.execute(
                update(offers)
                .where(offers.c.referral_id == referral.id, offers.c.status == "accepted")
                .values(status="withdrawn", report_nonce=None)
            )
            last = (
                await session.execute(
                    select(offers.c.position)
                    .where(offers.c.referral_id == referral.id)
                    .order_by(offers.c.position.desc())
                    .limit(1)
                )
            ).first()
            await session.execute(
                insert(offers).values(
                    id=str(uuid.uuid4()),
                    referral_id=referral.id,
                    partner_id=partner.id,
                    position=(last.position + 1) if last else 0,
                    status="queued",
                )
            )
            await self._transition(
                session, referral, "requested", actor=staff.email, why=f"forwarded by the therapist to {partner.name}"
            )
            await self._offer_next(
                session, referral_id=referral.id, reference=referral.reference, urgency=referral.urgency
            )
        self._on_commit()
        return await self.get(staff=staff, referral_id=referral_id)

    async def _withdraw_open_offers(self, session: AsyncSession, referral: object, *, kind: str) -> None:
        open_offers = (
            await session.execute(
                select(offers.c.id, partners.c.name, partners.c.email)
                .join(partners, partners.c.id == offers.c.partner_id)
                .where(offers.c.referral_id == referral.id, offers.c.status.in_(("offered", "accepted")))
            )
        ).all()
        await session.execute(
            update(offers)
            .where(offers.c.referral_id == referral.id, offers.c.status.in_(("offered", "queued")))
            .values(status="withdrawn", responded_at=self._clock())
        )
        for row in open_offers:
            await self._email(
                session,
                referral_id=referral.id,
                kind=kind,
                to=row.email,
                context=EmailContext(
                    recipient_name=row.name,
                    partner_name=row.name,
                    reference=referral.reference,
                    urgency=referral.urgency,
                ),
            )

    # ------------------------------------------------------------------ reading

    async def get(self, *, staff: Staff, referral_id: str) -> ReferralRecord:
        async with self._sessions() as session:
            return await self._read(session, await self._referral_for(session, staff, referral_id))

    async def _read(self, session: AsyncSession, referral: object) -> ReferralRecord:
        """A referral row with its offers, timeline and anything needing attention."""
        referral_id = referral.id
        offer_rows = (
            await session.execute(
                select(offers, partners.c.name.label("partner_name"))
                .join(partners, partners.c.id == offers.c.partner_id, isouter=True)
                .where(offers.c.referral_id == referral_id)
                .order_by(offers.c.position)
            )
        ).all()
        events = (
            await session.execute(
                select(referral_events)
                .where(referral_events.c.referral_id == referral_id)
                .order_by(referral_events.c.id)
            )
        ).all()
        failures = await self._failed_emails(session, [referral_id])
        reports = (await self._outcomes(session, [referral_id])).get(referral_id, [])
        return _record(
            referral,
            offer_rows,
            events,
            failures.get(referral_id, []),
            reports,
            clearance=await self._clearance(session, referral),
        )

    async def _outcomes(self, session: AsyncSession, referral_ids: list[str]) -> dict[str, list[OutcomeRecord]]:
        if not referral_ids:
            return {}
        rows = (
            await session.execute(
                select(outcomes).where(outcomes.c.referral_id.in_(referral_ids)).order_by(outcomes.c.id)
            )
        ).all()
        found: dict[str, list[OutcomeRecord]] = {}
        for row in rows:
            found.setdefault(row.referral_id, []).append(
                OutcomeRecord(
                    outcome=row.outcome,
                    reported_at=_aware(row.reported_at),
                    partner_id=row.partner_id,
                    booked_for=row.booked_for,
                    clearance=row.clearance,
                    areas_to_avoid=row.areas_to_avoid,
                    pressure_limit=row.pressure_limit,
                    note=row.note,
                )
            )
        return found

    async def _clearance(self, session: AsyncSession, referral: object) -> ClearanceRecord | None:
        """The newest clearance given for this referral's client, on this or an earlier referral."""
        rows = (
            await session.execute(
                select(outcomes, referrals.c.reference, referrals.c.client)
                .join(referrals, referrals.c.id == outcomes.c.referral_id)
                .where(outcomes.c.clearance.is_not(None), referrals.c.created_at <= referral.created_at)
                .order_by(outcomes.c.reported_at.desc(), outcomes.c.id.desc())
                .limit(500)
            )
        ).all()
        for row in rows:
            if row.referral_id == referral.id or _same_client(row.client, referral.client):
                return ClearanceRecord(
                    clearance=row.clearance,
                    label=CLEARANCES.get(row.clearance, row.clearance),
                    reference=row.reference,
                    reported_at=_aware(row.reported_at),
                    areas_to_avoid=row.areas_to_avoid,
                    pressure_limit=row.pressure_limit,
                    note=row.note,
                    from_earlier_referral=row.referral_id != referral.id,
                )
        return None

    async def list(
        self,
        *,
        staff: Staff,
        status: str | None = None,
        partner_id: str | None = None,
        since: datetime | None = None,
        needs_attention: bool | None = None,
        limit: int = 100,
        search: str = "",
    ) -> list[ReferralRecord]:
        """Referrals the staff member may see, newest first. ``needs_attention=True``: only those
        a therapist must act on (see :func:`_needs_attention`); ``False``: only the others.
        ``search``: a reference (or its start) or part of the client's name."""
        query = select(referrals).order_by(referrals.c.created_at.desc())
        search = " ".join(search.split()).casefold()
        if not search:
            query = query.limit(limit)
        if needs_attention is not None:
            attention = _needs_attention()
            query = query.where(attention if needs_attention else ~attention)
        if staff.role != "admin":
            query = query.where(referrals.c.created_by == staff.id)
        if status:
            query = query.where(referrals.c.status == status)
        if since:
            query = query.where(referrals.c.created_at >= since)
        if partner_id:
            query = query.where(
                referrals.c.id.in_(select(offers.c.referral_id).where(offers.c.partner_id == partner_id))
            )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
            if search:
                # The client's name lives in a JSON column: matched here, on the staff member's own rows.
                rows = [
                    r
                    for r in rows
                    if r.reference.casefold().startswith(search)
                    or search in " ".join(str(r.client.get("name", "")).split()).casefold()
                ][:limit]
            ids = [r.id for r in rows]
            offer_rows = (
                (
                    await session.execute(
                        select(offers, partners.c.name.label("partner_name"))
                        .join(partners, partners.c.id == offers.c.partner_id, isouter=True)
                        .where(offers.c.referral_id.in_(ids))
                        .order_by(offers.c.position)
                    )
                ).all()
                if ids
                else []
            )
            failures = await self._failed_emails(session, ids)
            reports = await self._outcomes(session, ids)
        by_referral: dict[str, list] = {}
        for offer in offer_rows:
            by_referral.setdefault(offer.referral_id, []).append(offer)
        return [_record(r, by_referral.get(r.id, []), [], failures.get(r.id, []), reports.get(r.id, [])) for r in rows]

    async def dashboard(self, *, staff: Staff, since: datetime, until: datetime) -> Dashboard:
        """The dashboard's figures for referrals created in [since, until) that ``staff`` may see:
        the funnel, each partner's median time to accept, referrals by category per month."""
        mine = select(referrals.c.id).where(referrals.c.created_at >= since, referrals.c.created_at < until)
        if staff.role != "admin":
            mine = mine.where(referrals.c.created_by == staff.id)
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(referrals.c.id, referrals.c.status, referrals.c.created_at).where(referrals.c.id.in_(mine))
                )
            ).all()
            offer_rows = (
                await session.execute(
                    select(
                        offers.c.referral_id,
                        offers.c.position,
                        offers.c.status,
                        offers.c.offered_at,
                        offers.c.responded_at,
                        partners.c.name,
                        partners.c.category,
                    )
                    .join(partners, partners.c.id == offers.c.partner_id, isouter=True)
                    .where(offers.c.referral_id.in_(mine))
                    .order_by(offers.c.position)
                )
            ).all()
            reported = (
                await session.execute(
                    select(outcomes.c.referral_id, outcomes.c.outcome).where(outcomes.c.referral_id.in_(mine))
                )
            ).all()
        accepted = {o.referral_id for o in offer_rows if o.status == "accepted"}
        booked = {o.referral_id for o in reported if o.outcome in ("booked", "completed")}
        completed = {r.id for r in rows if r.status == "completed"}
        funnel = [
            ("sent", sum(1 for r in rows if r.status != "draft")),
            ("accepted", len(accepted | {r.id for r in rows if r.status in ("accepted", "in-progress")} | completed)),
            ("booked", len(booked | {r.id for r in rows if r.status == "in-progress"} | completed)),
            ("completed", len(completed)),
        ]
        gaps: dict[str, list] = {}
        for o in offer_rows:
            if o.status == "accepted" and o.offered_at and o.responded_at:
                gaps.setdefault(o.name or "unknown partner", []).append((_aware(o.offered_at), _aware(o.responded_at)))
        time_to_accept = sorted(
            ((name, charts.median_hours(pairs), len(pairs)) for name, pairs in gaps.items()), key=lambda t: t[1]
        )
        vocabulary = categories.load()
        first_category: dict[str, str] = {}
        for o in offer_rows:
            if o.category and o.referral_id not in first_category:
                entry = vocabulary.get(o.category)
                first_category[o.referral_id] = entry.label if entry else o.category
        months: dict[str, dict[str, int]] = {}
        for r in sorted(rows, key=lambda r: _aware(r.created_at)):
            month = _aware(r.created_at).strftime("%Y-%m")
            label = first_category.get(r.id, "no partner")
            months.setdefault(month, {})
            months[month][label] = months[month].get(label, 0) + 1
        return Dashboard(
            since=since, until=until, funnel=funnel, time_to_accept=time_to_accept, by_category=sorted(months.items())
        )

    async def _failed_emails(self, session: AsyncSession, referral_ids: list[str]) -> dict[str, list[str]]:
        """For each referral, a line per email that could not be delivered (for good)."""
        if not referral_ids:
            return {}
        rows = (
            await session.execute(
                select(email_deliveries.c.referral_id, email_deliveries.c.detail, outbox.c.payload)
                .join(outbox, outbox.c.id == email_deliveries.c.notification_id, isouter=True)
                .where(email_deliveries.c.referral_id.in_(referral_ids), email_deliveries.c.outcome == "failed")
                .order_by(email_deliveries.c.at)
            )
        ).all()
        found: dict[str, list[str]] = {}
        for row in rows:
            sent = codec.decode(row.payload) if row.payload else None
            what = f"the '{sent.kind}' email to {sent.to}" if isinstance(sent, SendEmail) else "an email"
            found.setdefault(row.referral_id, []).append(
                f"{what} could not be delivered{': ' + row.detail if row.detail else ''}"
            )
        return found

    async def _referral_for(self, session: AsyncSession, staff: Staff, referral_id: str):
        row = (await session.execute(select(referrals).where(referrals.c.id == referral_id))).first()
        # A therapist sees only their own referrals; say "not found" rather than "forbidden".
        if row is None or (staff.role != "admin" and row.created_by != staff.id):
            raise NotFound(f"no referral {referral_id}", field="id")
        return row

    async def _replica(
        self, session: AsyncSession, *, ids: list[str] | None = None, categories_: list[str] | None = None
    ) -> list[PartnerSnapshot]:
        query = select(partners.c.snapshot)
        if ids is not None:
            query = query.where(partners.c.id.in_(ids))
        if categories_ is not None:
            query = query.where(partners.c.category.in_(categories_), partners.c.status == "active")
        rows = (await session.execute(query)).all()
        return [msgspec.convert(r.snapshot, PartnerSnapshot) for r in rows]

    # ------------------------------------------------------------------ messages from others

    async def apply_partner_changed(self, message: PartnerChanged) -> bool:
        """Keep the newest snapshot of a partner; older or repeated versions change nothing.
        A partner that stops being active loses its open offers to the next partner."""
        snapshot = message.partner
        values = {
            "version": message.version,
            "name": snapshot.name,
            "category": snapshot.category,
            "status": snapshot.status,
            "email": snapshot.email,
            "snapshot": msgspec.to_builtins(snapshot),
            "updated_at": message.changed_at,
        }
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(partners)
                .where(partners.c.id == snapshot.id, partners.c.version < message.version)
                .values(**values)
            )
            if result.rowcount == 0:
                exists = (await session.execute(select(partners.c.id).where(partners.c.id == snapshot.id))).first()
                if exists:
                    return False
                await session.execute(insert(partners).values(id=snapshot.id, **values))
            if snapshot.status != "active":
                await self._reoffer_away_from(session, snapshot)
        self._on_commit()
        return True

    async def _reoffer_away_from(self, session: AsyncSession, partner: PartnerSnapshot) -> None:
        rows = (
            await session.execute(
                select(referrals)
                .join(offers, offers.c.referral_id == referrals.c.id)
                .where(offers.c.partner_id == partner.id, offers.c.status == "offered")
            )
        ).all()
        for referral in rows:
            await session.execute(
                update(offers)
                .where(
                    and_(
                        offers.c.referral_id == referral.id,
                        offers.c.partner_id == partner.id,
                        offers.c.status == "offered",
                    )
                )
                .values(status="withdrawn", responded_at=self._clock())
            )
            await self._event(
                session,
                referral.id,
                actor="system",
                from_status=referral.status,
                to_status=referral.status,
                why=f"offer to {partner.name} withdrawn: partner is now {partner.status}",
            )
            await self._advance(session, referral, actor="system")

    async def record_delivery(self, message: EmailDelivery) -> bool:
        """Note an email's delivery outcome on its referral's timeline, once."""
        async with self._sessions.begin() as session:
            try:
                async with session.begin_nested():
                    await session.execute(
                        insert(email_deliveries).values(
                            notification_id=message.notification_id,
                            outcome=message.outcome,
                            referral_id=message.referral_id,
                            at=message.at,
                            detail=message.detail[:2000],
                        )
                    )
            except IntegrityError:
                return False
            if message.referral_id:
                referral = (
                    await session.execute(select(referrals).where(referrals.c.id == message.referral_id))
                ).first()
                if referral is not None:
                    what = await self._describe_email(session, message.notification_id)
                    detail = f": {message.detail}" if message.detail and message.outcome != "sent" else ""
                    await self._event(
                        session,
                        referral.id,
                        actor="notifier",
                        from_status=referral.status,
                        to_status=referral.status,
                        why=f"{what} {message.outcome}{detail}",
                    )
        return True

    async def _describe_email(self, session: AsyncSession, notification_id: str) -> str:
        row = (await session.execute(select(outbox.c.payload).where(outbox.c.id == notification_id))).first()
        if row is None:
            return "email"
        sent = codec.decode(row.payload)
        return f"email '{sent.kind}' to {sent.to}" if isinstance(sent, SendEmail) else "email"

    # ------------------------------------------------------------------ helpers

    async def _transition(self, session: AsyncSession, referral: object, target: str, *, actor: str, why: str) -> None:
        check_transition(referral.status, target)
        result = await session.execute(
            update(referrals)
            .where(referrals.c.id == referral.id, referrals.c.status == referral.status)
            .values(status=target, updated_at=self._clock())
        )
        if result.rowcount != 1:
            raise Conflict("the referral changed meanwhile; reload and try again", field="status")
        await self._event(session, referral.id, actor=actor, from_status=referral.status, to_status=target, why=why)

    async def _event(
        self, session: AsyncSession, referral_id: str, *, actor: str, from_status: str | None, to_status: str, why: str
    ) -> None:
        await session.execute(
            insert(referral_events).values(
                referral_id=referral_id,
                at=self._clock(),
                actor=actor,
                from_status=from_status,
                to_status=to_status,
                why=why,
            )
        )

    async def _email(
        self, session: AsyncSession, *, referral_id: str, kind: str, to: str, context: EmailContext
    ) -> None:
        notification_id = str(uuid.uuid4())
        message = SendEmail(notification_id=notification_id, kind=kind, to=to, context=context, referral_id=referral_id)
        await outbox_module.add(session, outbox, message, message_id=notification_id)

    async def _email_therapist(
        self, session: AsyncSession, referral: object, *, kind: str, partner_name: str = ""
    ) -> None:
        therapist = (
            await session.execute(select(staff_users.c.email).where(staff_users.c.id == referral.created_by))
        ).first()
        if therapist is None:
            return
        await self._email(
            session,
            referral_id=referral.id,
            kind=kind,
            to=therapist.email,
            # No link yet: the staff pages that would show the referral come with the staff app.
            context=EmailContext(partner_name=partner_name, reference=referral.reference, urgency=referral.urgency),
        )


def _new_reference() -> str:
    # Opaque, short enough to read over the phone; no client information in it.
    alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
    return "HX-" + "".join(secrets.choice(alphabet) for _ in range(8))


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything we store is UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _needs_attention():
    """Referrals a therapist must act on: an open one whose email failed for good (the partner or
    therapist never heard of it), one that failed (no partner accepted in time) or was declined,
    one still looking for a partner after a decline or an expiry, one whose offer is unanswered
    past half its deadline (the sweep has reminded the partner), or a no-show put on hold."""
    looking = referrals.c.status.in_(("requested", "received"))
    passed_over = referrals.c.id.in_(select(offers.c.referral_id).where(offers.c.status.in_(("declined", "expired"))))
    overdue = referrals.c.id.in_(
        select(offers.c.referral_id).where(offers.c.status == "offered", offers.c.reminded_at.is_not(None))
    )
    failed_email = referrals.c.id.in_(
        select(email_deliveries.c.referral_id).where(email_deliveries.c.outcome == "failed")
    )
    no_show = referrals.c.id.in_(select(outcomes.c.referral_id).where(outcomes.c.outcome == "no_show"))
    return (
        (referrals.c.status.in_(("failed", "rejected")))
        | (failed_email & referrals.c.status.not_in(sorted(CLOSED_STATUSES)))
        | ((referrals.c.status == "on-hold") & no_show)
        | (looking & (passed_over | overdue))
    )


def _attention(
    referral: object, failures: list[str], reports: list[OutcomeRecord] = (), offer_rows: list = ()
) -> list[str]:
    if referral.status in CLOSED_STATUSES:
        return []
    lines = list(failures)
    if referral.status == "failed":
        lines.append("no partner accepted this referral: contact the client")
    if referral.status == "rejected":
        lines.append("the referral was declined: forward it to another partner or cancel it")
    if referral.status in ("requested", "received"):
        passed = [o for o in offer_rows if o.status in ("declined", "expired")]
        if passed:
            lines.append(f"{len(passed)} partner(s) declined or did not answer in time; now with the next one")
        for o in offer_rows:
            if o.status == "offered" and getattr(o, "reminded_at", None):
                lines.append(f"{o.partner_name or 'the partner'} has not answered and is past half the deadline")
    if referral.status == "on-hold" and reports and reports[-1].outcome == "no_show":
        lines.append(
            "the client did not attend the partner's appointment: contact the client, then resume, "
            "forward or cancel the referral"
        )
    return lines


def _same_client(one: dict, other: dict) -> bool:
    """Two referrals' clients are the same person: same name, and same email or phone when both
    referrals recorded one."""

    def norm(value: object) -> str:
        return " ".join(str(value or "").split()).casefold()

    if not norm(one.get("name")) or norm(one.get("name")) != norm(other.get("name")):
        return False
    for key in ("email", "phone"):
        if norm(one.get(key)) and norm(other.get(key)) and norm(one.get(key)) != norm(other.get(key)):
            return False
    return True


def _record(
    referral: object,
    offer_rows: list,
    events: list,
    failures: list[str] = (),
    reports: list[OutcomeRecord] = (),
    *,
    clearance: ClearanceRecord | None = None,
) -> ReferralRecord:
    attention = _attention(referral, list(failures), list(reports), offer_rows)
    return ReferralRecord(
        id=referral.id,
        reference=referral.reference,
        status=referral.status,
        urgency=referral.urgency,
        reasons=list(referral.reasons),
        note=referral.note,
        client=dict(referral.client),
        consent=dict(referral.consent),
        created_by=referral.created_by,
        created_at=_aware(referral.created_at),
        updated_at=_aware(referral.updated_at),
        offers=[
            OfferRecord(
                id=o.id,
                partner_id=o.partner_id,
                partner_name=o.partner_name or "",
                position=o.position,
                status=o.status,
                offered_at=o.offered_at and _aware(o.offered_at),
                expires_at=o.expires_at and _aware(o.expires_at),
                responded_at=o.responded_at and _aware(o.responded_at),
                decline_reason=o.decline_reason,
                decline_note=o.decline_note,
                reminded_at=o.reminded_at and _aware(o.reminded_at),
            )
            for o in offer_rows
        ],
        timeline=[
            TimelineEntry(at=_aware(e.at), actor=e.actor, from_status=e.from_status, to_status=e.to_status, why=e.why)
            for e in events
        ],
        warnings=[
            f"the note reads like a diagnosis ('{p}'): record what you observed"
            for p in diagnostic_wording(referral.note)
        ],
        attention=attention,
        needs_attention=bool(attention),
        outcomes=list(reports),
        clearance=clearance,
    )


__all__ = [
    "EmergencyStop",
    "Handout",
    "LinkRefused",
    "OfferPage",
    "Referrals",
    "ReportPage",
    "ScopeViolation",
    "SweepReport",
    "system_clock",
]
