"""The referrals staff app over HTTP on a real database and Redis: login and logout, the
new-referral flow, the emergency page, the referral page and cancelling, staff administration,
"needs attention", partners acknowledging a referral, and suggestions ranked by distance and
history."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
from litestar.testing import TestClient

from services.referrals.storage import audit_log, clients, referrals
from shared.messages import EmailDelivery, Location, PartnerSnapshot
from shared.web import STAFF_COOKIE
from tests.support.referrals import (
    PASSWORD,
    changed,
    count,
    csrf,
    deliver,
    flush,
    link_path,
    log_in,
    login,
    new_referral,
    queued_emails,
)


def form_token(client: TestClient, path: str = "/referrals/new") -> str:
    return csrf(client.get(path).text)


# ------------------------------------------------------------------ login and logout


def test_pages_redirect_to_login_and_login_sets_the_shared_cookie(client: TestClient) -> None:
    away = client.get("/referrals/new", follow_redirects=False)
    assert away.status_code == 303
    assert urlsplit(away.headers["location"]).path == "/login"
    assert parse_qs(urlsplit(away.headers["location"]).query)["next"][0].endswith("/referrals/new")

    wrong = client.post(
        "/login",
        data={
            "email": "tess@clinic.example",
            "password": "nope",
            "next": "",
            "_csrf_token": csrf(client.get("/login").text),
        },
    )
    assert wrong.status_code == 401 and "Invalid email or password" in wrong.text
    assert STAFF_COOKIE not in client.cookies

    done = log_in(client, next_url="http://localhost:8001/admin/partners?page=2")
    assert done.status_code == 303 and done.headers["location"] == "http://localhost:8001/admin/partners?page=2"
    assert "httponly" in done.headers["set-cookie"].lower()
    home = client.get("/")
    assert home.status_code == 200 and "Needs attention" in home.text and "tess@clinic.example" in home.text


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/",
        "//evil.example/x",
        "http://localhost:8001@evil.example/",
        "javascript:alert(1)",
        "http://localhost:9999/",
        "/\\evil.example",
        "https://localhost:8001/",
    ],
)
def test_login_never_redirects_off_the_clinics_services(client: TestClient, next_url: str) -> None:
    done = log_in(client, next_url=next_url)
    assert done.status_code == 303 and done.headers["location"] == "/"


def test_login_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/login")
    refused = client.post("/login", data={"email": "tess@clinic.example", "password": PASSWORD})
    assert refused.status_code == 403 and STAFF_COOKIE not in client.cookies


def test_logout_clears_the_cookie_only_from_the_clinics_own_pages(client: TestClient) -> None:
    assert log_in(client).status_code == 303
    assert client.post("/logout", headers={"Origin": "https://evil.example"}).status_code == 403
    assert client.post("/logout").status_code == 403
    assert client.get("/").status_code == 200
    out = client.post("/logout", headers={"Origin": "http://localhost:8001"}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/login"
    assert STAFF_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


# ------------------------------------------------------------------ the new-referral flow


def test_new_referral_flow_from_observation_to_sent(client: TestClient, settings) -> None:
    log_in(client)
    first = client.get("/referrals/new")
    assert first.status_code == 200
    for shown in ("Circulation", "Nerves", "reason-filter", 'value="radiating_numbness"', "Emergency signs"):
        assert shown in first.text
    token = csrf(first.text)

    step = {
        "client_name": "Zelda Quintessa Marchbanks",
        "client_phone": "727-555-0142",
        "client_postal_code": "33701",
        "reasons": "radiating_numbness",
        "note": "You have sciatica, tingling down the left leg",
        "_csrf_token": token,
    }
    review = client.post("/referrals/new", data=step)
    assert review.status_code == 200, review.text
    assert "soon" in review.text and "Possible nerve involvement" in review.text
    assert "reads like a diagnosis" in review.text and "you have" in review.text
    assert "Dr. Ana Gomez" in review.text and "first choice for these reasons" in review.text
    assert "Bay Physio" not in review.text  # physical therapy is outside this reason's scope
    key = re.search(r'name="idempotency_key" value="([^"]+)"', review.text).group(1)

    send = {
        **step,
        "note": "Tingling down the left leg since Monday",
        "idempotency_key": key,
        "consent_given": "yes",
        "consent_method": "verbal",
        "consent_scope": "clinical",
        "partner_ids": ["gp2", "gp1"],
        "order_gp2": "2",
        "order_gp1": "1",
    }
    sent = client.post("/referrals/new/send", data=send, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    again = client.post("/referrals/new/send", data=send, follow_redirects=False)
    assert again.headers["location"] == sent.headers["location"] and count(settings, referrals) == 1

    page = client.get(sent.headers["location"])
    assert page.status_code == 200
    assert "Zelda Quintessa Marchbanks" in page.text and "Timeline" in page.text
    assert re.search(r"Dr\. Ana Gomez</td>\s*<td[^>]*>offered", page.text)  # renumbered first
    assert "tess@clinic.example" in page.text and "requested" in page.text


def test_a_form_far_larger_than_any_referral_is_refused_before_it_is_read(client: TestClient, settings) -> None:
    """Issue 16, item 2: 40,000 partner ids (a 750 KB form) once froze the whole service."""
    log_in(client)
    send = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "reasons": "calf_swelling_one_side",
        "consent_given": "yes",
        "consent_method": "verbal",
        "consent_scope": "clinical",
        "idempotency_key": "oversized-1",
        "partner_ids": [f"{n:018d}" for n in range(40_000)],
        "_csrf_token": form_token(client),
    }
    refused = client.post("/referrals/new/send", data=send, follow_redirects=False)
    assert refused.status_code == 413, refused.status_code
    assert count(settings, referrals) == 0
    assert client.get("/health").status_code == 200


def test_flow_without_consent_explains_and_sends_nothing(client: TestClient, settings) -> None:
    log_in(client)
    data = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "reasons": "strength_posture_goals",
        "partner_ids": "trn",
        "consent_given": "yes",
        "consent_method": "verbal",
        "consent_scope": "clinical",
        "_csrf_token": form_token(client),
    }
    refused = client.post("/referrals/new/send", data=data)
    assert refused.status_code == 422 and "does not cover non-clinical partners" in refused.text
    assert count(settings, referrals) == 0


def test_an_edited_form_with_an_unknown_reason_is_refused_plainly(client: TestClient, settings) -> None:
    log_in(client)
    data = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "reasons": "no_such_reason",
        "partner_ids": "gp1",
        "consent_given": "yes",
        "consent_method": "verbal",
        "consent_scope": "clinical",
        "_csrf_token": form_token(client),
    }
    for path in ("/referrals/new", "/referrals/new/send"):
        refused = client.post(path, data=data)
        assert refused.status_code == 422 and "unknown reason code" in refused.text and "Traceback" not in refused.text
    assert count(settings, referrals) == 0


def test_emergency_reason_shows_the_instruction_audits_and_creates_nothing(client: TestClient, settings) -> None:
    log_in(client)
    data = {
        "client_name": "Zed",
        "client_phone": "727-555-0142",
        "reasons": ["persistent_anxiety_depression", "active_suicidal_intent"],
        "_csrf_token": form_token(client),
    }
    page = client.post("/referrals/new", data=data)
    assert page.status_code == 200
    assert "988" in page.text and "This is not a referral" in page.text and 'href="tel:988"' in page.text
    assert count(settings, referrals) == 0 and count(settings, audit_log) == 1

    chest = client.post("/referrals/new", data={**data, "reasons": "chest_pain_breathless"})
    assert "Call 911 now" in chest.text and count(settings, audit_log) == 2


def test_cancel_from_the_referral_page_asks_first_then_tells_the_partner(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    log_in(client)
    page = client.get(f"/referrals/{referral['id']}")
    assert f'href="/referrals/{referral["id"]}/cancel">Cancel this referral' in page.text
    # The confirmation page says who is told, and changes nothing.
    confirm = client.get(f"/referrals/{referral['id']}/cancel")
    assert confirm.status_code == 200 and f"Cancel referral {referral['reference']}?" in confirm.text
    assert "Dr. Ana Gomez is told by email" in confirm.text and "is not told: let them know yourself" in confirm.text
    assert "Yes, cancel this referral" in confirm.text and 'name="confirm" value="yes"' in confirm.text
    assert f'href="/referrals/{referral["id"]}">No, keep it</a>' in confirm.text
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "requested"

    path = f"/referrals/{referral['id']}/cancel"
    assert client.post(path, data={"reason": "client moved", "confirm": "yes"}).status_code == 403
    # Without the confirmation (an old page, a crafted post): the confirmation page, reason kept.
    unconfirmed = client.post(path, data={"reason": "client moved", "_csrf_token": csrf(confirm.text)})
    assert unconfirmed.status_code == 200 and "Yes, cancel this referral" in unconfirmed.text
    assert 'value="client moved"' in unconfirmed.text
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "requested"
    flush(client)
    assert "referral_cancelled" not in [e.kind for e in queued_emails(settings.redis_url)]

    done = client.post(path, data={"reason": "client moved", "confirm": "yes", "_csrf_token": csrf(confirm.text)})
    assert done.status_code == 200 and "cancelled" in done.text and "client moved" in done.text
    assert str(done.url).endswith(f"/referrals/{referral['id']}")
    assert "Cancel this referral" not in done.text
    flush(client)
    assert ("referral_cancelled", "gp1@partners.example") in [(e.kind, e.to) for e in queued_emails(settings.redis_url)]
    again = client.get(path)
    assert again.status_code == 200 and "can no longer be cancelled: it is cancelled" in again.text
    assert "Yes, cancel this referral" not in again.text


def test_a_therapist_cannot_open_another_therapists_referral_page(client: TestClient) -> None:
    referral = new_referral(client, login(client))
    token = csrf(client.get("/login").text)
    client.post("/login", data={"email": "ada@clinic.example", "password": PASSWORD, "_csrf_token": token})
    add = client.post(
        "/admin/staff",
        data={
            "email": "other@clinic.example",
            "role": "therapist",
            "password": PASSWORD,
            "_csrf_token": csrf(client.get("/admin/staff").text),
        },
    )
    assert add.status_code == 200 and "other@clinic.example" in add.text
    client.cookies.clear()
    log_in(client, "other@clinic.example")
    assert client.get(f"/referrals/{referral['id']}").status_code == 404


# ------------------------------------------------------------------ staff administration


def test_admin_manages_staff_and_a_disabled_account_loses_access_at_once(client: TestClient) -> None:
    therapist_api = login(client)
    log_in(client)
    assert client.get("/admin/staff").status_code == 403
    client.cookies.clear()

    log_in(client, "ada@clinic.example")
    page = client.get("/admin/staff")
    assert page.status_code == 200 and "tess@clinic.example" in page.text
    token = csrf(page.text)
    short = client.post(
        "/admin/staff",
        data={"email": "new@clinic.example", "role": "therapist", "password": "short", "_csrf_token": token},
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text

    disabled = client.post(
        "/admin/staff/change",
        data={"email": "tess@clinic.example", "role": "therapist", "action": "disable", "_csrf_token": token},
    )
    # Disabling asks first (issue 13); nothing changes until it is confirmed.
    assert disabled.status_code == 200 and "Disable tess@clinic.example?" in disabled.text
    assert client.get("/api/v1/referrals", headers=therapist_api).status_code == 200
    disabled = client.post(
        "/admin/staff/change",
        data={"email": "tess@clinic.example", "action": "disable", "confirm": "yes", "_csrf_token": token},
    )
    assert disabled.status_code == 200 and "tess@clinic.example is disabled" in disabled.text
    assert client.get("/api/v1/referrals", headers=therapist_api).status_code == 401
    assert (
        client.post("/api/v1/auth/token", json={"email": "tess@clinic.example", "password": PASSWORD}).status_code
        == 401
    )

    client.post("/admin/staff/change", data={"email": "tess@clinic.example", "action": "enable", "_csrf_token": token})
    promoted = client.post(
        "/admin/staff/change", data={"email": "tess@clinic.example", "role": "admin", "_csrf_token": token}
    )
    assert "tess@clinic.example is active, admin" in promoted.text
    # Disabling signed the account out: its token from before stays void (issue 16, item 4),
    # and a new sign-in works at once.
    assert client.get("/api/v1/referrals", headers=therapist_api).status_code == 401
    assert client.get("/api/v1/referrals", headers=login(client)).status_code == 200

    client.post(
        "/admin/staff/change",
        data={"email": "tess@clinic.example", "action": "disable", "confirm": "yes", "_csrf_token": token},
    )
    # Nobody disables themselves (issue 13), the last active admin least of all.
    last = client.post(
        "/admin/staff/change",
        data={"email": "ada@clinic.example", "action": "disable", "confirm": "yes", "_csrf_token": token},
    )
    assert last.status_code == 422 and "cannot disable your own account" in last.text
    assert "ada@clinic.example</td>" in client.get("/admin/staff").text


# ------------------------------------------------------------------ needs attention


def test_a_failed_email_puts_the_referral_under_needs_attention(client: TestClient, settings) -> None:
    headers = login(client)
    troubled = new_referral(client, headers)
    fine = new_referral(client, headers, reasons=["rehab_exercise_needed"], partner_ids=["pt1"])
    flush(client)
    offer = next(e for e in queued_emails(settings.redis_url) if e.referral_id == troubled["id"])
    deliver(
        settings,
        EmailDelivery(
            notification_id=offer.notification_id,
            outcome="failed",
            at=datetime.now(UTC),
            referral_id=troubled["id"],
            detail="550 mailbox unavailable",
        ),
    )

    flagged = client.get("/api/v1/referrals", params={"needs_attention": "true"}, headers=headers).json()
    assert [r["id"] for r in flagged] == [troubled["id"]]
    assert flagged[0]["needs_attention"] is True
    assert "gp1@partners.example could not be delivered: 550 mailbox unavailable" in flagged[0]["attention"][0]
    others = client.get("/api/v1/referrals", params={"needs_attention": "false"}, headers=headers).json()
    assert [r["id"] for r in others] == [fine["id"]]
    assert client.get(f"/api/v1/referrals/{troubled['id']}", headers=headers).json()["needs_attention"] is True

    log_in(client)
    home = client.get("/").text
    attention = home.split('id="attention-title"')[1].split('id="recent-title"')[0]
    assert troubled["reference"] in attention and fine["reference"] not in attention

    client.post(f"/api/v1/referrals/{troubled['id']}/cancel", headers=headers)
    assert client.get("/api/v1/referrals", params={"needs_attention": "true"}, headers=headers).json() == []


# ------------------------------------------------------------------ partners acknowledging


def test_received_is_an_explicit_post_never_a_get(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    path = link_path(queued_emails(settings.redis_url)[0])
    page = client.get(path)
    client.get(path)
    assert client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()["status"] == "requested"
    assert client.post(f"{path}/received", data={}).status_code == 403  # CSRF

    seen = client.post(f"{path}/received", data={"_csrf_token": csrf(page.text)})
    assert seen.status_code == 200 and "You have told the clinic" in seen.text
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["status"] == "received"
    assert (
        detail["timeline"][-1]["from_status"] == "requested"
        and "Dr. Ana Gomez has seen" in detail["timeline"][-1]["why"]
    )

    # Declining after acknowledging: back to requested, with the next partner offered.
    declined = client.post(
        path,
        data={
            "decision": "decline",
            "reason": "no_capacity",
            "_csrf_token": csrf(page.text),
            "note": "Booked until March <b>sorry</b>",
        },
    )
    assert declined.status_code == 200
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert detail["status"] == "requested"
    assert [o["status"] for o in detail["offers"]] == ["declined", "offered"]
    # The partner's note reaches the therapist, escaped, beside the decline.
    assert detail["offers"][0]["decline_note"] == "Booked until March <b>sorry</b>"
    staff_page = client.get(f"/referrals/{referral['id']}", headers=headers)
    assert "Booked until March &lt;b&gt;sorry&lt;/b&gt;" in staff_page.text
    assert ("received", "requested") in [(e["from_status"], e["to_status"]) for e in detail["timeline"]]
    assert client.post(f"{path}/received", data={"_csrf_token": csrf(page.text)}).status_code == 410


def test_accept_after_acknowledging(client: TestClient, settings) -> None:
    headers = login(client)
    referral = new_referral(client, headers)
    flush(client)
    path = link_path(queued_emails(settings.redis_url)[0])
    token = csrf(client.get(path).text)
    client.post(f"{path}/received", data={"_csrf_token": token})
    assert client.post(path, data={"decision": "accept", "_csrf_token": token}).status_code == 200
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert [e["to_status"] for e in detail["timeline"] if e["from_status"] != e["to_status"]][-2:] == [
        "received",
        "accepted",
    ]


# ------------------------------------------------------------------ suggestions


def placed(pid: str, category: str, lat: float, lon: float, name: str) -> PartnerSnapshot:
    return PartnerSnapshot(
        id=pid,
        slug=pid,
        name=name,
        category=category,
        email=f"{pid}@partners.example",
        status="active",
        location=Location(lat=lat, lon=lon),
    )


def test_suggestions_rank_nearer_partners_higher_and_say_how_far(client: TestClient, settings) -> None:
    # 33701 is downtown St. Petersburg, FL. Tampa is ~30 km away; Orlando ~150 km.
    deliver(settings, changed(placed("far", "physical_therapy", 28.5383, -81.3792, "Orlando Physio")))
    deliver(settings, changed(placed("near", "physical_therapy", 27.7731, -82.6400, "Downtown Physio")))
    deliver(settings, changed(placed("mid", "physical_therapy", 27.9506, -82.4572, "Tampa Physio")))
    headers = login(client)
    ranked = client.post(
        "/api/v1/referrals/suggestions",
        headers=headers,
        json={"reasons": ["rehab_exercise_needed"], "postal_code": "33701"},
    ).json()
    named = [s["partner_id"] for s in ranked]
    assert named.index("near") < named.index("mid") < named.index("far")
    near = ranked[named.index("near")]
    assert near["distance_km"] < 5 and any("km from 33701" in line for line in near["why"])
    unknown = client.post(
        "/api/v1/referrals/suggestions",
        headers=headers,
        json={"reasons": ["rehab_exercise_needed"], "postal_code": "00000"},
    )
    assert unknown.status_code == 422 and unknown.json()["extra"]["key"] == "postal_code"


def test_suggestions_weigh_each_partners_acceptance_history(client: TestClient, settings) -> None:
    headers = login(client)
    for _ in range(3):
        new_referral(client, headers, partner_ids=["gp2"])
        flush(client)
        path = link_path([e for e in queued_emails(settings.redis_url) if e.kind == "offer"][-1])
        assert (
            client.post(path, data={"decision": "accept", "_csrf_token": csrf(client.get(path).text)}).status_code
            == 200
        )
    ranked = client.post(
        "/api/v1/referrals/suggestions", headers=headers, json={"reasons": ["calf_swelling_one_side"]}
    ).json()
    assert [s["partner_id"] for s in ranked] == ["gp2", "gp1"]
    assert any(line.startswith("accepted 3 of 3 offers (100%), usually within") for line in ranked[0]["why"])
    assert "no referral history yet" in ranked[1]["why"]


def test_referral_without_partners_uses_the_clients_zip(client: TestClient, settings) -> None:
    deliver(settings, changed(placed("far", "physical_therapy", 28.5383, -81.3792, "Orlando Physio")))
    deliver(settings, changed(placed("near", "physical_therapy", 27.7731, -82.6400, "Downtown Physio")))
    referral = new_referral(client, login(client), reasons=["rehab_exercise_needed"], partner_ids=None)
    # Bay Physio (pt1) has no coordinates, so its ZIP's centre (33701 itself) stands in.
    assert [o["partner_id"] for o in referral["offers"]] == ["pt1", "near", "far"]


def test_weak_passwords_and_malformed_staff_emails_are_refused_saying_what_to_do(client: TestClient) -> None:
    """Issue 16, item 8: 1111111111 was accepted for an admin, emails with CR/LF or <script> saved."""
    log_in(client, "ada@clinic.example")

    def add(email: str, role: str, password: str) -> object:
        token = csrf(client.get("/admin/staff").text)
        form = {"email": email, "role": role, "password": password, "_csrf_token": token}
        return client.post("/admin/staff", data=form)

    for role, password in (("admin", "1111111111"), ("admin", "clinic2026!"), ("therapist", "password123")):
        weak = add(f"weak-{role}@clinic.example", role, password)
        assert weak.status_code == 422, (role, password)
        assert "easy to guess" in weak.text and "unrelated words" in weak.text
    # What passes for a therapist is not enough for an admin.
    middling = "Bodywork#2026"
    assert add("middling@clinic.example", "admin", middling).status_code == 422
    assert add("middling@clinic.example", "therapist", middling).status_code == 200
    for email in (
        "ann\r\nBcc: x@evil.example",
        "tab\there@clinic.example",
        "<script>x@clinic.example",
        "a,b@clinic.example",
    ):
        assert add(email, "therapist", PASSWORD).status_code == 422, email
    page = client.get("/admin/staff").text
    assert "weak-" not in page and "<script>x" not in page and "<td>tab" not in page
    assert "middling@clinic.example" in page


def test_the_cli_applies_the_same_password_check(
    settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from services import cli

    for name in ("referrals_db_url", "data_dir", "redis_url"):
        monkeypatch.setenv(f"HANDOFF_{name.upper()}", str(getattr(settings, name)))
    monkeypatch.setattr("sys.stdin", io.StringIO("1111111111\n"))
    assert cli.main(["user", "add", "--email", "weak@clinic.example", "--role", "admin"]) == 1
    assert "easy to guess" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    assert cli.main(["user", "add", "--email", "strong@clinic.example", "--role", "admin"]) == 0


# ------------------------------------------------------------------ the CLI equivalents


def test_user_cli_lists_disables_enables_and_changes_role(settings, capsys) -> None:
    import os

    from services import cli

    env = {
        "HANDOFF_REFERRALS_DB_URL": settings.referrals_db_url,
        "HANDOFF_DATA_DIR": settings.data_dir,
        "HANDOFF_REDIS_URL": settings.redis_url,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert cli.main(["user", "disable", "--email", "tess@clinic.example"]) == 0
        assert cli.main(["user", "role", "--email", "TESS@clinic.example", "--role", "admin"]) == 0
        assert cli.main(["user", "list"]) == 0
        assert "tess@clinic.example\tadmin\tdisabled" in capsys.readouterr().out
        assert cli.main(["user", "enable", "--email", "tess@clinic.example"]) == 0
        assert cli.main(["user", "disable", "--email", "nobody@clinic.example"]) == 1
        assert "no staff account" in capsys.readouterr().err
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# ------------------------------------------------------------------ the rules over the API


def test_scope_reasons_cover_the_contracts_codes(client: TestClient) -> None:
    assert client.get("/api/v1/scope/reasons").status_code == 401
    body = client.get("/api/v1/scope/reasons", headers=login(client)).json()
    assert body["version"]
    by_code = {r["code"]: r for r in body["reasons"]}
    expected = {
        "calf_swelling_one_side": ("urgent", ["primary_care"]),
        "suspected_fracture": ("urgent", ["primary_care", "orthopedics"]),
        "radiating_numbness": ("soon", ["primary_care", "neurology", "orthopedics"]),
        "rehab_exercise_needed": ("routine", ["physical_therapy"]),
        "strength_posture_goals": ("routine", ["personal_training"]),
        "chest_pain_breathless": ("emergency", []),
    }
    for code, (urgency, categories) in expected.items():
        assert (by_code[code]["urgency"], by_code[code]["categories"]) == (urgency, categories)
    assert "911" in by_code["chest_pain_breathless"]["instruction"]
    assert "988" in by_code["active_suicidal_intent"]["instruction"]


def test_scope_reasons_carry_their_sources_and_review_status(client: TestClient) -> None:
    body = client.get("/api/v1/scope/reasons", headers=login(client)).json()
    by_code = {r["code"]: r for r in body["reasons"]}
    for reason in body["reasons"]:
        assert reason["review_status"] in ("proposed", "reviewed"), reason["code"]
        assert reason["sources"] and all(s.startswith("http") for s in reason["sources"]), reason["code"]
    calf = by_code["calf_swelling_one_side"]
    assert (calf["review_status"], calf["reviewed_by"], calf["reviewed_on"]) == ("proposed", None, None)
    assert calf["client_advice"]["en"] and calf["client_advice"]["es"]
    abuse = by_code["immediate_danger_abuse"]
    assert (abuse["urgency"], abuse["categories"], abuse["printed_handout"]) == ("advice", [], False)
    assert "1-800-799-7233" in abuse["instruction"]


def test_the_reason_list_marks_proposed_rules_in_words(client: TestClient) -> None:
    log_in(client)
    page = client.get("/referrals/new").text
    calf = page[page.index('value="calf_swelling_one_side"') :]
    assert calf[: calf.index("</label>")].count("proposed rule") == 1
    assert "await review by a licensed clinician" in " ".join(page.split())


def test_the_same_request_sent_twice_at_once_issues_one_referral(client: TestClient, settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = {
        "client": {"name": "Zed", "phone": "727-555-0142"},
        "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
        "reasons": ["calf_swelling_one_side"],
        "partner_ids": ["gp1"],
    }
    headers = {**login(client), "Idempotency-Key": "sent-twice-1"}
    # Two threads: both requests run on the app's event loop at the same time.
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: client.post("/api/v1/referrals", json=body, headers=headers), "ab")
    # The second waits for the first (the key is stored in the referral's own transaction) and replays it.
    assert (first.status_code, second.status_code) == (201, 201), (first.text, second.text)
    assert first.json() == second.json()
    assert count(settings, referrals) == 1
    # The inline client became one record, not one per request.
    assert count(settings, clients) == 1
