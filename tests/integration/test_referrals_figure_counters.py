"""The dashboard's counters follow each kind of change a referral goes through, made the way
staff and partners make it (issued, accepted, declined, booked, completed, forwarded away from
the partner who had accepted, cancelled, expired): after each, the referral counts as the
stages it reached, and the counters equal those the backfill computes from the rows. Then each
store function that can move a referral's figures, alone in its transaction: the counters move,
and still equal the backfill's (so none of them can stop saying it touched the referral)."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import msgspec
import pytest
from litestar.testing import TestClient
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.referrals import bootstrap
from services.referrals.outcomes import OutcomeReport
from services.referrals.storage import (
    accept_times,
    clients,
    daily_figures,
    figure_counters,
    offer_store,
    offers,
    outcome_store,
    partner_store,
    referral_figures,
    referral_store,
    referrals,
)
from services.referrals.storage.offer_store import StoredOffer
from services.referrals.storage.referral_store import StoredReferral
from shared.auth import Staff
from shared.config import Settings
from tests.support.referrals import (
    START,
    Clock,
    accept,
    changed,
    csrf,
    flush,
    link_path,
    login,
    new_referral,
    partner,
    queued_emails,
    report,
    sweep,
)

SENT, ACCEPTED, BOOKED, COMPLETED = 1, 2, 4, 8
# START is 9:00 on Monday, November 4, 2030 at the clinic.
DAY = date(2030, 11, 4)


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


async def _counters(session: AsyncSession) -> dict[str, list[tuple]]:
    """Every row of the counters, in order; day counters at zero (a referral moved out of
    them) are as good as none."""
    found = {
        table.name: [tuple(row) for row in await session.execute(select(table).order_by(*table.primary_key))]
        for table in (referral_figures, daily_figures, accept_times)
    }
    found["daily_figures"] = [row for row in found["daily_figures"] if any(row[3:])]
    return found


def counted(settings: Settings) -> dict[str, list[tuple]]:
    """The counters as the commits left them, checked against the backfill's (computed in a
    transaction then rolled back)."""

    async def run() -> dict[str, list[tuple]]:
        runtime = bootstrap.build(settings)
        try:
            async with runtime.sessions() as session:
                kept = await _counters(session)
                await session.run_sync(
                    lambda sync: figure_counters.backfill(sync.connection(), zone=settings.clinic_timezone)
                )
                assert await _counters(session) == kept, "the counters differ from the backfill's"
                await session.rollback()
            return kept
        finally:
            await runtime.close()

    return asyncio.run(run())


def stages(settings: Settings, referral_id: str) -> int:
    rows = {row[0]: row for row in counted(settings)["referral_figures"]}
    referral_id_, day, _by, category, reached = rows[referral_id]
    assert (referral_id_, day, category) == (referral_id, DAY, "primary_care")
    return reached


def answer(client: TestClient, settings: Settings, decision: str) -> None:
    """The partner of the newest offer email answers it."""
    flush(client)
    path = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1])
    data = {"decision": decision, "reason": "no_capacity", "_csrf_token": csrf(client.get(path).text)}
    assert client.post(path, data=data).status_code == 200
    flush(client)


def test_counters_follow_issue_accept_booking_completion(client: TestClient, settings: Settings) -> None:
    headers = login(client)
    assert counted(settings)["referral_figures"] == []

    referral, path = accept(client, settings, headers)
    assert stages(settings, referral["id"]) == SENT | ACCEPTED
    # Accepted as soon as offered (the clock stands still): one acceptance of gp1's, 0 hours.
    assert [row[4:] for row in counted(settings)["accept_times"]] == [("gp1", 0.0)]

    assert report(client, path, outcome="booked", booked_for="2030-11-10").status_code == 200
    assert stages(settings, referral["id"]) == SENT | ACCEPTED | BOOKED
    flush(client)
    second = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "report_outcome"][-1])
    assert report(client, second, outcome="completed", clearance="ok").status_code == 200
    assert stages(settings, referral["id"]) == SENT | ACCEPTED | BOOKED | COMPLETED
    assert [row[1:] for row in counted(settings)["daily_figures"]] == [
        ("", "primary_care", 1, 1, 1, 1, 1),  # everyone's
        (referral["created_by"], "primary_care", 1, 1, 1, 1, 1),
    ]


def test_counters_follow_issue_and_acceptance_alone(client: TestClient, settings: Settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    assert stages(settings, referral["id"]) == SENT
    assert [row[2:] for row in counted(settings)["daily_figures"]] == [("primary_care", 1, 1, 0, 0, 0)] * 2
    answer(client, settings, "accept")
    assert stages(settings, referral["id"]) == SENT | ACCEPTED
    assert [row[2:] for row in counted(settings)["daily_figures"]] == [("primary_care", 1, 1, 1, 0, 0)] * 2


def test_counters_follow_decline_cancel_and_expiry(client: TestClient, settings: Settings, clock: Clock) -> None:
    headers = login(client)
    declined = new_referral(client, headers)
    answer(client, settings, "decline")  # gp1 declines: gp2 has it now
    assert stages(settings, declined["id"]) == SENT
    assert counted(settings)["accept_times"] == []
    cancelled = client.post(f"/api/v1/referrals/{declined['id']}/cancel", headers=headers, json={"reason": "moved"})
    assert cancelled.status_code == 200, cancelled.text
    # Cancelled: it was sent, and counts as that still.
    assert stages(settings, declined["id"]) == SENT

    expiring = new_referral(client, headers)
    for days in (10, 20):  # gp1's offer runs out of time, then gp2's: the referral fails
        clock.now = START + timedelta(days=days)
        sweep(client)
    headers = login(client)
    assert client.get(f"/api/v1/referrals/{expiring['id']}", headers=headers).json()["status"] == "failed"
    assert stages(settings, expiring["id"]) == SENT
    assert [row[2:] for row in counted(settings)["daily_figures"]] == [("primary_care", 2, 2, 0, 0, 0)] * 2


def test_counters_follow_an_acceptance_withdrawn_by_a_forward(
    client: TestClient, settings: Settings, clock: Clock
) -> None:
    headers = login(client)
    referral, path = accept(client, settings, headers)
    assert report(client, path, outcome="no_show").status_code == 200
    assert stages(settings, referral["id"]) == SENT | ACCEPTED
    # The no-show put it on hold; forwarded to gp2, gp1's acceptance is withdrawn, and with it
    # the referral's "accepted" (its status says requested now) and gp1's time to accept.
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "on-hold"
    forwarded = client.post(f"/api/v1/referrals/{referral['id']}/forward", headers=headers, json={"partner_id": "gp2"})
    assert forwarded.status_code == 200, forwarded.text
    assert stages(settings, referral["id"]) == SENT
    assert counted(settings)["accept_times"] == []


# Each store function whose change can move a referral's figures, alone in its transaction:
# (what the referral has before, as offers (partner, status); the change).
R = "figured-referral"


async def _issue(session: AsyncSession) -> None:
    await referral_store.insert_referral(session, _referral(status="requested"))


async def _complete(session: AsyncSession) -> None:
    assert await referral_store.set_status(session, R, expected="requested", status="completed", at=START)


async def _offer(session: AsyncSession) -> None:
    await offer_store.insert_new(
        session, [StoredOffer(id="o-new", referral_id=R, partner_id="gp1", position=0, status="queued")]
    )


async def _append(session: AsyncSession) -> None:
    await offer_store.append(session, R, "gp1")


async def _accept(session: AsyncSession) -> None:
    at = START + timedelta(hours=2)
    assert await offer_store.claim_answer(session, "o-0", status="accepted", at=at, reason=None, note=None)


async def _withdraw_acceptance(session: AsyncSession) -> None:
    await offer_store.withdraw_accepted(session, R)


async def _book(session: AsyncSession) -> None:
    report = OutcomeReport(outcome="booked", booked_for=DAY + timedelta(days=3))
    await outcome_store.add(session, referral_id=R, offer_id="o-0", partner_id="gp1", report=report, at=START)


async def _recategorise(session: AsyncSession) -> None:
    await partner_store.keep_newer(session, [changed(partner("gp1", "neurology", name="Dr. Ana Gomez"), version=9)])


CHANGES = {
    "issued": ([], _issue),
    "status changed": ([("gp1", "accepted")], _complete),
    "offers added": ([], _offer),
    "offer appended": ([], _append),
    "offer accepted": ([("gp1", "offered")], _accept),
    "acceptance withdrawn": ([("gp1", "accepted")], _withdraw_acceptance),
    "booking reported": ([("gp1", "accepted")], _book),
    "partner's category changed": ([("gp1", "queued")], _recategorise),
}


def _referral(status: str) -> StoredReferral:
    return StoredReferral(
        id=R,
        reference="HX-FIGURED",
        status=status,
        urgency="soon",
        reasons=["radiating_numbness"],
        note="",
        client_id="figured-client",
        consent={"given": True, "method": "verbal", "scope": ["clinical"]},
        created_by="figured-therapist",
        created_at=START,
        updated_at=START,
    )


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_store_change_refigures_its_referral(settings: Settings, change: str) -> None:
    before, make = CHANGES[change]

    async def prepare() -> None:
        runtime = bootstrap.build(settings)
        try:
            async with runtime.sessions.begin() as session:
                await session.execute(
                    insert(clients).values(
                        id="figured-client",
                        name="Figured Client",
                        language="en",
                        email_consent=False,
                        created_by="figured-therapist",
                        created_at=START,
                    )
                )
                if make is not _issue:
                    values = msgspec.structs.asdict(_referral(status="requested"))
                    del values["client"]
                    await session.execute(insert(referrals).values(**values))
                for position, (partner_id, status) in enumerate(before):
                    answered = START + timedelta(hours=1) if status == "accepted" else None
                    await session.execute(
                        insert(offers).values(
                            id=f"o-{position}",
                            referral_id=R,
                            partner_id=partner_id,
                            position=position,
                            status=status,
                            offered_at=None if status == "queued" else START,
                            responded_at=answered,
                        )
                    )
                await session.run_sync(
                    lambda sync: figure_counters.backfill(sync.connection(), zone=settings.clinic_timezone)
                )
        finally:
            await runtime.close()

    async def run() -> None:
        runtime = bootstrap.build(settings)
        try:
            async with runtime.sessions.begin() as session:
                await make(session)
        finally:
            await runtime.close()

    asyncio.run(prepare())
    was = counted(settings)
    asyncio.run(run())
    now = counted(settings)  # equal to the backfill's
    assert now != was, "the change moved nothing the dashboard counts"


def test_referrals_refigured_many_at_once_count_as_the_backfill(settings: Settings) -> None:
    """A partner's category changed under 1,200 referrals: refigured a chunk at a time."""

    async def run() -> None:
        runtime = bootstrap.build(settings)
        try:
            async with runtime.sessions.begin() as session:
                await session.execute(
                    insert(clients).values(
                        id="many-client",
                        name="Many Client",
                        language="en",
                        email_consent=False,
                        created_by="many-therapist",
                        created_at=START,
                    )
                )
                values = msgspec.structs.asdict(_referral(status="requested"))
                del values["client"]
                await session.execute(
                    insert(referrals),
                    [
                        {
                            **values,
                            "id": f"many-{n:04d}",
                            "reference": f"HX-MANY{n:04d}",
                            "client_id": "many-client",
                            "status": ("requested", "accepted", "completed")[n % 3],
                            "created_at": START + timedelta(hours=n),
                        }
                        for n in range(1200)
                    ],
                )
                await session.execute(
                    insert(offers),
                    [
                        {
                            "id": f"many-offer-{n:04d}",
                            "referral_id": f"many-{n:04d}",
                            "partner_id": "gp1",
                            "position": 0,
                            "status": "accepted" if n % 3 else "offered",
                            "offered_at": START + timedelta(hours=n),
                            "responded_at": START + timedelta(hours=n + n % 7) if n % 3 else None,
                        }
                        for n in range(1200)
                    ],
                )
                await session.run_sync(
                    lambda sync: figure_counters.backfill(sync.connection(), zone=settings.clinic_timezone)
                )
            async with runtime.sessions.begin() as session:
                await _recategorise(session)
        finally:
            await runtime.close()

    asyncio.run(run())
    found = counted(settings)  # equal to the backfill's
    assert {row[3] for row in found["referral_figures"]} == {"neurology"}
    assert len(found["accept_times"]) == 800


