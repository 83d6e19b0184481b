"""Reading referrals: one with its offers, timeline, outcomes and the client's newest clearance;
lists and searches; the dashboard's figures (the client's handout: services.referrals.handouts).
A therapist sees only their
own referrals, an admin every one. What needs a therapist's attention is said in words on each
referral (see :func:`_attention`)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import clients, scoping
from services.referrals.context import Context
from services.referrals.domain import CLOSED_STATUSES, URGENCY_ORDER, diagnostic_wording
from services.referrals.records import (
    DELIVERY_ACTOR,
    ClearanceRecord,
    ClientRecord,
    Dashboard,
    LinkedReferral,
    OfferRecord,
    OutcomeRecord,
    ReferralRecord,
    TimelineEntry,
)
from services.referrals.storage import (
    email_store,
    figures_store,
    offer_store,
    outcome_store,
    referral_store,
)
from services.referrals.storage.client_store import StoredClient
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared import categories
from shared.auth import Staff
from shared.errors import NotFound


async def get(ctx: Context, *, staff: Staff, referral_id: str) -> ReferralRecord:
    async with ctx.sessions() as session:
        return await record(session, await referral_for(session, staff=staff, referral_id=referral_id))


async def referral_for(session: AsyncSession, *, staff: Staff, referral_id: str) -> StoredReferral:
    """The referral, if ``staff`` may see it."""
    referral = await referral_store.get(session, referral_id)
    # A therapist sees only their own referrals; say "not found" rather than "forbidden".
    if referral is None or (staff.role != "admin" and referral.created_by != staff.id):
        raise NotFound(f"no referral {referral_id}", field="id")
    return referral


async def record(session: AsyncSession, referral: StoredReferral) -> ReferralRecord:
    """The referral with its offers, timeline and anything needing attention."""
    return _record(
        referral,
        await offer_store.of_referrals(session, [referral.id]),
        _with_emails(
            await referral_store.timeline(session, referral.id), await email_store.of_referral(session, referral.id)
        ),
        (await _failed_emails(session, [referral.id])).get(referral.id, []),
        (await outcome_store.of_referrals(session, [referral.id])).get(referral.id, []),
        clearance=await _clearance(session, referral),
        sent_with=[
            LinkedReferral(id=r.id, reference=r.reference, urgency=r.urgency, status=r.status, reasons=list(r.reasons))
            for r in await referral_store.sent_with(session, referral)
        ],
    )


async def issued(
    session: AsyncSession,
    referral: StoredReferral,
    *,
    client: StoredClient,
    new_client: bool,
    together: list[StoredReferral],
) -> ReferralRecord:
    """A referral just issued in the caller's transaction, as :func:`record` would read it, but
    reading only what issuing wrote and cannot know already (its offers with their partners, its
    timeline with the emails it staged): no email has been sent, delivered or failed before the commit, no partner has
    reported an outcome, and a client record made in this transaction has no clearance yet. This
    is what the therapist waits for on every create."""
    referral = referral_store.with_client(referral, client)
    return _record(
        referral,
        await offer_store.of_referrals(session, [referral.id]),
        _with_emails(
            await referral_store.timeline(session, referral.id), await email_store.of_referral(session, referral.id)
        ),
        [],
        [],
        clearance=None if new_client else await _clearance(session, referral),
        sent_with=[
            LinkedReferral(id=r.id, reference=r.reference, urgency=r.urgency, status=r.status, reasons=list(r.reasons))
            for r in sorted((r for r in together if r.id != referral.id), key=lambda r: URGENCY_ORDER.index(r.urgency))
        ],
    )


def _with_emails(timeline: list[TimelineEntry], sent: list[email_store.SentEmail]) -> list[TimelineEntry]:
    """``timeline`` with each email under the step that sent it. An email staged before emails
    named their step goes under the last step at or before its staging."""
    steps = [e for e in timeline if e.actor != DELIVERY_ACTOR]
    by_id = {e.id: e for e in steps}
    for email in sent:
        step = by_id.get(email.event_id) or next(
            (e for e in reversed(steps) if e.at <= email.note.staged_at), steps[0] if steps else None
        )
        if step is not None:
            step.emails.append(email.note)
    return timeline


async def _clearance(session: AsyncSession, referral: StoredReferral) -> ClearanceRecord | None:
    """The newest clearance given for this referral's client record, on any of its referrals."""
    given = await outcome_store.latest_clearance(session, referral.client_id)
    return None if given is None else clients.clearance(given, referral_id=referral.id)


