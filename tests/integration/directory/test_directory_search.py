"""``GET /api/v1/partners`` with the Contract's filters, on a real database and Redis:
nearest-first with distances, ZIP centroids, keyset pages, and 400s naming the parameter."""

from __future__ import annotations

import pytest
from litestar.testing import TestClient

from tests.support.directory import ADMIN, create, fields_at_fault
from tests.support.directory import PARTNER as PARTNER_BODY

DOWNTOWN = {"lat": 27.7723, "lon": -82.6386}  # ZIP 33701's centroid
ST_PETE = "27.7723,-82.6386"


def at(lat: float, lon: float) -> dict:
    return {"location": {"lat": lat, "lon": lon}}


@pytest.fixture
def spread(client: TestClient) -> dict[str, dict]:
    """Partners at known distances from downtown St. Petersburg."""
    return {
        "near_pt": create(client, name="Near PT", **at(27.7723, -82.6386)),  # 0 km
        "mid_pt": create(client, name="Mid PT", languages=["English"], **at(27.8627, -82.6386)),  # ~10 km north
        "far_pt": create(client, name="Far PT", telehealth=False, **at(28.2, -82.6386)),  # ~47.6 km north
        "tampa_chiro": create(client, name="Tampa Chiro", category="chiropractic", **at(27.9506, -82.4572)),  # ~27 km
        "nowhere_pt": create(client, name="Nowhere PT", location=None, address=None),
        "waitlist_pt": create(
            client, name="Waitlist PT", accepting_new_clients="waitlist", languages=["Vietnamese"], **at(27.78, -82.64)
        ),
    }


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


def test_near_orders_by_distance_within_the_radius_and_says_how_far(client: TestClient, spread: dict) -> None:
    response = client.get("/api/v1/partners", params={"near": ST_PETE, "radius_km": 30, "category": "physical_therapy"})

    assert names(response) == ["Near PT", "Waitlist PT", "Mid PT"]
    distances = [item["distance_km"] for item in response.json()["items"]]
    assert distances[0] == 0
    assert distances == sorted(distances)
    assert 9.5 < distances[2] < 10.5
    assert "distance_km" not in client.get("/api/v1/partners").json()["items"][0]


def test_zip_searches_from_the_zip_centroid_with_the_default_radius(client: TestClient, spread: dict) -> None:
    found = names(client.get("/api/v1/partners", params={"zip": "33701"}))
    assert found[:2] == ["Near PT", "Waitlist PT"]
    assert "Far PT" in found  # ~47.6 km: within the default 50 km
    assert "Nowhere PT" not in found
    assert names(client.get("/api/v1/partners", params={"zip": "33701", "radius_km": 20})) == [
        "Near PT",
        "Waitlist PT",
        "Mid PT",
    ]


def test_filters_combine(client: TestClient, spread: dict) -> None:
    assert names(client.get("/api/v1/partners", params={"accepting": "waitlist"})) == ["Waitlist PT"]
    assert names(client.get("/api/v1/partners", params={"language": "vietnamese"})) == ["Waitlist PT"]
    assert names(client.get("/api/v1/partners", params={"language": "Viet"})) == []
    assert "Far PT" not in names(client.get("/api/v1/partners", params={"telehealth": "true"}))
    assert names(client.get("/api/v1/partners", params={"telehealth": "false"})) == ["Far PT"]
    assert names(client.get("/api/v1/partners", params={"q": "tampa"})) == ["Tampa Chiro"]


def test_q_matches_practice_specialties_and_city(client: TestClient) -> None:
    create(client, name="A", practice="Kinetic Coast", specialties=["vestibular rehab"])
    create(client, name="B", address={"city": "Clearwater", "postal_code": "33755"})
    assert names(client.get("/api/v1/partners", params={"q": "kinetic"})) == ["A"]
    assert names(client.get("/api/v1/partners", params={"q": "VESTIBULAR rehab"})) == ["A"]
    assert names(client.get("/api/v1/partners", params={"q": "clearwater"})) == ["B"]


