"""Issue 13's "record people read" on the referral's staff page and the admin's pages: offers
never made say "not needed" once the referral stopped looking, the timeline reads as sentences
with each email under the step that sent it, and the emergency stops are listed for admins."""

from __future__ import annotations

import re
from html import unescape

from litestar.testing import TestClient

from tests.support.referrals import accept, csrf, flush, link_path, log_in, login, new_referral, queued_emails, report


def offers_table(page: str) -> list[str]:
    """The offers table's rows as text, one line each."""
    table = page.split('id="offers-title"')[1].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)[1:]
    return [" ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def test_offers_never_made_are_next_in_line_then_not_needed(client: TestClient, settings) -> None:
    headers = login(client)
    referral, report_path = accept(client, settings, headers)
    log_in(client)
    accepted = offers_table(client.get(f"/referrals/{referral['id']}").text)
    assert accepted[0].startswith("1 Dr. Ana Gomez accepted") and accepted[1].startswith("2 Dr. Ben Ode not needed")

    assert report(client, report_path, outcome="completed", clearance="ok").status_code == 200
    completed = client.get(f"/referrals/{referral['id']}").text
    assert offers_table(completed)[1].startswith("2 Dr. Ben Ode not needed") and "queued" not in completed

    # While the referral still looks for a partner, the next partner is next in line; a decline
    # reads as its reason's words.
    looking = new_referral(client, headers)
    flush(client)
    offer = [e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1]
    assert offers_table(client.get(f"/referrals/{looking['id']}").text)[1].startswith("2 Dr. Ben Ode next in line")
    path = link_path(offer)
    token = csrf(client.get(path).text)
    assert (
        client.post(path, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": token}).status_code
        == 200
    )
    rows = offers_table(client.get(f"/referrals/{looking['id']}").text)
    assert rows[0].startswith("1 Dr. Ana Gomez declined: no capacity right now") and "2 Dr. Ben Ode offered" in rows[1]

    # Cancelled: the offer never made is not needed (its stored status is "withdrawn").
    cancelled = new_referral(client, headers)
    client.post(f"/api/v1/referrals/{cancelled['id']}/cancel", headers=headers)
    rows = offers_table(client.get(f"/referrals/{cancelled['id']}").text)
    assert rows[0].startswith("1 Dr. Ana Gomez withdrawn") and rows[1].startswith("2 Dr. Ben Ode not needed")
