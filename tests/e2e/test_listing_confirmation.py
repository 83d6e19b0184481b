"""The confirmation cycle end to end (issue 14, "How it will be checked" 4): ``handoff dev`` with
the attestation days set to seconds, unlisting on, and the directory worker sweeping every
second. An unconfirmed partner is emailed once (and reminded once), then flagged for the admin,
then leaves the public page; confirming through the emailed link brings it back, dated."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.support.polling import eventually
from tests.support.system import System, body_text, token

ADMIN = "ada@clinic.example"
# Six seconds, in days.
SECONDS_6 = str(6 / 86400)


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    system = System(tmp_path_factory.mktemp("system") / "data")
    system.env |= {
        "HANDOFF_ATTESTATION_DAYS": SECONDS_6,
        "HANDOFF_ATTESTATION_GRACE_DAYS": SECONDS_6,
        "HANDOFF_UNLIST_UNCONFIRMED": "true",
        "HANDOFF_SWEEP_INTERVAL_SECONDS": "1",
    }
    system.start()
    try:
        yield system
    finally:
        if system.process.poll() is None:
            system.process.kill()
            system.process.wait()


def test_an_unconfirmed_partner_is_asked_once_flagged_unlisted_and_back_once_it_confirms(
    system: System, staff: None
) -> None:
    admin = token(system, ADMIN)
    created = system.directory.post(
        "/api/v1/partners",
        json={"name": "Dr. Quiet Listing", "category": "primary_care", "email": "quiet@example.org"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    partner = created.json()
    public = f"/partners-in-health/{partner['slug']}"
    page = system.directory.get(public)
    assert page.status_code == 200 and "Listing details not yet confirmed" in page.text

    def asked() -> list:
        return [m for m in system.mail() if m["To"] == "quiet@example.org" and "Please confirm" in m["Subject"]]

    eventually(asked, timeout=30, what="the confirmation request")
    eventually(
        lambda: (
            "Dr. Quiet Listing"
            in system.directory.get("/admin/partners", params={"needs_review": "yes"}, headers=admin).text
        ),
        timeout=30,
        what="the partner flagged for the admin's review",
    )
    eventually(lambda: system.directory.get(public).status_code == 404, timeout=5, what="the partner unlisted")
    assert len(asked()) == 1, "asked more than once"
    reminders = [m for m in system.mail() if m["To"] == "quiet@example.org" and m["Subject"].startswith("Reminder")]
    assert len(reminders) == 1
    assert partner["id"] not in system.directory.get("/api/v1/partners").text

    link = re.search(r"https?://\S+(/manage/\S+)", body_text(asked()[0])).group(1)
    form = system.directory.get(link)
    assert form.status_code == 200
    confirmed = system.directory.post(
        re.search(r'action="(/manage/[^"]+)"', form.text).group(1),
        data={"action": "confirm", "_csrf_token": re.search(r'name="_csrf_token" value="([^"]+)"', form.text).group(1)},
        follow_redirects=False,
    )
    assert confirmed.status_code == 303

    back = eventually(
        lambda: (answer := system.directory.get(public)).status_code == 200 and answer,
        timeout=3,
        what="the partner listed again",
    )
    assert "Confirmed by the practice on" in back.text
    assert system.directory.get(f"/api/v1/partners/{partner['id']}").json()["last_confirmed_at"]
