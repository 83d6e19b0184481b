"""The dashboard with seeded data and the clock advanced: needs attention first (declined,
expired, no partner, no-show, unanswered past half the deadline), open referrals by status,
search by reference or client, and the three SVG charts with their tables."""

from __future__ import annotations

import re
from datetime import timedelta

import msgspec
import pytest
from litestar.testing import TestClient

from shared.config import Settings
from tests.support.referrals import (
    CLIENT,
    SOON,
    START,
    Clock,
    accept,
    flush,
    link_path,
    log_in,
    login,
    queued_emails,
    report,
    sweep,
)


@pytest.fixture
def clock() -> Clock:
    """The service's clock for this module's tests: at START until a test moves it."""
    return Clock(START)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The integration settings with soon offers due in one business day, as this module's
    clock moves assume (the default is 3)."""
    return msgspec.structs.replace(settings, offer_days_soon=1)


def referral_for(client: TestClient, headers: dict, name: str, **body: object) -> dict:
    response = client.post(
        "/api/v1/referrals",
        headers=headers,
        json={
            "client": {**CLIENT, "name": name},
            "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
            "reasons": SOON,
            "partner_ids": ["gp1", "gp2"],
            **body,
        },
    )
    assert response.status_code == 201, response.text
    return response.json()


def section(html: str, title_id: str) -> str:
    return re.search(rf'<section aria-labelledby="{title_id}".*?</section>', html, re.S).group(0)


def test_dashboard_with_seeded_referrals(client: TestClient, settings, clock: Clock) -> None:
    headers = login(client)
    # Completed: accepted by gp1 two hours after the offer, booked, seen with a clearance.
    done, path = accept(client, settings, headers)
    assert report(client, path, outcome="booked", booked_for="2030-11-10").status_code == 200
    flush(client)
    second = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "report_outcome"][-1])
    assert report(client, second, outcome="completed", clearance="ok").status_code == 200
    quiet = referral_for(client, headers, "Quentin Quiet")
    physio = referral_for(client, headers, "Pat Physio", reasons=["rehab_exercise_needed"], partner_ids=["pt1"])

    # Past half the soon offer's deadline (one day here), not the routine one's (five).
    clock.now = START + timedelta(hours=13)
    sweep(client)
    log_in(client)
    home = client.get("/")
    assert home.status_code == 200
    attention = section(home.text, "attention-title")
    assert quiet["reference"] in attention and "past half the deadline" in attention
    assert physio["reference"] not in attention and done["reference"] not in attention
    assert home.text.index("Needs attention") < home.text.index("Open referrals by status")
    assert "<h3>requested (2)</h3>" in home.text

    # The three charts, each an accessible SVG with its table.
    charts = section(home.text, "charts-title")
    assert charts.count('<svg role="img"') == 3 and charts.count("<title id=") == 3
    funnel = re.search(r"<caption>Referral funnel.*?</table>", charts, re.S).group(0)
    assert [int(n) for n in re.findall(r"<td>(\d+)</td>", funnel)] == [3, 1, 1, 1]
    accept_table = re.search(r"<caption>Median time to accept.*?</table>", charts, re.S).group(0)
    assert "Dr. Ana Gomez" in accept_table
    # In human units ("0 s", "2 min", "3 h"), never "0.0 h" for a quick answer.
    assert re.search(r"<td>\d+ (s|min|h|days?)( \d+ min)?</td>", accept_table) and ".0 h" not in accept_table
    months = re.search(r"<caption>Referrals by category per month.*?</table>", charts, re.S).group(0)
    assert "Nov 2030" in months and "2030-11" not in months and re.search(r"Physical therap[^<]*</th>", months)

    # Search by reference, by part of the client's name.
    found = client.get("/", params={"q": quiet["reference"]}).text
    assert quiet["reference"] in section(found, "recent-title") and physio["reference"] not in section(
        found, "recent-title"
    )
    found = client.get("/", params={"q": "pat phys"}).text
    assert physio["reference"] in section(found, "recent-title") and quiet["reference"] not in section(
        found, "recent-title"
    )
    assert "No referral matches" in client.get("/", params={"q": "nobody at all"}).text

    # An expiry still needs attention once the next partner has it; the API agrees with the page.
    clock.now = START + timedelta(days=1)
    sweep(client)
    listed = {r["reference"] for r in client.get("/api/v1/referrals?needs_attention=true", headers=headers).json()}
    assert quiet["reference"] in listed and done["reference"] not in listed
    body = client.get(f"/api/v1/referrals/{quiet['id']}", headers=headers).json()
    assert any("did not answer in time" in line for line in body["attention"])


def test_dashboard_charts_are_empty_but_whole_without_data(client: TestClient) -> None:
    log_in(client)
    home = client.get("/", params={"days": 30})
    assert home.status_code == 200
    assert "No partner accepted a referral in this period." in home.text
    assert "No referrals in this period." in home.text
    assert 'value="30" selected' in home.text
