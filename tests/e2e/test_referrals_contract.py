"""Issue 4 as it will be checked, over real processes started by ``handoff dev``, through the
Contract only: log in, a referral for each reason code the Contract names, the emergency answer,
a scope violation, idempotent replay, accept and decline through the emailed links, the next
partner offered after a decline, and used or tampered links refused."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.support.polling import eventually
from tests.support.system import PASSWORD, System, body_text, token

CLINICAL = {"given": True, "method": "verbal", "scope": ["clinical"]}
NON_CLINICAL = {"given": True, "method": "written", "scope": ["non_clinical"]}
PARTNERS = {
    "gp_a": ("primary_care", "Dr. Ana Gomez"),
    "gp_b": ("primary_care", "Dr. Ben Ode"),
    "ortho": ("orthopedics", "Bayfront Orthopedics"),
    "neuro": ("neurology", "Gulf Neurology"),
    "pt": ("physical_therapy", "Bay Physio"),
    "trainer": ("personal_training", "Coach Kim"),
}
CONTRACT_REASONS = {
    "calf_swelling_one_side": ("urgent", "gp_a", CLINICAL),
    "suspected_fracture": ("urgent", "ortho", CLINICAL),
    "radiating_numbness": ("soon", "neuro", CLINICAL),
    "rehab_exercise_needed": ("routine", "pt", CLINICAL),
    "strength_posture_goals": ("routine", "trainer", NON_CLINICAL),
}


def offer_link(system: System, to: str, reference: str) -> str:
    """The ``/respond/{token}`` path in the offer email to ``to`` about referral ``reference``."""

    def found() -> object:
        return next(
            (
                m
                for m in system.mail()
                if m["To"] == to and reference in str(m["Subject"]) and "/respond/" in body_text(m)
            ),
            None,
        )

    # Generous: the notifier shares the machine with the whole suite in CI.
    message = eventually(found, timeout=90, what=f"the offer of {reference} emailed to {to}")
    link = re.search(r"https?://\S+/respond/\S+", body_text(message)).group(0)
    return "/respond/" + link.split("/respond/", 1)[1]


def csrf_of(page: httpx.Response) -> str:
    return re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)


def test_referrals_through_the_contract(system: System) -> None:
    for address, role in (("admin@clinic.example", "admin"), ("tess@clinic.example", "therapist")):
        assert system.handoff("user", "add", "--email", address, "--role", role, stdin=PASSWORD + "\n").returncode == 0
    admin, therapist = token(system, "admin@clinic.example"), token(system, "tess@clinic.example")

    # Staff log in on the HTML side too: the login page sets the cookie the staff pages take.
    login_page = system.referrals.get("/login")
    logged_in = system.referrals.post(
        "/login", data={"email": "tess@clinic.example", "password": PASSWORD, "_csrf_token": csrf_of(login_page)}
    )
    assert logged_in.status_code == 303 and logged_in.headers["location"] == "/"
    assert "Needs attention" in system.referrals.get("/").text

    ids = {}
    for key, (category, name) in PARTNERS.items():
        created = system.directory.post(
            "/api/v1/partners",
            headers=admin,
            json={
                "name": name,
                "category": category,
                "email": f"{key}@partners.example",
                "accepting_new_clients": "yes",
                "address": {"line1": "1 Main St", "city": "St. Petersburg", "state": "FL", "postal_code": "33701"},
            },
        )
        assert created.status_code == 201, created.text
        ids[key] = created.json()["id"]

    def replicated() -> bool:
        ranked = system.referrals.post(
            "/api/v1/referrals/suggestions", headers=therapist, json={"reasons": ["strength_posture_goals"]}
        )
        return ranked.status_code == 200 and ids["trainer"] in [s["partner_id"] for s in ranked.json()]

    eventually(replicated, what="the partners in the referrals replica")

    client = {"name": "Wilhelmina Sentinel-Client", "postal_code": "33701", "phone": "727-555-0142"}
    for code, (urgency, partner_key, consent) in CONTRACT_REASONS.items():
        issued = system.referrals.post(
            "/api/v1/referrals",
            headers=therapist,
            json={"client": client, "consent": consent, "reasons": [code], "partner_ids": [ids[partner_key]]},
        )
        assert issued.status_code == 201, (code, issued.text)
        body = issued.json()
        assert (body["status"], body["urgency"]) == ("requested", urgency)
        assert body["offers"][0]["partner_id"] == ids[partner_key] and body["offers"][0]["expires_at"]

    emergency = system.referrals.post(
        "/api/v1/referrals",
        headers=therapist,
        json={"client": client, "consent": CLINICAL, "reasons": ["chest_pain_breathless"]},
    )
    assert emergency.status_code == 422
    assert emergency.json()["extra"]["urgency"] == "emergency" and "911" in emergency.json()["extra"]["instruction"]

    violation = system.referrals.post(
        "/api/v1/referrals",
        headers=therapist,
        json={"client": client, "consent": CLINICAL, "reasons": ["calf_swelling_one_side"], "partner_ids": [ids["pt"]]},
    )
    assert violation.status_code == 422
    assert "Bay Physio" in violation.json()["detail"] and "calf_swelling_one_side" in violation.json()["detail"]

    key = {"Idempotency-Key": str(uuid.uuid4()), **therapist}
    body = {
        "client": client,
        "consent": CLINICAL,
        "reasons": ["calf_swelling_one_side"],
        "partner_ids": [ids["gp_b"], ids["gp_a"]],
        "note": "Left calf warm and swollen.",
    }
    first = system.referrals.post("/api/v1/referrals", headers=key, json=body)
    replay = system.referrals.post("/api/v1/referrals", headers=key, json=body)
    assert first.status_code == 201 and replay.json() == first.json()
    other = system.referrals.post("/api/v1/referrals", headers=key, json={**body, "note": "different"})
    assert other.status_code == 422
    referral = first.json()
    listed = system.referrals.get("/api/v1/referrals", headers=therapist, params={"partner": ids["gp_b"]}).json()
    assert [r["id"] for r in listed] == [referral["id"]]

    # gp_b declines through the emailed link; gp_a is offered it at once and accepts.
    path = offer_link(system, "gp_b@partners.example", referral["reference"])
    page = system.referrals.get(path)
    assert page.status_code == 200 and "Wilhelmina" not in page.text
    assert (
        system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()["status"] == "requested"
    )
    declined = system.referrals.post(
        path, data={"decision": "decline", "reason": "no_capacity", "_csrf_token": csrf_of(page)}
    )
    assert declined.status_code == 200
    assert system.referrals.post(path, data={"decision": "accept", "_csrf_token": csrf_of(page)}).status_code == 410

    next_path = offer_link(system, "gp_a@partners.example", referral["reference"])
    tampered = next_path[:-4] + ("AAAA" if not next_path.endswith("AAAA") else "BBBB")
    assert system.referrals.get(tampered).status_code == 403
    page = system.referrals.get(next_path)
    accepted = system.referrals.post(next_path, data={"decision": "accept", "_csrf_token": csrf_of(page)})
    assert accepted.status_code == 200
    assert (
        system.referrals.post(next_path, data={"decision": "accept", "_csrf_token": csrf_of(page)}).status_code == 410
    )

    detail = system.referrals.get(f"/api/v1/referrals/{referral['id']}", headers=therapist).json()
    assert detail["status"] == "accepted"
    assert [(o["partner_id"], o["status"]) for o in detail["offers"]] == [
        (ids["gp_b"], "declined"),
        (ids["gp_a"], "accepted"),
    ]
    assert all(e["at"] and e["actor"] and e["to_status"] and e["why"] for e in detail["timeline"])
    assert "Timeline" in system.referrals.get(f"/referrals/{referral['id']}").text

    for message in system.mail():
        assert "Wilhelmina" not in message.as_string() and "swollen" not in message.as_string()