def test_partners_sharing_a_name_share_one_median(settings: Settings) -> None:
    """Two partners the replica does not hold are one "unknown partner": one median over both."""
    answered = {"ghost1": [1, 2], "ghost2": [9], "gp1": [4]}  # hours to accept, per partner

    async def run() -> list[tuple[str, float, int]]:
        runtime = bootstrap.build(settings, clock=lambda: START + timedelta(days=1))
        try:
            async with runtime.sessions.begin() as session:
                await session.execute(
                    insert(clients).values(
                        id="figured-client",
                        name="Figured Client",
                        language="en",
                        email_consent=False,
                        created_by="figured-therapist",
                        created_at=START,
                    )
                )
                values = msgspec.structs.asdict(_referral(status="accepted"))
                del values["client"]
                made = [(p, hours) for p, all_hours in answered.items() for hours in all_hours]
                for n, (partner_id, hours) in enumerate(made):
                    await session.execute(
                        insert(referrals).values(**{**values, "id": f"r{n}", "reference": f"HX-R{n}"})
                    )
                    await session.execute(
                        insert(offers).values(
                            id=f"o{n}",
                            referral_id=f"r{n}",
                            partner_id=partner_id,
                            position=0,
                            status="accepted",
                            offered_at=START,
                            responded_at=START + timedelta(hours=hours),
                        )
                    )
                figure_counters.touch(session, referral_ids=[f"r{n}" for n in range(len(made))])
            admin = Staff(id="someone", email="ada@clinic.example", role="admin")
            return (await runtime.referrals.dashboard(staff=admin, days=7)).time_to_accept
        finally:
            await runtime.close()

    assert asyncio.run(run()) == [("unknown partner", 2.0, 3), ("Dr. Ana Gomez", 4.0, 1)]