async def list_referrals(
    ctx: Context,
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
    a therapist must act on; ``False``: only the others. ``search``: a reference (or its start)
    or part of the client's name."""
    search = " ".join(search.split()).casefold()
    async with ctx.sessions() as session:
        found = await referral_store.listing(
            session,
            created_by=None if staff.role == "admin" else staff.id,
            status=status,
            since=since,
            partner_id=partner_id,
            needs_attention=needs_attention,
            limit=None if search else limit,
        )
        if search:
            # A staff search among the staff member's own rows (never a match of one client to another).
            found = [
                r
                for r in found
                if r.reference.casefold().startswith(search)
                or search in " ".join(str(r.client.get("name", "")).split()).casefold()
            ][:limit]
        ids = [r.id for r in found]
        offers = await offer_store.of_referrals(session, ids)
        failures = await _failed_emails(session, ids)
        reports = await outcome_store.of_referrals(session, ids)
    by_referral: dict[str, list[StoredOffer]] = {}
    for offer in offers:
        by_referral.setdefault(offer.referral_id, []).append(offer)
    return [_record(r, by_referral.get(r.id, []), [], failures.get(r.id, []), reports.get(r.id, [])) for r in found]


async def dashboard(ctx: Context, *, staff: Staff, days: int) -> Dashboard:
    """The dashboard's figures for the referrals that ``staff`` may see created on the last
    ``days`` clinic days (today and the days before, in the clinic's time zone): the funnel, each
    partner's median time to accept, referrals by category per clinic month; for an admin, the
    emergency stops since the first of those days began."""
    last_day = ctx.today()
    first_day = last_day - timedelta(days=days - 1)
    since = datetime.combine(first_day, time(), tzinfo=ZoneInfo(ctx.settings.clinic_timezone))
    until = ctx.clock()
    async with ctx.sessions() as session:
        figures = await figures_store.figures(
            session,
            first_day=first_day,
            last_day=last_day,
            created_by=None if staff.role == "admin" else staff.id,
            unnamed="unknown partner",
        )
        emergency_stops = (
            await referral_store.audit_count(session, action=scoping.EMERGENCY_STOP, since=since, until=until)
            if staff.role == "admin"
            else None
        )
    vocabulary = categories.load()
    months: dict[str, dict[str, int]] = {}
    for month, category, count in figures.by_month:
        entry = vocabulary.get(category) if category else None
        label = entry.label if entry else category or "no partner"
        counts = months.setdefault(month, {})
        counts[label] = counts.get(label, 0) + count
    return Dashboard(
        first_day=first_day,
        last_day=last_day,
        since=since,
        until=until,
        funnel=figures.funnel,
        time_to_accept=sorted(figures.accept_times, key=lambda t: (t[1], t[0])),
        by_category=sorted(months.items()),
        emergency_stops=emergency_stops,
    )


# ------------------------------------------------------------------ the read model


async def _failed_emails(session: AsyncSession, referral_ids: list[str]) -> dict[str, list[str]]:
    """For each referral, a line per email that could not be delivered (for good)."""
    found: dict[str, list[str]] = {}
    for failed in await email_store.failed(session, referral_ids):
        sent = failed.email
        what = f"the '{sent.kind}' email to {sent.to}" if sent else "an email"
        found.setdefault(failed.referral_id, []).append(
            f"{what} could not be delivered{': ' + failed.detail if failed.detail else ''}"
        )
    return found


def _attention(
    referral: StoredReferral, failures: list[str], reports: list[OutcomeRecord], offers: list[StoredOffer]
) -> list[str]:
    """Why a therapist must act on the referral, in words; empty when nothing is needed."""
    if referral.status in CLOSED_STATUSES:
        return []
    lines = list(failures)
    if referral.status == "failed":
        lines.append("no partner accepted this referral: contact the client")
    if referral.status == "rejected":
        lines.append("the referral was declined: forward it to another partner or cancel it")
    if referral.status in ("requested", "received"):
        passed = [o for o in offers if o.status in ("declined", "expired")]
        if passed:
            lines.append(f"{len(passed)} partner(s) declined or did not answer in time; now with the next one")
        for o in offers:
            if o.status == "offered" and o.reminded_at:
                lines.append(f"{o.partner_name or 'the partner'} has not answered and is past half the deadline")
    if referral.status == "on-hold" and reports and reports[-1].outcome == "no_show":
        lines.append(
            "the client did not attend the partner's appointment: contact the client, then resume, "
            "forward or cancel the referral"
        )
    return lines


def _record(
    referral: StoredReferral,
    offers: list[StoredOffer],
    timeline: list[TimelineEntry],
    failures: list[str],
    reports: list[OutcomeRecord],
    *,
    clearance: ClearanceRecord | None = None,
    sent_with: list[LinkedReferral] | None = None,
) -> ReferralRecord:
    attention = _attention(referral, failures, reports, offers)
    return ReferralRecord(
        id=referral.id,
        reference=referral.reference,
        status=referral.status,
        urgency=referral.urgency,
        reasons=list(referral.reasons),
        note=referral.note,
        client=ClientRecord(**referral.client),
        next_step=referral.next_step,
        consent=dict(referral.consent),
        created_by=referral.created_by,
        created_at=referral.created_at,
        updated_at=referral.updated_at,
        offers=[
            OfferRecord(
                id=o.id,
                partner_id=o.partner_id,
                partner_name=o.partner_name,
                position=o.position,
                status=o.status,
                offered_at=o.offered_at,
                expires_at=o.expires_at,
                responded_at=o.responded_at,
                decline_reason=o.decline_reason,
                decline_note=o.decline_note,
                reminded_at=o.reminded_at,
                partner_phone=o.partner_phone,
            )
            for o in offers
        ],
        timeline=timeline,
        warnings=[
            f"the note reads like a diagnosis ('{p}'): record what you observed"
            for p in diagnostic_wording(referral.note)
        ],
        attention=attention,
        needs_attention=bool(attention),
        outcomes=list(reports),
        clearance=clearance,
        sent_with=sent_with or [],
    )


async def changed(
    ctx: Context,
    *,
    staff: Staff,
    bounds: list[tuple[str, datetime]],
    client_id: str | None = None,
    referral_id: str | None = None,
    after: tuple[datetime, str] | None = None,
    limit: int = 20,
) -> tuple[list[ReferralRecord], int]:
    """Referrals the staff member may see, last changed within ``bounds``, oldest change first
    (for the FHIR API's ``_lastUpdated`` searches), narrowed to one client or one referral; with
    how many match in all."""
    async with ctx.sessions() as session:
        found, total = await referral_store.changed(
            session,
            created_by=None if staff.role == "admin" else staff.id,
            bounds=bounds,
            client_id=client_id,
            referral_id=referral_id,
            after=after,
            limit=limit,
        )
        return [await record(session, referral) for referral in found], total
