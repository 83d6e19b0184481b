"""The referrals service's storage: its tables (:mod:`.tables`) and the query functions that
read and write them, grouped by aggregate (``client_store``, ``referral_store``, ``offer_store``,
``partner_store``, ``outcome_store``, ``email_store``). The tables, ``metadata`` and ``MIGRATIONS`` are re-exported
here for the migrations, the composition root and tests."""

from services.referrals.storage.tables import (
    MIGRATIONS,
    accept_times,
    audit_log,
    clients,
    daily_figures,
    email_deliveries,
    emails,
    idempotency_keys,
    metadata,
    offers,
    outbox,
    outcomes,
    partners,
    referral_events,
    referral_figures,
    referrals,
    staff_users,
)

__all__ = [
    "MIGRATIONS",
    "accept_times",
    "audit_log",
    "clients",
    "daily_figures",
    "email_deliveries",
    "emails",
    "idempotency_keys",
    "metadata",
    "offers",
    "outbox",
    "outcomes",
    "partners",
    "referral_events",
    "referral_figures",
    "referrals",
    "staff_users",
]
