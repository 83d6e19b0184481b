"""The directory's tables (SQLAlchemy Core): partners, the catalogue's revision, each partner's
history, the admin's review queue of listing changes, used manage-link forms, the confirmation
cycle's notices, and the outbox. Query functions live in :mod:`services.directory.storage` and
:mod:`services.directory.listing_store`."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from shared.outbox import outbox_table

MIGRATIONS = Path(__file__).with_name("migrations")

metadata = MetaData()

partners = Table(
    "partners",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("slug", String(80), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(60), nullable=False),
    Column("email", String(320), nullable=False),
    Column("phone", String(20), nullable=True),
    Column("credentials", String(120), nullable=False),
    Column("practice", String(200), nullable=False),
    Column("website", String(500), nullable=True),
    Column("address_line1", String(200), nullable=False),
    Column("address_line2", String(200), nullable=False),
    Column("address_city", String(100), nullable=False),
    Column("address_state", String(50), nullable=False),
    Column("address_postal_code", String(20), nullable=False),
    Column("lat", Float, nullable=True),
    Column("lon", Float, nullable=True),
    Column("languages", JSON, nullable=False),
    Column("telehealth", Boolean, nullable=False),
    Column("accepting_new_clients", String(10), nullable=False),
    Column("listed", Boolean, nullable=False),
    Column("status", String(10), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # Added by 0002.
    Column("specialties", JSON, nullable=False),
    Column("bio", Text, nullable=False),
    Column("hours", String(500), nullable=False),
    Column("insurance_notes", Text, nullable=False),
    Column("accessibility_notes", Text, nullable=False),
    Column("npi", String(10), nullable=True),
    Column("license_number", String(40), nullable=False),
    Column("license_state", String(20), nullable=False),
    Column("accepts_referrals_from", JSON, nullable=False),
    Column("response_window_days", Integer, nullable=True),
    # Derived on every write, for portable search without JSON operators: the lower-cased text
    # that ``q`` matches, and the languages as "|english|spanish|" for an exact-item LIKE.
    Column("search_text", Text, nullable=False),
    Column("language_keys", String(1000), nullable=False),
    # Added by 0004: when the practice last confirmed its listing (None until it does).
    Column("last_confirmed_at", DateTime(timezone=True), nullable=True),
    # Added by 0005, derived on every write: the practice's id (services.directory.identifiers),
    # so the standards APIs group and read practices through an index.
    Column("practice_id", String(36), nullable=False),
    # Added by 0007: capacity "until" a day, the licence's expiry, and the confirmation cycle's
    # flags (needs the admin's review since; held back from the public pages until confirmed).
    Column("accepting_until", Date, nullable=True),
    Column("licence_expires_on", Date, nullable=True),
    Column("needs_review_since", DateTime(timezone=True), nullable=True),
    Column("hidden_until_confirmed", Boolean, nullable=False, server_default=false()),
    UniqueConstraint("slug", name="uq_partners_slug"),
    # One partner per NPI: it is the stable key a CSV import upserts on.
    UniqueConstraint("npi", name="uq_partners_npi"),
    # The public listing: active, listed partners of a category, by name.
    Index("ix_partners_status_category_name", "status", "category", "name"),
    # `near` searches of public partners, with or without a category: equality columns first,
    # then the bounding box's latitude range; lon and id make the index covering, so ranking
    # candidates by distance reads no table rows (0003).
    Index("ix_partners_near_category", "status", "listed", "category", "lat", "lon", "id"),
    Index("ix_partners_near", "status", "listed", "lat", "lon", "id"),
    # Public practices, and one practice's partners (0005).
    Index("ix_partners_practice", "status", "listed", "practice_id"),
)

# One row (id 1) whose revision grows with every committed partner change, in the same
# transaction: the public pages' ETag, shared by every replica of the web service.
catalogue = Table(
    "catalogue",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("revision", Integer, nullable=False),
)

outbox = outbox_table(metadata)

# Added by 0007. Every committed change to a partner, with who made it: "partner" (through a
# manage link), "admin:<email>", "import", "system" (the confirmation sweep).
partner_history = Table(
    "partner_history",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("partner_id", String(36), nullable=False),
    Column("version", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(320), nullable=False),
    Column("action", String(40), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_partner_history_partner", "partner_id", "at"),
)

# Changes a partner asked for that wait for the admin (name, category, licence, address…).
listing_reviews = Table(
    "listing_reviews",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("partner_id", String(36), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("base_version", Integer, nullable=False),
    # Field -> the value asked for, as the flat record form (services.directory.columns).
    Column("changes", JSON, nullable=False),
    Column("status", String(10), nullable=False),  # pending | approved | rejected
    Column("decided_at", DateTime(timezone=True), nullable=True),
    Column("decided_by", String(320), nullable=True),
    Column("note", Text, nullable=False, server_default=""),
    Index("ix_listing_reviews_status", "status", "requested_at"),
    Index("ix_listing_reviews_partner", "partner_id", "requested_at"),
)

# One row per manage-link submission: its token's id, so that a form is acted on once.
manage_link_uses = Table(
    "manage_link_uses",
    metadata,
    Column("jti", String(36), primary_key=True),
    Column("partner_id", String(36), nullable=False),
    Column("used_at", DateTime(timezone=True), nullable=False),
)

# One row per email the sweep sends (a confirmation request, its reminder, a reopening question,
# a licence warning), keyed on what it is about: a sweep that claims the row sends the email, in
# the same transaction; any other sweep (another worker, a restart) finds it taken.
listing_notices = Table(
    "listing_notices",
    metadata,
    Column("partner_id", String(36), primary_key=True),
    Column("kind", String(30), primary_key=True),
    # What the notice is about, e.g. the confirmation due date or the licence's expiry date.
    Column("cycle", String(40), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
