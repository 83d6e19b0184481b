"""The deadline sweep on a real database and Redis, with the clock advanced (never slept):
reminders at half the deadline (once), expiry to the next partner, the last expiry failing the
referral, business days with holidays, two sweeps at once, and its place on RQ's schedule."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from litestar.testing import TestClient
from redis import Redis
from rq.registry import ScheduledJobRegistry

from services.referrals import bootstrap, jobs
from services.referrals.web.app import create_app
from shared import queues
from shared.config import Settings
from tests.support.referrals import START, Clock, flush, link_path, login, new_referral, queued_emails, sent, sweep


@pytest.fixture
def clock() -> Clock:
    """The service's clock for this module's tests: at START until a test moves it."""
    return Clock(START)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings with soon offers due in one business day, as this module's
    clock moves assume (the default is 3)."""
    return msgspec.structs.replace(settings, offer_days_soon=1)


def offers_of(client: TestClient, referral_id: str, headers: dict) -> tuple[str, list[tuple[str, str]]]:
    body = client.get(f"/api/v1/referrals/{referral_id}", headers=headers).json()
    return body["status"], [(o["partner_id"], o["status"]) for o in body["offers"]]


def test_reminder_at_half_the_deadline_once(client: TestClient, settings, clock: Clock) -> None:
    headers = login(client)
    new_referral(client, headers)  # soon: one business day here, gp1 then gp2
    flush(client)
    assert sent(settings) == [("offer", "gp1@partners.example")]

    clock.now = START + timedelta(hours=11, minutes=59)
    assert sweep(client).reminded == 0
    clock.now = START + timedelta(hours=12)
    assert sweep(client).reminded == 1
    assert sweep(client).reminded == 0
    clock.now = START + timedelta(hours=20)
    assert sweep(client).reminded == 0
    assert sent(settings) == [("offer", "gp1@partners.example"), ("offer_reminder", "gp1@partners.example")]
    reminder = queued_emails(settings.redis_url)[1]
    assert reminder.context.expires_at == START + timedelta(days=1)
    # It links the partner's inbox too (issue 14 item 5), of the address's current generation.
    inbox = reminder.context.inbox_url.removeprefix(settings.public_url("referrals"))
    assert inbox.startswith("/inbox/") and client.get(inbox).status_code == 200
    # The reminder's fresh link opens the same offer.
    page = client.get(link_path(reminder))
    assert page.status_code == 200 and "Dr. Ana Gomez" in page.text


def test_expiry_offers_the_next_partner_and_the_last_fails_the_referral(
    client: TestClient,
    settings,
    clock: Clock,
) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    first_link = link_path(queued_emails(settings.redis_url)[0])

    clock.now = START + timedelta(days=1) - timedelta(seconds=1)
    assert sweep(client).expired == 0
    clock.now = START + timedelta(days=1)
    assert sweep(client).expired == 1
    assert offers_of(client, referral["id"], headers) == ("requested", [("gp1", "expired"), ("gp2", "offered")])
    assert sent(settings)[1:] == [
        ("offer_reminder", "gp1@partners.example"),  # the sweep a second before the deadline
        ("offer_withdrawn", "gp1@partners.example"),
        ("offer_expired", "tess@clinic.example"),
        ("offer", "gp2@partners.example"),
    ]
    assert client.get(first_link).status_code == 410
    second = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["offers"][1]
    # Tuesday 9:00 + one business day: Wednesday 9:00.
    assert second["expires_at"].startswith("2030-11-06T14:00:00")

    clock.now = START + timedelta(days=2)
    assert sweep(client).expired == 1
    status, offers = offers_of(client, referral["id"], headers)
    assert status == "failed" and offers == [("gp1", "expired"), ("gp2", "expired")]
    assert sent(settings)[5:] == [
        ("offer_withdrawn", "gp2@partners.example"),
        ("no_partner_left", "tess@clinic.example"),
    ]
    therapist = [e for e in queued_emails(settings.redis_url) if e.to == "tess@clinic.example"]
    assert [e.kind for e in therapist] == ["offer_expired", "no_partner_left"]
    assert {e.context.action_url for e in therapist} == {f"http://localhost:8002/referrals/{referral['id']}"}
    body = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert body["needs_attention"] and any(e["to_status"] == "failed" for e in body["timeline"])
    again = sweep(client)
    assert (again.reminded, again.expired) == (0, 0)


