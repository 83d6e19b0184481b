"""The public Partners in Health pages over HTTP on a real database and Redis: what a client
sees, what it never sees, accessibility structure, JSON-LD and OpenGraph, and caching."""

from __future__ import annotations

import json
import logging
import re

import pytest
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from services.directory.web.pages import PREVIEW
from shared import logs
from tests.support.directory import ADMIN, METRICS_TOKEN, PARTNER, create
from tests.support.pages import assert_accessible, structure


def test_the_page_lists_partners_by_kind_with_filters_and_a_detail_page(client: TestClient) -> None:
    pt = create(
        client,
        specialties=["knees"],
        hours="Mon–Fri 8–5",
        accepts_referrals_from=["massage therapist"],
        bio="We fix knees.",
        website="https://baypt.example",
    )
    create(client, name="Gulf Chiropractic", category="chiropractic")

    page = client.get("/partners-in-health")

    assert page.status_code == 200
    html = page.text
    assert html.index('id="kind-physical_therapy"') < html.index('id="kind-chiropractic"')
    for shown in (
        "Bay Physical Therapy",
        "+17275550100",
        "Mon–Fri 8–5",
        "English, Spanish",
        "St. Petersburg",
    ):
        assert shown in html, shown
    # Whom a partner takes referrals from is for professionals, not for clients (issue 13).
    assert "massage therapist" not in html
    assert_accessible(structure(html))
    detail = client.get(f"/partners-in-health/{pt['slug']}")
    assert detail.status_code == 200
    for shown in ("We fix knees.", "knees", "https://baypt.example", "Accepting new clients", "Offered"):
        assert shown in detail.text, shown
    assert_accessible(structure(detail.text))
    assert PARTNER["email"] not in html and PARTNER["email"] not in detail.text


def test_filters_work_without_javascript(client: TestClient) -> None:
    create(client, name="Near PT", location={"lat": 27.7723, "lon": -82.6386})
    create(client, name="Tampa PT", location={"lat": 27.9506, "lon": -82.4572}, accepting_new_clients="no")
    create(client, name="Gulf Chiropractic", category="chiropractic")

    near = client.get("/partners-in-health", params={"zip": "33701", "radius_km": "10"})
    assert "Near PT" in near.text and "Tampa PT" not in near.text
    # Miles by default (HANDOFF_DISTANCE_UNIT); a partner at its own ZIP's centre is "In 33701",
    # not "0.0 away" (issue 13).
    assert "In 33701" in near.text and "0.0" not in near.text
    accepting = client.get("/partners-in-health", params={"accepting": "yes", "category": "physical_therapy"})
    assert (
        "Near PT" in accepting.text and "Tampa PT" not in accepting.text and "Gulf Chiropractic" not in accepting.text
    )
    searched = client.get("/partners-in-health", params={"q": "gulf"})
    assert "Gulf Chiropractic" in searched.text and "Near PT" not in searched.text
    bad = client.get("/partners-in-health", params={"zip": "abc"})
    assert bad.status_code == 400 and "ZIP" in bad.text and bad.headers["content-type"].startswith("text/html")


def test_json_ld_and_opengraph_describe_each_partner(client: TestClient) -> None:
    pt = create(client, bio="Knees </script><script>alert(1)</script> & backs")

    detail = structure(client.get(f"/partners-in-health/{pt['slug']}").text)
    [block] = detail.jsonld
    data = json.loads(block)
    assert data["@context"] == "https://schema.org"
    assert data["name"] == PARTNER["name"]
    assert data["description"] == "Knees </script><script>alert(1)</script> & backs"
    assert data["address"]["postalCode"] == "33701"
    assert data["url"].endswith(f"/partners-in-health/{pt['slug']}")
    assert detail.meta["og:title"].startswith(PARTNER["name"])
    assert detail.meta["og:url"] == data["url"]
    index = structure(client.get("/partners-in-health").text)
    [listing] = index.jsonld
    assert [item["name"] for item in json.loads(listing)["itemListElement"]] == [PARTNER["name"]]
    assert index.meta["og:type"] == "website"


def test_a_bio_holding_script_is_shown_as_text(client: TestClient) -> None:
    pt = create(client, bio="<script>alert('x')</script>", name="<b>Bold</b> PT")

    for html in (client.get("/partners-in-health").text, client.get(f"/partners-in-health/{pt['slug']}").text):
        assert "<script>alert(" not in html
        assert "<b>Bold</b>" not in html
    assert "&lt;script&gt;alert(" in client.get(f"/partners-in-health/{pt['slug']}").text


