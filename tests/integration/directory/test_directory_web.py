"""The directory app over HTTP, on a real database (SQLite, and PostgreSQL when configured) and a
real Redis: partner API, publication through the outbox, public pages, ops endpoints."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest
from litestar.testing import TestClient
from redis import Redis
from sqlalchemy import select

from services.directory.storage import MIGRATIONS, outbox
from services.directory.web.app import create_app
from shared import database, queues
from shared.auth import Staff, issue_staff_token
from shared.config import Settings, load_settings
from tests.support.directory import (
    ADMIN,
    METRICS_TOKEN,
    PARTNER,
    THERAPIST,
    count_rows,
    create,
    fields_at_fault,
    make_settings,
    published,
)

# --- create and publish --------------------------------------------------------------------------


def test_create_stores_an_active_partner_and_publishes_version_1(client: TestClient, settings: Settings) -> None:
    created = create(client)

    assert created["status"] == "active"
    assert created["version"] == 1
    assert created["slug"] == "bay-physical-therapy"
    assert created["email"] == PARTNER["email"]
    assert created["address"]["city"] == "St. Petersburg"
    assert created["location"] == PARTNER["location"]
    assert count_rows(settings.directory_db_url) == (1, 1)

    [message] = published(settings.redis_url, expected=1)
    assert message.version == 1
    assert message.partner.id == created["id"]
    assert message.partner.slug == "bay-physical-therapy"
    assert message.partner.email == PARTNER["email"]
    assert message.partner.status == "active"
    assert message.partner.languages == ["English", "Spanish"]


def test_the_outbox_id_is_the_job_id_and_the_row_is_marked_sent(client: TestClient, settings: Settings) -> None:
    create(client)
    published(settings.redis_url, expected=1)

    async def rows() -> list:
        engine = database.create_engine(settings.directory_db_url)
        try:
            async with engine.connect() as connection:
                return (await connection.execute(select(outbox.c.id, outbox.c.queue, outbox.c.sent_at))).all()
        finally:
            await engine.dispose()

    deadline = time.monotonic() + 5
    while (found := asyncio.run(rows())) and found[0].sent_at is None and time.monotonic() < deadline:
        time.sleep(0.05)
    [row] = found
    assert row.queue == "referrals"
    assert row.sent_at is not None
    job_ids = queues.rq_queue(queues.REFERRALS, Redis.from_url(settings.redis_url)).job_ids
    assert job_ids == [row.id]


def test_same_names_get_distinct_slugs(client: TestClient) -> None:
    assert create(client)["slug"] == "bay-physical-therapy"
    assert create(client)["slug"] == "bay-physical-therapy-2"


def test_create_may_state_another_status_and_defaults_the_optional_fields(client: TestClient) -> None:
    minimal = {"name": "Ana Ruiz", "category": "dietitian", "email": "ana@ruiz.example", "status": "pending"}
    created = client.post("/api/v1/partners", json=minimal, headers=ADMIN).json()

    assert created["status"] == "pending"
    assert created["accepting_new_clients"] == "yes"
    assert (created["address"], created["location"], created["phone"]) == (None, None, None)
    assert (created["languages"], created["telehealth"], created["listed"]) == ([], False, True)


# --- update and archive --------------------------------------------------------------------------


def test_patch_bumps_the_version_and_publishes_it(client: TestClient, settings: Settings) -> None:
    created = create(client)

    response = client.patch(
        f"/api/v1/partners/{created['id']}",
        json={"version": 1, "accepting_new_clients": "waitlist", "phone": None},
        headers=ADMIN,
    )

    assert response.status_code == 200, response.text
    updated = response.json()
    assert (updated["version"], updated["accepting_new_clients"], updated["phone"]) == (2, "waitlist", None)
    assert updated["name"] == PARTNER["name"]  # omitted fields stay
    assert updated["slug"] == created["slug"]
    first, second = published(settings.redis_url, expected=2)
    assert (first.version, second.version) == (1, 2)
    assert second.partner.accepting_new_clients == "waitlist"


def test_a_patch_that_changes_nothing_keeps_the_version(client: TestClient, settings: Settings) -> None:
    created = create(client)

    url = f"/api/v1/partners/{created['id']}"

    response = client.patch(url, json={"version": 1, "name": PARTNER["name"]}, headers=ADMIN)

    assert response.json()["version"] == 1
    assert count_rows(settings.directory_db_url) == (1, 1)


def test_a_stale_version_is_a_conflict_carrying_the_current_version(client: TestClient, settings: Settings) -> None:
    created = create(client)
    url = f"/api/v1/partners/{created['id']}"
    assert client.patch(url, json={"version": 1, "name": "Bay PT"}, headers=ADMIN).status_code == 200

    response = client.patch(url, json={"version": 1, "name": "Bay Physio"}, headers=ADMIN)

    assert response.status_code == 409
    body = response.json()
    assert body["status_code"] == 409
    assert fields_at_fault(response) == ["version"]
    assert body["extra"]["current_version"] == 2
    assert client.get(url).json()["name"] == "Bay PT"
    assert count_rows(settings.directory_db_url) == (1, 2)


def test_status_changes_follow_the_allowed_transitions(client: TestClient) -> None:
    created = create(client)
    url = f"/api/v1/partners/{created['id']}"

    paused = client.patch(url, json={"version": 1, "status": "paused"}, headers=ADMIN)
    assert (paused.status_code, paused.json()["status"]) == (200, "paused")
    back_to_pending = client.patch(url, json={"version": 2, "status": "pending"}, headers=ADMIN)
    assert back_to_pending.status_code == 409
    assert fields_at_fault(back_to_pending) == ["status"]


def test_archive_hides_the_partner_from_the_public(client: TestClient, settings: Settings) -> None:
    created = create(client)
    other = create(client, name="Gulf Chiropractic", category="chiropractic")
    assert client.get(f"/partners-in-health/{created['slug']}").status_code == 200

    response = client.post(f"/api/v1/partners/{created['id']}/archive", headers=ADMIN)

    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["version"]) == ("archived", 2)
    listed = client.get("/api/v1/partners").json()["items"]
    assert [p["id"] for p in listed] == [other["id"]]
    assert client.get(f"/api/v1/partners/{created['id']}").status_code == 404
    assert client.get(f"/api/v1/partners/{created['id']}", headers=ADMIN).json()["status"] == "archived"
    page = client.get("/partners-in-health")
    assert "Gulf Chiropractic" in page.text and PARTNER["name"] not in page.text
    assert client.get(f"/partners-in-health/{created['slug']}").status_code == 404
    messages = published(settings.redis_url, expected=3)
    assert [(m.partner.id, m.version, m.partner.status) for m in messages if m.partner.id == created["id"]] == [
        (created["id"], 1, "active"),
        (created["id"], 2, "archived"),
    ]


def test_archive_is_idempotent_and_honours_a_version(client: TestClient) -> None:
    created = create(client)
    url = f"/api/v1/partners/{created['id']}/archive"

    assert client.post(url, json={"version": 3}, headers=ADMIN).status_code == 409
    assert client.post(url, json={"version": 1}, headers=ADMIN).json()["version"] == 2
    again = client.post(url, headers=ADMIN)
    assert (again.status_code, again.json()["version"]) == (200, 2)
    revive = {"version": 2, "status": "active"}
    reactivate = client.patch(f"/api/v1/partners/{created['id']}", json=revive, headers=ADMIN)
    assert reactivate.status_code == 409


def test_unknown_partner_is_404_naming_the_id(client: TestClient) -> None:
    for response in (
        client.get("/api/v1/partners/nope"),
        client.patch("/api/v1/partners/nope", json={"version": 1, "name": "x"}, headers=ADMIN),
        client.post("/api/v1/partners/nope/archive", headers=ADMIN),
    ):
        assert response.status_code == 404
        assert fields_at_fault(response) == ["id"]


# --- who may do what -----------------------------------------------------------------------------


def test_admin_routes_need_a_token_and_the_admin_role(client: TestClient, settings: Settings) -> None:
    created = create(client)
    url = f"/api/v1/partners/{created['id']}"
    attempts = [
        ("POST", "/api/v1/partners", PARTNER),
        ("PATCH", url, {"version": 1, "name": "Hijacked"}),
        ("POST", f"{url}/archive", None),
    ]
    for method, path, body in attempts:
        assert client.request(method, path, json=body).status_code == 401
        assert client.request(method, path, json=body, headers={"Authorization": "Bearer forged"}).status_code == 401
        assert client.request(method, path, json=body, headers=THERAPIST).status_code == 403
    signed_elsewhere = issue_staff_token(
        key="another-key-that-is-also-32-bytes-or-more",
        staff=Staff(id="x", email="x@y.example", role="admin"),
        ttl=timedelta(hours=1),
    )
    foreign = {"Authorization": f"Bearer {signed_elsewhere}"}
    assert client.post("/api/v1/partners", json=PARTNER, headers=foreign).status_code == 401
    assert client.get(url).json()["name"] == PARTNER["name"]
    assert count_rows(settings.directory_db_url) == (1, 1)


def test_the_public_never_sees_referral_emails_or_hidden_partners(client: TestClient) -> None:
    shown = create(client)
    unlisted = create(client, name="Quiet Clinic", listed=False)
    pending = create(client, name="New Clinic", status="pending")

    public = client.get(f"/api/v1/partners/{shown['id']}").json()
    assert "email" not in public
    assert client.get(f"/api/v1/partners/{shown['id']}", headers=ADMIN).json()["email"] == PARTNER["email"]
    for hidden in (unlisted, pending):
        assert client.get(f"/api/v1/partners/{hidden['id']}").status_code == 404
        assert client.get(f"/api/v1/partners/{hidden['id']}", headers=THERAPIST).status_code == 404
        assert client.get(f"/api/v1/partners/{hidden['id']}", headers=ADMIN).status_code == 200
    assert [p["id"] for p in client.get("/api/v1/partners").json()["items"]] == [shown["id"]]
    assert PARTNER["email"] not in client.get("/partners-in-health").text
    assert PARTNER["email"] not in client.get(f"/partners-in-health/{shown['slug']}").text


# --- refused input stores nothing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({**PARTNER, "category": "astrology"}, 422, "category"),
        ({**PARTNER, "email": "not-an-email"}, 422, "email"),
        ({**PARTNER, "name": "  "}, 422, "name"),
        ({**PARTNER, "phone": "12"}, 422, "phone"),
        ({**PARTNER, "location": {"lat": 95, "lon": 0}}, 422, "location.lat"),
        ({**PARTNER, "name": 42}, 400, "name"),
        ({**PARTNER, "telehealth": "sometimes"}, 400, "telehealth"),
        ({**PARTNER, "accepting_new_clients": "maybe"}, 400, "accepting_new_clients"),
        ({**PARTNER, "address": {"line1": 1}}, 400, "address.line1"),
        ({**PARTNER, "status": "archived"}, 400, "status"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_stores_nothing(
    client: TestClient, settings: Settings, body: dict, status: int, field: str
) -> None:
    response = client.post("/api/v1/partners", json=body, headers=ADMIN)

    assert response.status_code == status, response.text
    assert fields_at_fault(response) == [field]
    assert count_rows(settings.directory_db_url) == (0, 0)


def test_an_address_the_notifier_could_not_send_to_is_refused(client: TestClient, settings: Settings) -> None:
    """Issue 16, item 9: ``victim,evil@evil.com`` was stored (201), then refused by the notifier."""
    for email in ("victim,evil@evil.com", "a@b.example<script>", "tab\there@b.example", "x@nodot"):
        refused = client.post("/api/v1/partners", json={**PARTNER, "email": email}, headers=ADMIN)
        assert refused.status_code == 422 and fields_at_fault(refused) == ["email"], email
    assert count_rows(settings.directory_db_url) == (0, 0)


def test_missing_fields_and_malformed_json_are_400(client: TestClient, settings: Settings) -> None:
    missing = client.post("/api/v1/partners", json={"category": "dietitian", "email": "a@b.example"}, headers=ADMIN)
    assert missing.status_code == 400
    assert "`name`" in missing.json()["extra"][0]["message"]

    malformed = client.post(
        "/api/v1/partners", content=b'{"name": "Bay', headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert malformed.status_code == 400
    assert malformed.json()["status_code"] == 400
    assert count_rows(settings.directory_db_url) == (0, 0)


def test_unknown_fields_are_ignored(client: TestClient) -> None:
    assert client.post("/api/v1/partners", json={**PARTNER, "npi": "1234567893"}, headers=ADMIN).status_code == 201


def test_a_refused_patch_changes_nothing(client: TestClient, settings: Settings) -> None:
    created = create(client)
    url = f"/api/v1/partners/{created['id']}"

    assert client.patch(url, json={"version": 1, "email": "nope"}, headers=ADMIN).status_code == 422
    assert client.patch(url, json={"version": "one"}, headers=ADMIN).status_code == 400
    assert client.patch(url, json={"name": "No version"}, headers=ADMIN).status_code == 400

    assert client.get(url, headers=ADMIN).json()["email"] == PARTNER["email"]
    assert count_rows(settings.directory_db_url) == (1, 1)


# --- public search, categories, pages ------------------------------------------------------------


def test_search_filters_by_category_and_name_and_pages_with_a_cursor(client: TestClient) -> None:
    for name in ("Alpha PT", "Beta PT", "Gamma PT"):
        create(client, name=name)
    create(client, name="Alpha Chiro", category="chiropractic")

    by_category = client.get("/api/v1/partners", params={"category": "physical_therapy"}).json()["items"]
    assert [p["name"] for p in by_category] == ["Alpha PT", "Beta PT", "Gamma PT"]
    assert [p["name"] for p in client.get("/api/v1/partners", params={"q": "alpha"}).json()["items"]] == [
        "Alpha Chiro",
        "Alpha PT",
    ]
    assert client.get("/api/v1/partners", params={"q": "100%"}).json()["items"] == []

    first = client.get("/api/v1/partners", params={"limit": 3}).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = client.get("/api/v1/partners", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [p["name"] for p in second["items"]] == ["Gamma PT"]
    assert second["next_cursor"] is None


def test_search_refuses_bad_parameters_naming_them(client: TestClient) -> None:
    assert fields_at_fault(client.get("/api/v1/partners", params={"category": "astrology"})) == ["category"]
    assert fields_at_fault(client.get("/api/v1/partners", params={"cursor": "garbage!"})) == ["cursor"]
    too_many = client.get("/api/v1/partners", params={"limit": 1000})
    assert too_many.status_code == 400
    assert fields_at_fault(too_many) == ["limit"]


def test_categories_are_the_shared_vocabulary(client: TestClient) -> None:
    response = client.get("/api/v1/categories")

    assert response.status_code == 200
    slugs = [category["slug"] for category in response.json()]
    assert "physical_therapy" in slugs and "personal_training" in slugs
    assert {"slug": "personal_training", "label": "Personal training", "kind": "non_clinical"} in response.json()


def test_partners_in_health_groups_listed_partners_by_category(client: TestClient) -> None:
    create(client)
    create(client, name="Coach <script>alert(1)</script>", category="personal_training")

    page = client.get("/partners-in-health")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.index("Physical therapy") < page.text.index("Personal training")
    assert "<script>alert(1)</script>" not in page.text
    assert "Coach &lt;script&gt;" in page.text
    detail = client.get("/partners-in-health/bay-physical-therapy")
    assert detail.status_code == 200
    assert "Bay Physical Therapy" in detail.text and "+17275550100" in detail.text
    missing = client.get("/partners-in-health/nobody")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")


# --- operations ----------------------------------------------------------------------------------


def test_health_ready_metrics_and_openapi(client: TestClient) -> None:
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})

    client.get("/api/v1/categories")
    # The test client's address is no IP, so only the monitoring token opens /metrics.
    assert client.get("/metrics").status_code == 403
    metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "handoff_requests_total" in metrics.text

    schema = client.get("/schema/openapi.json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"get", "post"} <= set(paths["/api/v1/partners"])
    assert {"get", "patch"} <= set(paths["/api/v1/partners/{partner_id}"])
    assert "post" in paths["/api/v1/partners/{partner_id}/archive"]
    assert "get" in paths["/api/v1/categories"]


def test_metrics_are_for_the_monitoring_system_only(client: TestClient) -> None:
    """Issue 16, item 14: /metrics was public."""
    for headers in ({}, {"Authorization": "Bearer guess"}, ADMIN):
        refused = client.get("/metrics", headers=headers)
        assert refused.status_code == 403 and "handoff_requests_total" not in refused.text
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200


def test_metrics_addresses_are_networks() -> None:
    from shared.config import ConfigError
    from shared.metrics import allowed

    networks = load_settings(environ={}, metrics_allow="10.0.3.7, 192.168.8.0/24,::1").metrics_networks
    assert [allowed(host, networks) for host in ("10.0.3.7", "192.168.8.200", "::1", "10.0.3.8", "testclient")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert allowed("127.0.0.1", load_settings(environ={}).metrics_networks)  # the default: this machine
    with pytest.raises(ConfigError, match="HANDOFF_METRICS_ALLOW"):
        load_settings(environ={"HANDOFF_METRICS_ALLOW": "10.0.0.0/8,prometheus"})


def test_ready_is_503_naming_redis_when_redis_is_unreachable(
    tmp_path: Path, db_url: str, closed_redis_url: str
) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)

    with TestClient(create_app(make_settings(tmp_path, db_url=db_url, redis_url=closed_redis_url))) as client:
        response = client.get("/ready")
        assert client.get("/health").status_code == 200

    assert response.status_code == 503
    assert "redis" in response.json()["extra"]
    assert "database" not in response.json()["extra"]


def test_partners_are_kept_while_redis_is_down_and_published_when_it_returns(
    tmp_path: Path, db_url: str, redis_url: str, closed_redis_url: str
) -> None:
    database.upgrade(migrations=MIGRATIONS, url=db_url)
    # Staff requests are refused while Redis is away (their sign-ins cannot be checked), so the
    # partner is added as `handoff partners import` adds one: through the service itself.
    from services.directory import bootstrap
    from services.directory.domain import PartnerDetails

    async def add() -> str:
        runtime = bootstrap.build(make_settings(tmp_path, db_url=db_url, redis_url=closed_redis_url), use="cli")
        try:
            details = PartnerDetails(name=PARTNER["name"], category=PARTNER["category"], email=PARTNER["email"])
            return (await runtime.directory.create(details=details)).id
        finally:
            await runtime.close()

    created = asyncio.run(add())
    assert count_rows(db_url) == (1, 1)
    with TestClient(create_app(make_settings(tmp_path, db_url=db_url, redis_url=redis_url))):
        [message] = published(redis_url, expected=1)
    assert message.partner.id == created
