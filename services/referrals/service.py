"""The referrals service's one entry point for the web app, the worker and the CLI: a thin
facade over the use-case modules, each method handing its call to one of them.

- :mod:`.clients`: client records, found by name, date of birth or phone (never matched);
- :mod:`.scoping`: what the rules say for a set of reasons, and which partners suit them;
- :mod:`.issuing`: issuing a referral (scope, consent, partners, Idempotency-Key);
- :mod:`.offering`: one partner at a time (several at once when urgent), and the deadline sweep;
- :mod:`.partner_links`: what partners do through their links (answer, outcome report);
- :mod:`.partner_inbox`: the same, for all of a partner's offers at once (``/inbox/{token}``);
- :mod:`.staff_actions`: cancel, hold, resume, forward, accepted by phone;
- :mod:`.queries`: reading referrals, the dashboard, the client's handout;
- :mod:`.inbox`: messages from the other services.

Every change and the messages it causes are written in one transaction (messages go to the
outbox, see :mod:`.unit_of_work`); the commit hands them to the outbox relay (shared.outbox).
"""

from __future__ import annotations

import builtins
from datetime import date, datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.referrals import (
    clients,
    handouts,
    inbox,
    issuing,
    offering,
    partner_inbox,
    partner_links,
    queries,
    scoping,
    staff_actions,
)
from services.referrals.context import Clock, Context, system_clock
from services.referrals.domain import AdviceOnly, EmergencyStop, LinkRefused, MixedReasons, ScopeViolation
from services.referrals.intake import Client, NewClient, ReferralDraft, SuggestionQuery
from services.referrals.outcomes import OutcomeReport
from services.referrals.records import (
    ClientDetail,
    ClientRecord,
    Dashboard,
    EmergencyStopRecord,
    Handout,
    InboxPage,
    OfferPage,
    ReferralRecord,
    ReportPage,
    Suggestion,
    SweepReport,
)
from services.referrals.rules import Assessment, Rules
from services.referrals.storage import figure_counters
from services.referrals.storage.inbox_store import InboxAddress
from shared.auth import Staff
from shared.config import Settings
from shared.messages import EmailDelivery, PartnerChanged, PartnerSnapshot