def test_a_change_shows_at_once_and_archived_partners_never(client: TestClient) -> None:
    assert "No partners are listed yet" in client.get("/partners-in-health").text
    pt = create(client)
    assert PARTNER["name"] in client.get("/partners-in-health").text

    client.post(f"/api/v1/partners/{pt['id']}/archive", headers=ADMIN)

    assert PARTNER["name"] not in client.get("/partners-in-health").text
    assert client.get(f"/partners-in-health/{pt['slug']}").status_code == 404
    assert PARTNER["name"] not in client.get("/partners-in-health", params={"q": "bay"}).text


def test_pages_carry_an_etag_that_changes_with_the_directory(client: TestClient) -> None:
    pt = create(client)
    first = client.get("/partners-in-health")
    tag = first.headers["etag"]
    assert "no-cache" in first.headers["cache-control"] and "public" in first.headers["cache-control"]
    assert "set-cookie" not in first.headers
    assert first.headers["content-type"] == "text/html; charset=utf-8"  # the charset said once

    again = client.get("/partners-in-health", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    other_page = client.get("/partners-in-health", params={"q": "bay"})
    assert other_page.headers["etag"] != tag

    client.patch(f"/api/v1/partners/{pt['id']}", json={"version": 1, "name": "Renamed PT"}, headers=ADMIN)

    changed = client.get("/partners-in-health", headers={"If-None-Match": tag})
    assert changed.status_code == 200 and "Renamed PT" in changed.text
    assert changed.headers["etag"] != tag


def test_a_kept_page_is_answered_before_the_app_with_the_same_bytes_logged_and_counted(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 19: the plain page and a partner's page, once kept, are answered before routing and
    middleware (services.directory.web.page_cache.front), byte for byte as the app answers them,
    with a request id of their own, an access-log line and the request counter."""
    pt = create(client)
    caplog.set_level(logging.INFO, logger="handoff.access")
    caplog.handler.addFilter(logs.Context())  # the request id, as the process's handlers add it

    def counted() -> dict[tuple[str, int], float]:
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
        return {
            (sample.labels["path"], int(sample.labels["status_code"])): sample.value
            for family in text_string_to_metric_families(scraped)
            for sample in family.samples
            if sample.name == "handoff_requests_total" and sample.labels["method"] == "GET"
        }

    def without_request_id(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return [(name, value) for name, value in headers if name != "x-request-id"]

    for path, route in (
        ("/partners-in-health", "/partners-in-health"),
        (f"/partners-in-health/{pt['slug']}", "/partners-in-health/{slug}"),
    ):
        rendered = client.get(path)  # rendered by the app, and kept
        before = counted().get((route, 200), 0)
        caplog.clear()
        kept = client.get(path, headers={"X-Request-ID": "edge-req-0019"})
        held = client.get(path, headers={"If-None-Match": f'"x", W/{rendered.headers["etag"]}'})

        assert kept.status_code == 200 and kept.content == rendered.content
        assert without_request_id(kept.headers.multi_items()) == without_request_id(rendered.headers.multi_items())
        assert kept.headers["x-request-id"] == "edge-req-0019"
        assert rendered.headers["x-request-id"] != held.headers["x-request-id"]
        assert held.status_code == 304 and held.content == b"" and held.headers["etag"] == rendered.headers["etag"]
        assert held.headers["content-security-policy"] == rendered.headers["content-security-policy"]
        lines = [r for r in caplog.records if r.name == "handoff.access"]
        assert [(r.fields["route"], r.fields["status"]) for r in lines] == [(route, 200), (route, 304)]
        assert [getattr(r, "request_id", "") for r in lines] == ["edge-req-0019", held.headers["x-request-id"]]
        assert counted()[(route, 200)] == before + 1 and counted()[(route, 304)] >= 1


def test_the_unfiltered_page_shows_a_few_per_kind_and_links_to_the_rest(client: TestClient) -> None:
    for n in range(8):
        create(client, name=f"PT {n}")
    html = client.get("/partners-in-health").text
    # A few per kind (PREVIEW, 4 since issue 13 kept the page short on a phone).
    assert "PT 0" in html and f"PT {PREVIEW - 1}" in html and f"PT {PREVIEW}" not in html
    assert re.search(r'href="/partners-in-health\?category=physical_therapy">See all 8', html)
    everything = client.get("/partners-in-health", params={"category": "physical_therapy"}).text
    assert "PT 7" in everything
