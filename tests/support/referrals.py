"""The referrals service's side of the integration tests: what every test starts from (a
therapist, an admin and four partners in the replica), and the steps tests take through the
service as staff and partners would: log in, issue a referral, follow an emailed link, answer,
report, sweep the deadlines with the clock moved."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta

import msgspec
from litestar.testing import TestClient
from redis import Redis
from sqlalchemy import func, select

from services.referrals import bootstrap, identity, jobs
from services.referrals.storage import MIGRATIONS
from shared import codec, database, queues
from shared.config import Settings
from shared.messages import Address, PartnerChanged, PartnerSnapshot, SendEmail

PASSWORD = "correct horse battery"
CONSENT = {"given": True, "method": "verbal", "scope": ["clinical"]}
CLIENT = {"name": "Zelda Quintessa Marchbanks", "postal_code": "33701", "phone": "727-555-0142"}
# Reasons a physician may take (gp1, gp2): soon, and urgent.
SOON = ["radiating_numbness"]
URGENT = ["calf_swelling_one_side"]


def partner(pid: str, category: str, *, name: str | None = None, status: str = "active") -> PartnerSnapshot:
    return PartnerSnapshot(
        id=pid,
        slug=pid,
        name=name or f"Partner {pid}",
        category=category,
        email=f"{pid}@partners.example",
        status=status,
        address=Address(city="St. Petersburg", state="FL", postal_code="33701"),
    )


def deliver(settings, message) -> None:
    """Run one message through the referrals worker's job function, as RQ would."""
    jobs.runtime.install(bootstrap.build(settings))
    jobs.handle(codec.encode(message))


def changed(snapshot: PartnerSnapshot, version: int = 1) -> PartnerChanged:
    return PartnerChanged(partner=snapshot, version=version, changed_at=datetime.now(UTC))


PARTNERS = (
    partner("gp1", "primary_care", name="Dr. Ana Gomez"),
    partner("gp2", "primary_care", name="Dr. Ben Ode"),
    partner("pt1", "physical_therapy", name="Bay Physio"),
    partner("trn", "personal_training", name="Coach Kim"),
)


def seed(settings: Settings) -> None:
    """What every referrals test starts from, in ``settings``' referrals database: the schema, a
    therapist (tess@) and an admin (ada@) with :data:`PASSWORD`, and :data:`PARTNERS` in the
    replica, as the worker applies them."""
    database.upgrade(migrations=MIGRATIONS, url=settings.db_url("referrals"))

    async def run() -> None:
        runtime = bootstrap.build(settings)
        try:
            await identity.add_user(runtime.sessions, email="tess@clinic.example", role="therapist", password=PASSWORD)
            await identity.add_user(runtime.sessions, email="ada@clinic.example", role="admin", password=PASSWORD)
            for snapshot in PARTNERS:
                await runtime.referrals.apply_partner_changed(changed(snapshot))
        finally:
            await runtime.close()  # a PostgreSQL template must have no one connected

    asyncio.run(run())


def login(client: TestClient, email: str = "tess@clinic.example") -> dict[str, str]:
    response = client.post("/api/v1/auth/token", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def count(settings, table) -> int:
    async def run() -> int:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.connect() as connection:
            value = (await connection.execute(select(func.count()).select_from(table))).scalar_one()
        await engine.dispose()
        return value

    return asyncio.run(run())


def queued_emails(redis_url: str) -> list[SendEmail]:
    queue = queues.rq_queue(queues.NOTIFICATIONS, Redis.from_url(redis_url))
    return [codec.decode(job.args[0]) for job in queue.get_jobs()]


def flush(client: TestClient) -> None:
    """Run the app's outbox relay now, on the app's own event loop."""
    with client.portal() as portal:
        portal.call(client.app.state.runtime.relay.flush)


def link_path(email: SendEmail) -> str:
    return re.sub(r"^https?://[^/]+", "", email.context.action_url)


def new_referral(client: TestClient, headers: dict, /, **overrides: object) -> dict:
    """Issue a referral through the API: by default a soon one (offered to one partner at a time)
    to gp1, then gp2. An urgent one (``reasons=URGENT``) is offered to several at once."""
    body = {
        "client": CLIENT,
        "consent": CONSENT,
        "reasons": SOON,
        "partner_ids": ["gp1", "gp2"],
        **overrides,
    }
    response = client.post("/api/v1/referrals", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def csrf(page_text: str) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page_text).group(1)


def log_in(client: TestClient, email: str = "tess@clinic.example", next_url: str = "") -> object:
    token = csrf(client.get("/login").text)
    return client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "next": next_url, "_csrf_token": token},
        follow_redirects=False,
    )


def accept(client: TestClient, settings, headers: dict, /, **overrides: object) -> tuple[dict, str]:
    """Issue a referral, have gp1 accept it; the path of the report link emailed to gp1."""
    referral = new_referral(client, headers, **overrides)
    flush(client)
    offer = [e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1]
    path = link_path(offer)
    assert client.post(path, data={"decision": "accept", "_csrf_token": csrf(client.get(path).text)}).status_code == 200
    flush(client)
    return referral, report_link(settings)


def report_link(settings) -> str:
    emails = [e for e in queued_emails(settings.redis_url) if e.kind == "report_outcome"]
    assert emails and emails[-1].to == "gp1@partners.example"
    raw = msgspec.json.encode(emails[-1]).decode()
    for secret in ("Zelda", "Marchbanks", "calf", "33701"):
        assert secret not in raw
    return link_path(emails[-1])


def in_days(days: int) -> str:
    """The date ``days`` from today, as a date field sends it: a booking the real clock accepts
    (a report's appointment date is from yesterday to a year ahead)."""
    return (date.today() + timedelta(days=days)).isoformat()


def report(client: TestClient, path: str, **fields: str):
    page = client.get(path)
    assert page.status_code == 200, page.text
    return client.post(path, data={**fields, "_csrf_token": csrf(page.text)})


# A Monday, 9:00 in the clinic's time zone (America/New_York, EST). In the future because a
# link's signature also carries its expiry, checked against the real time.
START = datetime(2030, 11, 4, 14, 0, tzinfo=UTC)


class Clock:
    """The service's clock, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def sweep(client: TestClient):
    with client.portal() as portal:
        report = portal.call(client.app.state.runtime.referrals.sweep)
        portal.call(client.app.state.runtime.relay.flush)
    return report


def sent(settings) -> list[tuple[str, str]]:
    return [(e.kind, e.to) for e in queued_emails(settings.redis_url)]
