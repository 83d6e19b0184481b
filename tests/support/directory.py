"""The directory's side of the integration tests: a partner as the API takes it, settings aimed
at the test's database and Redis, staff tokens signed with the test's key, and what the service
stored and published."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import datetime, timedelta
from pathlib import Path

from litestar.testing import TestClient
from redis import Redis
from rq.job import Job
from rq.serializers import JSONSerializer
from sqlalchemy import func, select, update

from services.directory.storage import outbox, partner_history, partners
from shared import codec, database, queues
from shared.auth import Staff, issue_staff_token
from shared.config import Settings, load_settings
from shared.messages import PartnerChanged, PartnersChanged, SendEmail

SECRET = "directory-test-secret-of-at-least-32-bytes"
METRICS_TOKEN = "directory-test-metrics-token"

PARTNER = {
    "name": "Bay Physical Therapy",
    "category": "physical_therapy",
    "email": "intake@baypt.example",
    "phone": "+17275550100",
    "address": {"line1": "100 Central Ave", "city": "St. Petersburg", "state": "FL", "postal_code": "33701"},
    "location": {"lat": 27.7709, "lon": -82.6393},
    "accepting_new_clients": "yes",
    "languages": ["English", "Spanish"],
    "telehealth": True,
}


def make_settings(tmp_path: Path, *, db_url: str, redis_url: str) -> Settings:
    return load_settings(
        environ={},
        data_dir=str(tmp_path / "data"),
        directory_db_url=db_url,
        redis_url=redis_url,
        secret_key=SECRET,
        relay_interval_seconds=0.05,
        metrics_token=METRICS_TOKEN,
    )


def bearer(role: str) -> dict[str, str]:
    staff = Staff(id=f"{role}-1", email=f"{role}@clinic.example", role=role)  # type: ignore[arg-type]
    return {"Authorization": f"Bearer {issue_staff_token(key=SECRET, staff=staff, ttl=timedelta(hours=1))}"}


ADMIN = bearer("admin")
THERAPIST = bearer("therapist")


def create(client: TestClient, **changes: object) -> dict:
    response = client.post("/api/v1/partners", json={**PARTNER, **changes}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()


def fields_at_fault(response) -> list[str]:
    """The fields an error names: Litestar lists its validation problems, a domain error carries
    one ``key`` (see shared.web)."""
    extra = response.json()["extra"]
    problems = extra if isinstance(extra, list) else [extra]
    return [problem["key"] for problem in problems if "key" in problem]


def count_rows(db_url: str) -> tuple[int, int]:
    """(partners, outbox rows) in the service's database."""

    async def count() -> tuple[int, int]:
        engine = database.create_engine(db_url)
        try:
            async with engine.connect() as connection:
                stored = (await connection.execute(select(func.count()).select_from(partners))).scalar_one()
                staged = (await connection.execute(select(func.count()).select_from(outbox))).scalar_one()
                return stored, staged
        finally:
            await engine.dispose()

    return asyncio.run(count())


def backdate(db_url: str, *, partner_id: str, at: datetime) -> None:
    """Make ``at`` the instant the partner was last confirmed and every one of its history entries
    was made: a known instant for pages to show (the service stamps its own clock's)."""

    async def stamp() -> None:
        engine = database.create_engine(db_url)
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    update(partners).where(partners.c.id == partner_id).values(last_confirmed_at=at)
                )
                await connection.execute(
                    update(partner_history).where(partner_history.c.partner_id == partner_id).values(at=at)
                )
        finally:
            await engine.dispose()

    asyncio.run(stamp())


def published(redis_url: str, *, expected: int, timeout: float = 10.0) -> list[PartnerChanged]:
    """The partner changes on the real "referrals" queue, once ``expected`` have arrived: each
    PartnerChanged job, and each change of a PartnersChanged job (an import's, a republish's)."""
    connection = Redis.from_url(redis_url)
    queue = queues.rq_queue(queues.REFERRALS, connection)
    deadline = time.monotonic() + timeout
    while True:
        messages = []
        for job_id in queue.job_ids:
            job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
            assert job.func_name == queues.ROUTES[queues.REFERRALS].handler
            message = codec.decode(job.args[0])
            assert isinstance(message, PartnerChanged | PartnersChanged)
            messages += message.changes if isinstance(message, PartnersChanged) else [message]
        if len(messages) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    connection.close()
    assert len(messages) == expected, messages
    return messages


# The admin pages' partner form, and a CSV import every row of which is good.
FORM = {
    "name": "Bay Physical Therapy",
    "category": "physical_therapy",
    "email": "intake@baypt.example",
    "phone": "(727) 555-0100",
    "postal_code": "33701",
    "languages": "English; Spanish",
    "accepting_new_clients": "yes",
    "telehealth": "yes",
    "listed": "yes",
    "status": "active",
}


GOOD_CSV = (
    "name,category,email,phone,postal_code,npi,languages\n"
    "Bay Physical Therapy,physical_therapy,intake@baypt.example,727-555-0100,33701,1234567893,English; Spanish\n"
    "Gulf Chiropractic,chiropractic,front@gulfchiro.example,,33705,,\n"
    "Ana Ruiz,dietitian,ana@ruiz.example,,33710,,Spanish\n"
)


def staged_emails(db_url: str) -> list[SendEmail]:
    """Every email the directory staged in its outbox, oldest first."""

    async def read() -> list[SendEmail]:
        engine = database.create_engine(db_url)
        try:
            async with engine.connect() as connection:
                rows = await connection.execute(select(outbox.c.payload).order_by(outbox.c.created_at, outbox.c.id))
                messages = [codec.decode(payload) for payload in rows.scalars()]
        finally:
            await engine.dispose()
        return [message for message in messages if isinstance(message, SendEmail)]

    return asyncio.run(read())


def manage_path(email: SendEmail) -> str:
    """The ``/manage/{token}`` path of an email's link."""
    url = email.context.action_url
    assert "/manage/" in url, url
    return url[url.index("/manage/") :]


def form_csrf(page_text: str) -> str:
    found = re.search(r'name="_csrf_token" value="([^"]+)"', page_text)
    assert found, "the page has no CSRF field"
    return found.group(1)


def form_action(page_text: str) -> str:
    """The path the manage page's forms post to (their one-use token)."""
    found = re.search(r'action="(/manage/[^"]+)"', page_text)
    assert found, "the page has no manage form"
    return found.group(1)