def test_near_pages_follow_the_distance_order_without_repeats(client: TestClient, spread: dict) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params = {"near": ST_PETE, "radius_km": 100, "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/partners", params=params).json()
        seen += [item["name"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Near PT", "Waitlist PT", "Mid PT", "Tampa Chiro", "Far PT"]


def test_name_pages_are_stable_when_a_partner_is_added_meanwhile(client: TestClient, spread: dict) -> None:
    first = client.get("/api/v1/partners", params={"limit": 3}).json()
    assert [i["name"] for i in first["items"]] == ["Far PT", "Mid PT", "Near PT"]
    create(client, name="Aardvark PT")  # sorts before the cursor: must not shift the next page
    second = client.get("/api/v1/partners", params={"limit": 3, "cursor": first["next_cursor"]}).json()
    assert [i["name"] for i in second["items"]] == ["Nowhere PT", "Tampa Chiro", "Waitlist PT"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"near": ST_PETE, "radius_km": -3}, "radius_km"),
        ({"near": ST_PETE, "radius_km": "far"}, "radius_km"),
        ({"near": ST_PETE, "radius_km": 10000}, "radius_km"),
        ({"near": "abc"}, "near"),
        ({"near": "91,0"}, "near"),
        ({"zip": "3370"}, "zip"),
        ({"zip": "00000"}, "zip"),
        ({"zip": "33701", "near": ST_PETE}, "zip"),
        ({"radius_km": 5}, "radius_km"),
        ({"accepting": "maybe"}, "accepting"),
        ({"telehealth": "sometimes"}, "telehealth"),
        ({"category": "astrology"}, "category"),
        ({"cursor": "garbage!"}, "cursor"),
        ({"limit": 0}, "limit"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client: TestClient, params: dict, field: str) -> None:
    response = client.get("/api/v1/partners", params=params)

    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"status_code", "detail", "extra"}
    assert fields_at_fault(response) == [field]


def test_admins_see_the_referral_email_in_search_the_public_never(client: TestClient, spread: dict) -> None:
    assert all("email" not in item for item in client.get("/api/v1/partners").json()["items"])
    assert all("email" in item for item in client.get("/api/v1/partners", headers=ADMIN).json()["items"])


def test_a_new_postal_code_moves_a_geocoded_partner_and_given_coordinates_stay(client: TestClient) -> None:
    pt = create(client, location=None, address={"postal_code": "33701"})
    assert pt["location"] == {"lat": 27.7723, "lon": -82.6386}

    moved = client.patch(
        f"/api/v1/partners/{pt['id']}", json={"version": 1, "address": {"postal_code": "33755"}}, headers=ADMIN
    ).json()
    assert moved["location"] == {"lat": 27.9781, "lon": -82.7815}
    kept = client.patch(
        f"/api/v1/partners/{pt['id']}", json={"version": 2, "phone": "+17275550111"}, headers=ADMIN
    ).json()
    assert kept["location"] == moved["location"]


def test_an_npi_belongs_to_one_partner(client: TestClient) -> None:
    first = create(client, npi="1234567893")
    duplicate = client.post(
        "/api/v1/partners", json={**PARTNER_BODY, "name": "Other", "npi": "1234567893"}, headers=ADMIN
    )
    assert duplicate.status_code == 409
    assert fields_at_fault(duplicate) == ["npi"]
    other = create(client, name="Other")
    taken = client.patch(f"/api/v1/partners/{other['id']}", json={"version": 1, "npi": "1234567893"}, headers=ADMIN)
    assert taken.status_code == 409
    assert (
        client.patch(f"/api/v1/partners/{first['id']}", json={"version": 1, "npi": None}, headers=ADMIN).status_code
        == 200
    )


def test_anonymous_searches_carry_an_etag_that_changes_with_the_directory(client: TestClient) -> None:
    create(client, name="Alpha PT")
    first = client.get("/api/v1/partners", params={"q": "pt"})
    tag = first.headers["etag"]
    assert client.get("/api/v1/partners", params={"q": "pt"}, headers={"If-None-Match": tag}).status_code == 304

    create(client, name="Beta PT")

    after = client.get("/api/v1/partners", params={"q": "pt"}, headers={"If-None-Match": tag})
    assert after.status_code == 200 and names(after) == ["Alpha PT", "Beta PT"]
    assert "etag" not in client.get("/api/v1/partners", params={"q": "pt"}, headers=ADMIN).headers