class Referrals:
    """Issue, follow and answer referrals."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        rules: Rules,
        settings: Settings,
        clock: Clock = system_clock,
    ) -> None:
        # The dashboard's counters are refigured as each transaction commits, by the clinic's
        # days: the sessions carry which time zone those are in (see figure_counters).
        figure_counters.count_days_in(sessions, zone=settings.clinic_timezone)
        self._ctx = Context(
            sessions=sessions,
            rules=rules,
            settings=settings,
            signing_key=settings.keyring(),
            clock=clock,
        )

    def now(self) -> datetime:
        """The service's clock (injected in tests)."""
        return self._ctx.clock()

    def today(self) -> date:
        """Today in the clinic's time zone (``HANDOFF_CLINIC_TIMEZONE``)."""
        return self._ctx.today()

    # ------------------------------------------------------------------ therapists

    async def add_client(self, *, staff: Staff, details: NewClient) -> ClientRecord:
        return await clients.create(self._ctx, staff=staff, details=details)

    async def find_clients(self, *, staff: Staff, q: str) -> builtins.list[ClientRecord]:
        return await clients.search(self._ctx, staff=staff, q=q)

    async def client(self, *, staff: Staff, client_id: str) -> ClientDetail:
        return await clients.get(self._ctx, staff=staff, client_id=client_id)

    async def preview_client(self, *, staff: Staff, client: Client) -> ClientRecord:
        return await clients.preview(self._ctx, staff=staff, given=client)

    async def assess(self, *, staff: Staff, reasons: builtins.list[str]) -> Assessment:
        return await scoping.assess(self._ctx, staff=staff, reasons=reasons)

    async def emergency_stops(self, *, staff: Staff) -> builtins.list[EmergencyStopRecord]:
        return await scoping.emergency_stops(self._ctx, staff=staff)

    async def suggest(self, *, query: SuggestionQuery) -> builtins.list[Suggestion]:
        return await scoping.suggest(self._ctx, query=query)

    async def create(self, *, staff: Staff, draft: ReferralDraft, idempotency_key: str | None = None) -> ReferralRecord:
        return await issuing.create(self._ctx, staff=staff, draft=draft, idempotency_key=idempotency_key)

    async def create_together(
        self,
        *,
        staff: Staff,
        draft: ReferralDraft,
        partner_ids: builtins.list[builtins.list[str] | None],
        idempotency_key: str | None = None,
    ) -> builtins.list[ReferralRecord]:
        return await issuing.create_together(
            self._ctx, staff=staff, draft=draft, partner_ids=partner_ids, idempotency_key=idempotency_key
        )

    async def get(self, *, staff: Staff, referral_id: str) -> ReferralRecord:
        return await queries.get(self._ctx, staff=staff, referral_id=referral_id)

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
    ) -> builtins.list[ReferralRecord]:
        return await queries.list_referrals(
            self._ctx,
            staff=staff,
            status=status,
            partner_id=partner_id,
            since=since,
            needs_attention=needs_attention,
            limit=limit,
            search=search,
        )

    async def changed(
        self,
        *,
        staff: Staff,
        bounds: builtins.list[tuple[str, datetime]],
        client_id: str | None = None,
        referral_id: str | None = None,
        after: tuple[datetime, str] | None = None,
        limit: int = 20,
    ) -> tuple[builtins.list[ReferralRecord], int]:
        return await queries.changed(
            self._ctx,
            staff=staff,
            bounds=bounds,
            client_id=client_id,
            referral_id=referral_id,
            after=after,
            limit=limit,
        )

    async def dashboard(self, *, staff: Staff, days: int) -> Dashboard:
        return await queries.dashboard(self._ctx, staff=staff, days=days)

    async def handout(
        self, *, staff: Staff, referral_id: str, printed: bool = False, language: str | None = None
    ) -> Handout:
        return await handouts.handout(
            self._ctx, staff=staff, referral_id=referral_id, printed=printed, language=language
        )

    async def cancel(self, *, staff: Staff, referral_id: str, reason: str = "") -> ReferralRecord:
        return await staff_actions.cancel(self._ctx, staff=staff, referral_id=referral_id, reason=reason)

    async def hold(self, *, staff: Staff, referral_id: str, reason: str = "") -> ReferralRecord:
        return await staff_actions.hold(self._ctx, staff=staff, referral_id=referral_id, reason=reason)

    async def resume(self, *, staff: Staff, referral_id: str) -> ReferralRecord:
        return await staff_actions.resume(self._ctx, staff=staff, referral_id=referral_id)

    async def forward(self, *, staff: Staff, referral_id: str, partner_id: str) -> ReferralRecord:
        return await staff_actions.forward(self._ctx, staff=staff, referral_id=referral_id, partner_id=partner_id)

    async def accept_by_phone(self, *, staff: Staff, referral_id: str, offer_id: str) -> ReferralRecord:
        return await staff_actions.accept_by_phone(self._ctx, staff=staff, referral_id=referral_id, offer_id=offer_id)

    async def forward_candidates(self, *, reasons: builtins.list[str]) -> builtins.list[PartnerSnapshot]:
        return await staff_actions.forward_candidates(self._ctx, reasons=reasons)

    # ------------------------------------------------------------------ partners, through their links

    async def open_offer(self, *, token: str) -> OfferPage:
        return await partner_links.open_offer(self._ctx, token=token)

    async def acknowledge(self, *, token: str) -> None:
        await partner_links.acknowledge(self._ctx, token=token)

    async def answer(
        self, *, token: str, decision: str, reason: str | None = None, note: str = ""
    ) -> Literal["accepted", "declined"]:
        return await partner_links.answer(self._ctx, token=token, decision=decision, reason=reason, note=note)

    async def open_report(self, *, token: str) -> ReportPage:
        return await partner_links.open_report(self._ctx, token=token)

    async def report(self, *, token: str, report: OutcomeReport) -> str:
        return await partner_links.report(self._ctx, token=token, report=report)

    # ------------------------------------------------------------------ the partner inbox

    async def open_inbox(self, *, token: str) -> InboxPage:
        return await partner_inbox.open_inbox(self._ctx, token=token)

    async def answer_in_inbox(
        self, *, token: str, offer_id: str, decision: str, reason: str | None = None, note: str = ""
    ) -> Literal["accepted", "declined"]:
        return await partner_inbox.answer(
            self._ctx, token=token, offer_id=offer_id, decision=decision, reason=reason, note=note
        )

    async def report_in_inbox(self, *, token: str, offer_id: str, report: OutcomeReport) -> str:
        return await partner_inbox.report(self._ctx, token=token, offer_id=offer_id, report=report)

    async def inbox_addresses(self) -> builtins.list[InboxAddress]:
        return await partner_inbox.addresses(self._ctx)

    async def revoke_inbox_links(self, *, email: str, by: Staff) -> int:
        return await partner_inbox.revoke(self._ctx, email=email, by=by)

    # ------------------------------------------------------------------ the worker

    async def sweep(self) -> SweepReport:
        return await offering.sweep(self._ctx)

    async def apply_partner_changed(self, message: PartnerChanged) -> bool:
        return await inbox.apply_partner_changed(self._ctx, message=message)

    async def apply_partner_changes(self, changes: builtins.list[PartnerChanged]) -> int:
        return await inbox.apply_partner_changes(self._ctx, changes=changes)

    async def record_delivery(self, message: EmailDelivery) -> bool:
        return await inbox.record_delivery(self._ctx, message=message)


__all__ = [
    "AdviceOnly",
    "Clock",
    "EmergencyStop",
    "Handout",
    "LinkRefused",
    "MixedReasons",
    "OfferPage",
    "Referrals",
    "ReportPage",
    "ScopeViolation",
    "SweepReport",
    "system_clock",
]