def test_an_outage_changes_nothing_but_lateness(client: TestClient, settings, clock: Clock) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    # No sweep for three days: the first offer expires at its own deadline, unreminded, and the
    # next partner gets a full day from when they are sent the offer.
    clock.now = START + timedelta(days=3)
    assert sweep(client).expired == 1
    assert sweep(client).expired == 0
    body = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    first, second = body["offers"]
    assert first["status"] == "expired" and first["responded_at"] == first["expires_at"]
    assert second["status"] == "offered" and second["expires_at"].startswith("2030-11-08T14:00:00")
    kinds = [kind for kind, _ in sent(settings)]
    assert "offer_reminder" not in kinds and kinds.count("offer") == 2


def test_holidays_and_weekends_are_not_business_days(settings, clock: Clock) -> None:
    # Friday 9:00, with Monday a holiday: a soon offer (one business day here) is due Tuesday 9:00.
    clock.now = datetime(2030, 11, 8, 14, 0, tzinfo=UTC)
    holiday_settings = msgspec.structs.replace(settings, clinic_holidays="2030-11-11")
    with TestClient(create_app(holiday_settings, clock=clock)) as client:
        referral = new_referral(client, login(client))
        assert referral["offers"][0]["expires_at"].startswith("2030-11-12T14:00:00")


def test_two_sweeps_at_once_send_each_email_once(client: TestClient, settings, clock: Clock) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)

    def at_once() -> list:
        barrier = threading.Barrier(2)
        reports: list = []

        def run() -> None:
            async def go():
                runtime = bootstrap.build(settings, clock=clock)
                try:
                    barrier.wait()
                    report = await runtime.referrals.sweep()
                    await runtime.relay.flush()
                    return report
                finally:
                    await runtime.close()

            reports.append(asyncio.run(go()))

        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return reports

    clock.now = START + timedelta(hours=13)
    assert sorted(r.reminded for r in at_once()) == [0, 1]
    clock.now = START + timedelta(days=1, minutes=1)
    assert sorted(r.expired for r in at_once()) == [0, 1]
    assert sent(settings) == [
        ("offer", "gp1@partners.example"),
        ("offer_reminder", "gp1@partners.example"),
        ("offer_withdrawn", "gp1@partners.example"),
        ("offer_expired", "tess@clinic.example"),
        ("offer", "gp2@partners.example"),
    ]
    body = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert [e["why"].startswith("the offer to Dr. Ana Gomez expired") for e in body["timeline"]].count(True) == 1


def test_the_sweep_is_scheduled_once_per_slot(settings, clock: Clock) -> None:
    connection = Redis.from_url(settings.redis_url)
    now = datetime(2030, 11, 4, 14, 0, 30, tzinfo=UTC)
    assert jobs.schedule_sweep(connection, interval=60, now=now) is True
    assert jobs.schedule_sweep(connection, interval=60, now=now + timedelta(seconds=20)) is False
    registry = ScheduledJobRegistry(queue=queues.rq_queue(queues.REFERRALS, connection))
    slot = int(now.timestamp()) // 60 + 1
    assert registry.get_job_ids() == [f"referrals-sweep-60-{slot}"]

    # The job itself: schedules the next slot (from the real time), then sweeps.
    jobs.runtime.install(bootstrap.build(settings, clock=clock))
    jobs.sweep(60)
    assert len(registry.get_job_ids()) == 2
