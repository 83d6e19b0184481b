"""The directory worker's listing sweep on a real database: the confirmation cycle (asked once,
reminded once, flagged, unlisted, back on confirming), the reopening question, the licence
warning, and two sweeps at once sending each email once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import msgspec
from litestar.testing import TestClient

from services.directory import bootstrap
from services.directory.listing_sweep import SweepReport
from shared.config import Settings
from tests.support.directory import ADMIN, create, form_action, form_csrf, manage_path, staged_emails

# How long the web process may serve a page before it sees another process's change
# (services.directory.web.page_cache, revision_ttl), and a margin.
PAGE_CACHE_SECONDS = 0.6


def _sweep(settings: Settings, now: datetime, *, runs: int = 1) -> list[SweepReport]:
    """``runs`` sweeps at ``now``, all at once, each with its own runtime (as separate workers)."""

    async def go() -> list[SweepReport]:
        runtimes = [bootstrap.build(settings, use="worker") for _ in range(runs)]
        try:
            return list(await asyncio.gather(*(runtime.sweep.run(now=now) for runtime in runtimes)))
        finally:
            for runtime in runtimes:
                await runtime.close()

    return asyncio.run(go())


def _kinds(settings: Settings) -> list[tuple[str, str]]:
    return [(e.kind, e.to) for e in staged_emails(settings.directory_db_url)]


def test_an_unconfirmed_partner_is_asked_once_reminded_once_then_flagged_and_unlisted(
    client: TestClient, settings: Settings
) -> None:
    settings = msgspec.structs.replace(settings, unlist_unconfirmed=True)
    partner = create(client)
    added = datetime.fromisoformat(partner["created_at"])
    due = added + timedelta(days=180, minutes=1)

    assert _sweep(settings, added + timedelta(days=179))[0].asked == 0
    assert _sweep(settings, due)[0].asked == 1
    assert _sweep(settings, due + timedelta(hours=1))[0].asked == 0  # asked once per cycle
    assert _kinds(settings) == [("listing_confirm_request", "intake@baypt.example")]
    assert _sweep(settings, due + timedelta(days=16))[0].reminded == 1
    assert _sweep(settings, due + timedelta(days=17))[0].reminded == 0
    assert client.get(f"/partners-in-health/{partner['slug']}").status_code == 200  # not flagged yet

    flagged = _sweep(settings, due + timedelta(days=31))[0]

    assert flagged.flagged == 1
    time.sleep(PAGE_CACHE_SECONDS)  # the web process re-reads the catalogue revision this often
    assert client.get(f"/partners-in-health/{partner['slug']}").status_code == 404
    admin_list = client.get("/admin/partners", params={"needs_review": "yes"}, headers=ADMIN)
    assert "Bay Physical Therapy" in admin_list.text and 'class="badge">Needs review' in admin_list.text
    assert _sweep(settings, due + timedelta(days=32))[0].flagged == 0

    # Confirming through the emailed link brings the listing back, dated.
    link = manage_path(
        [e for e in staged_emails(settings.directory_db_url) if e.kind.startswith("listing_confirm")][-1]
    )
    page = client.get(link)
    confirmed = client.post(
        form_action(page.text), data={"action": "confirm", "_csrf_token": form_csrf(page.text)}, follow_redirects=False
    )
    assert confirmed.status_code == 303
    public = client.get(f"/partners-in-health/{partner['slug']}")
    assert public.status_code == 200 and "Confirmed by the practice on" in public.text
    assert (
        "Bay Physical Therapy" not in client.get("/admin/partners", params={"needs_review": "yes"}, headers=ADMIN).text
    )


def test_two_sweeps_at_once_send_each_email_once(client: TestClient, settings: Settings) -> None:
    for n in range(3):
        create(client, name=f"Partner {n}", email=f"p{n}@partners.example")
    due = datetime.now(UTC) + timedelta(days=181)

    reports = _sweep(settings, due, runs=2)

    assert sum(report.asked for report in reports) == 3
    assert sorted(_kinds(settings)) == [("listing_confirm_request", f"p{n}@partners.example") for n in range(3)]


def test_the_reopening_day_asks_the_partner_and_the_clinic_hears_of_a_licence_expiring(
    client: TestClient, settings: Settings
) -> None:
    settings = msgspec.structs.replace(settings, clinic_email="admin@clinic.example")
    today = date.today()
    create(
        client,
        name="Full PT",
        email="full@partners.example",
        accepting_new_clients="no",
        accepting_until=(today - timedelta(days=1)).isoformat(),
    )
    create(
        client,
        name="Expiring PT",
        email="expiring@partners.example",
        licence_expires_on=(today + timedelta(days=20)).isoformat(),
    )
    create(
        client,
        name="Later PT",
        email="later@partners.example",
        licence_expires_on=(today + timedelta(days=90)).isoformat(),
    )

    first = _sweep(settings, datetime.now(UTC))[0]
    again = _sweep(settings, datetime.now(UTC))[0]

    assert (first.reopening, first.licences) == (1, 1)
    assert (again.reopening, again.licences) == (0, 0)
    emails = staged_emails(settings.directory_db_url)
    assert sorted((e.kind, e.to) for e in emails) == [
        ("licence_expiring", "admin@clinic.example"),
        ("listing_reopen", "full@partners.example"),
    ]
    warning = next(e for e in emails if e.kind == "licence_expiring")
    assert warning.context.partner_name == "Expiring PT" and "/admin/partners/" in warning.context.action_url
