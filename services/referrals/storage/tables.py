"""The referrals service's own tables, which no other service reads or writes, and the two helpers
the query functions beside this module (``*_store``) share: :func:`aware` for the timestamps
they read, :func:`updated_one` for the conditional UPDATEs that claim a row."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from shared.outbox import outbox_table

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"

metadata = MetaData()

staff_users = Table(
    "staff_users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Read-only replica of directory's partners, fed by PartnerChanged messages.
partners = Table(
    "partners",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(60), nullable=False),
    Column("status", String(20), nullable=False),
    Column("email", String(320), nullable=False),
    Column("snapshot", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_partners_category_status", "category", "status"),
)

# The people referred: one record per person, never matched or merged by name (two people with
# the same name are two records). Staff find one by name, date of birth or phone.
clients = Table(
    "clients",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("date_of_birth", Date, nullable=True),
    # E.164, and its digits alone for finding a client however the number is typed.
    Column("phone", String(40), nullable=True),
    Column("phone_digits", String(20), nullable=True),
    Column("email", String(320), nullable=True),
    Column("preferred_contact", String(10), nullable=True),
    Column("language", String(40), nullable=False),
    Column("postal_code", String(20), nullable=True),
    # The client agreed to be emailed (a partner's details, when they are to make the call).
    Column("email_consent", Boolean, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_clients_phone_digits", "phone_digits"),
    Index("ix_clients_date_of_birth", "date_of_birth"),
)

referrals = Table(
    "referrals",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("reference", String(20), nullable=False, unique=True),
    Column("status", String(20), nullable=False),
    Column("urgency", String(20), nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("note", Text, nullable=False, default=""),
    Column("client_id", String(36), ForeignKey("clients.id"), nullable=False, index=True),
    # Who makes the next call once a partner accepts (services.referrals.contact.NEXT_STEPS).
    Column("next_step", String(30), nullable=False, server_default="partner_contacts_client"),
    Column("consent", JSON, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Referrals sent together (one per group of reasons, under one consent) share a batch.
    Column("batch_id", String(36), nullable=True),
    Index("ix_referrals_status", "status"),
    Index("ix_referrals_created_at", "created_at"),
    # A therapist's own, newest first (lists, the dashboard); the FHIR API's last-changed order.
    Index("ix_referrals_created_by_created_at", "created_by", "created_at"),
    Index("ix_referrals_updated_at", "updated_at"),
    Index("ix_referrals_batch_id", "batch_id"),
)

offers = Table(
    "offers",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("referral_id", String(36), ForeignKey("referrals.id"), nullable=False),
    Column("partner_id", String(36), nullable=False),
    Column("position", Integer, nullable=False),
    Column("status", String(20), nullable=False),
    Column("offered_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("responded_at", DateTime(timezone=True), nullable=True),
    Column("decline_reason", String(40), nullable=True),
    Column("decline_note", Text, nullable=True),
    # Set once by the sweep that sends the half-deadline reminder (see offering.sweep).
    Column("reminded_at", DateTime(timezone=True), nullable=True),
    # The one outcome-report link that is good now; cleared when it is used (single use).
    Column("report_nonce", String(40), nullable=True),
    # The nonce of this offering's answer link, new each time the offer is made (again after a
    # hold, say): a link from an earlier offering, which its partner was told is withdrawn,
    # names a nonce the offer no longer holds and is refused.
    Column("offer_nonce", String(40), nullable=True),
    # When the partner said they had seen the offer and will answer: the referral is "received"
    # once one has, but an urgent one's other partners have not said so themselves.
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("referral_id", "position"),
    Index("ix_offers_partner_status", "partner_id", "status"),
    Index("ix_offers_status_expires", "status", "expires_at"),
    # Needs attention: the offers waiting past half their deadline, few whatever the history.
    Index("ix_offers_status_reminded", "status", "reminded_at"),
)

# The referral's timeline: every transition, who, when, from, to, why.
referral_events = Table(
    "referral_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("referral_id", String(36), ForeignKey("referrals.id"), nullable=False, index=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(400), nullable=False),
    Column("from_status", String(20), nullable=True),
    Column("to_status", String(20), nullable=False),
    Column("why", Text, nullable=False),
)

# Partners' outcome reports (booked, no-show, completed) with the massage clearance.
outcomes = Table(
    "outcomes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("referral_id", String(36), ForeignKey("referrals.id"), nullable=False, index=True),
    Column("offer_id", String(36), nullable=False),
    Column("partner_id", String(36), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("booked_for", Date, nullable=True),
    Column("clearance", String(40), nullable=True),
    Column("areas_to_avoid", Text, nullable=False),
    Column("pressure_limit", Text, nullable=False),
    Column("note", Text, nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    # Needs attention: the no-shows.
    Index("ix_outcomes_outcome_referral", "outcome", "referral_id"),
)

# Everything else worth auditing that is not a transition: emergency advice, partner views.
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(400), nullable=False),
    Column("action", String(60), nullable=False),
    Column("referral_id", String(36), nullable=True, index=True),
    Column("detail", JSON, nullable=False),
    # The admin dashboard's count of one action (emergency stops) in a period.
    Index("ix_audit_log_action_at", "action", "at"),
)

# One row per (notification, outcome): applying a delivery report twice changes nothing.
email_deliveries = Table(
    "email_deliveries",
    metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("outcome", String(20), primary_key=True),
    Column("referral_id", String(36), nullable=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    # "Needs attention" looks referrals up by their failed emails.
    Index("ix_email_deliveries_referral_outcome", "referral_id", "outcome"),
)

# What each email was, recorded when it is staged: delivery reports and the referral's record name
# the email from here, whatever becomes of its outbox row.
emails = Table(
    "emails",
    metadata,
    Column("notification_id", String(36), primary_key=True),
    Column("referral_id", String(36), nullable=True),
    Column("kind", String(40), nullable=False),
    Column("recipient", String(320), nullable=False),
    Column("staged_at", DateTime(timezone=True), nullable=False),
    # The timeline step (referral_events.id) that sent it; None for emails staged before 0011.
    Column("event_id", Integer, nullable=True),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("staff_id", String(36), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("body_hash", String(64), nullable=False),
    Column("response", JSON, nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# The partner inbox's links, per partner email address: a link carries the address's generation,
# and revoking them bumps it (a link of an earlier generation is refused). No row: generation 0.
inbox_links = Table(
    "inbox_links",
    metadata,
    Column("email", String(320), primary_key=True),  # lower case
    Column("generation", Integer, nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(36), nullable=True),
)

# The dashboard's figures, kept up to date in every transaction that changes a referral (see
# figure_counters): what each referral counts as, the counts per clinic day, each acceptance's time.
# "day" is the clinic's day (HANDOFF_CLINIC_TIMEZONE) the referral was created on; "category" its
# first offer's partner's category, "" when none.
referral_figures = Table(
    "referral_figures",
    metadata,
    Column("referral_id", String(36), ForeignKey("referrals.id"), primary_key=True),
    Column("day", Date, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("category", String(60), nullable=False),
    # The funnel's stages the referral has reached, as bits (figure_counters.STAGES).
    Column("stages", Integer, nullable=False),
)

daily_figures = Table(
    "daily_figures",
    metadata,
    Column("day", Date, primary_key=True),
    Column("created_by", String(36), primary_key=True),
    Column("category", String(60), primary_key=True),
    Column("referrals", Integer, nullable=False),
    Column("sent", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("booked", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
)

# One row per accepted offer (answered, with both times): the medians' hours, by the day and
# creator of its referral.
accept_times = Table(
    "accept_times",
    metadata,
    Column("offer_id", String(36), primary_key=True),
    Column("referral_id", String(36), nullable=False, index=True),
    Column("day", Date, nullable=False),
    Column("created_by", String(36), nullable=False),
    Column("partner_id", String(36), nullable=False),
    Column("hours", Float, nullable=False),
    # Each partner's acceptances of a period, everyone's and a therapist's own: read in order
    # from the index alone (figures_store).
    Index("ix_accept_times_partner_day", "partner_id", "day", "hours"),
    Index("ix_accept_times_created_by_partner_day", "created_by", "partner_id", "day", "hours"),
)

outbox = outbox_table(metadata)


def aware(moment: datetime) -> datetime:
    """A stored timestamp as an aware UTC datetime: SQLite hands back naive ones, and everything
    stored here is UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def updated_one(session: AsyncSession, statement: Update) -> bool:
    """Run an UPDATE of one row by its key; True when it changed that row. A conditional UPDATE
    (``... WHERE status = 'offered'``) so claims the row: only one of two racing callers gets True."""
    # AsyncSession.execute is typed as returning Result; for an UPDATE it is a CursorResult.
    return cast(CursorResult, await session.execute(statement)).rowcount == 1
