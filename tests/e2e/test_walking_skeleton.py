"""The walking skeleton, end to end over real processes started by ``handoff dev``: a private
Redis, the SMTP catcher, both web services and both workers, on free ports. Driven only through
the Contract's HTTP API and CLI."""

from __future__ import annotations

import re

import psutil

from tests.support.polling import eventually
from tests.support.system import PASSWORD, System, body_text, token


def test_a_referral_travels_through_all_three_services(system: System) -> None:
    children = psutil.Process(system.process.pid).children(recursive=True)
    assert len(children) >= 5  # redis, two web services, two workers

    for address, role in (("admin@clinic.example", "admin"), ("tess@clinic.example", "therapist")):
        added = system.handoff("user", "add", "--email", address, "--role", role, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
    admin, therapist = token(system, "admin@clinic.example"), token(system, "tess@clinic.example")

    # Ready means the database and Redis both answer.
    assert system.directory.get("/ready").status_code == 200
    assert system.referrals.get("/ready").status_code == 200

    # An admin creates a partner in directory; a therapist may not.
    partner_in = {
        "name": "Dr. Rosa Delgado",
        "category": "primary_care",
        "email": "rosa@bayside-family.example",
        "accepting_new_clients": "yes",
    }
    assert system.directory.post("/api/v1/partners", json=partner_in).status_code == 401
    assert system.directory.post("/api/v1/partners", json=partner_in, headers=therapist).status_code == 403
    created = system.directory.post("/api/v1/partners", json=partner_in, headers=admin)
    assert created.status_code == 201, created.text
    partner = created.json()
    assert partner["status"] == "active" and partner["version"] >= 1

    # PartnerChanged reaches the referrals replica.
    def suggested() -> bool:
        response = system.referrals.post(
            "/api/v1/referrals/suggestions", headers=therapist, json={"reasons": ["calf_swelling_one_side"]}
        )
        return response.status_code == 200 and partner["id"] in [s["partner_id"] for s in response.json()]

    eventually(suggested, what="the partner in the referrals replica")

    # Consent is required; then the referral is issued.
    referral_in = {
        "client": {"name": "Wilhelmina Sentinel-Client", "phone": "727-555-0142"},
        "reasons": ["calf_swelling_one_side"],
        "note": "Left calf warm and swollen since Tuesday.",
        "partner_ids": [partner["id"]],
    }
    refused = system.referrals.post("/api/v1/referrals", json=referral_in, headers=therapist)
    assert refused.status_code == 400 and "consent" in refused.text
    referral_in["consent"] = {"given": True, "method": "verbal", "scope": ["clinical"]}
    issued = system.referrals.post("/api/v1/referrals", json=referral_in, headers=therapist)
    assert issued.status_code == 201, issued.text
    referral = issued.json()
    assert referral["status"] == "requested" and referral["urgency"] == "urgent"

    # The notifier emails the partner a /respond/{token} link, with no client data.
    offer = eventually(
        lambda: next((m for m in system.mail() if m["To"] == partner_in["email"]), None),
        what="the offer email in the SMTP catcher",
    )
    text = body_text(offer)
    for private in ("Wilhelmina", "Sentinel-Client", "calf", "swollen"):
        assert private not in offer.as_string()
    link = re.search(r"https?://\S+/respond/\S+", text).group(0)
    path = "/respond/" + link.split("/respond/", 1)[1]

    # The partner page opens (GET changes nothing) and its accept form accepts.
    page = system.referrals.get(path)
    assert page.status_code == 200 and 'name="decision"' in page.text
    csrf = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    still = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()
    assert still["status"] == "requested"
    answered = system.referrals.post(path, data={"decision": "accept", "_csrf_token": csrf})
    assert answered.status_code == 200, answered.text
    detail = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()
    assert detail["status"] == "accepted"
    assert system.referrals.post(path, data={"decision": "accept", "_csrf_token": csrf}).status_code == 410

    # The therapist hears of it, and the delivery reports come back onto the timeline.
    eventually(
        lambda: any(m["To"] == "tess@clinic.example" for m in system.mail()),
        what="the acceptance email to the therapist",
    )

    def reported() -> bool:
        timeline = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()["timeline"]
        return any(e["actor"] == "notifier" and "sent" in e["why"] for e in timeline)

    eventually(reported, what="the notifier's delivery report on the timeline")

    # Ctrl-C stops everything handoff dev started.
    code, output = system.stop()
    assert code == 0, output
    assert "Partners in Health" in output
    # No partner link in the logs: the access log names /respond/{token} by its template only.
    token_part = path.removeprefix("/respond/")
    assert token_part not in output and path not in output
    assert all(logged.startswith("{") for logged in re.findall(r"/respond/(\S+)", output)), "a link was logged"
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"
