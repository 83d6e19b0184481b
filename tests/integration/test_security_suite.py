"""The security suite, on a real database and Redis: every route of both apps is either public by
name or refuses strangers and the wrong role; every form refuses a post without its CSRF token
and changes nothing; partner links that are tampered with, forged, expired, used up or aimed at
another offer are refused and change nothing; and a whole referral, run by ``handoff dev`` at
DEBUG level, leaves no secret, token or client data in any log.

Rate limits are in test_rate_limits.py, security headers in test_security_headers.py."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from litestar import Litestar, get
from litestar.middleware.csrf import generate_csrf_token
from litestar.testing import TestClient
from sqlalchemy import select, update

from services.directory import storage as directory_storage
from services.directory.web.fhir import ROUTES as FHIR_ROUTES
from services.directory.web.hsds import ROUTES as HSDS_ROUTES
from services.referrals import links
from services.referrals import storage as referrals_storage
from shared import database, manage_links
from shared.config import Settings
from shared.web import STAFF_COOKIE, for_programs
from tests.support.directory import FORM as PARTNER_FORM
from tests.support.directory import GOOD_CSV, PARTNER
from tests.support.directory import bearer as directory_bearer
from tests.support.referrals import (
    PASSWORD,
    accept,
    csrf,
    flush,
    in_days,
    link_path,
    login,
    new_referral,
    queued_emails,
)

Route = tuple[str, str]  # (method, path template as app.routes lists it)

# The OpenAPI documents: public on purpose. (No viewer: they loaded their scripts from a CDN.)
SCHEMA = {
    ("GET", path)
    for path in ("/schema", "/schema/openapi.json", "/schema/openapi.yml", "/schema/openapi.yaml", "/schema/{path}")
}
# Operational endpoints: probes and Prometheus reach them without credentials.
OPS = {("GET", "/health"), ("GET", "/ready"), ("GET", "/metrics")}
# The shared stylesheet and icons both services serve (shared.templating): public files.
ASSETS = {("GET", "/assets/{file_path}"), ("HEAD", "/assets/{file_path}"), ("GET", "/favicon.ico")}
# Every route anyone may use without a staff login. Anything else must refuse strangers.
PUBLIC: dict[str, set[Route]] = {
    "directory": OPS
    | SCHEMA
    | ASSETS
    | {
        ("GET", "/api/v1/partners"),
        ("GET", "/api/v1/partners/{partner_id}"),
        ("GET", "/api/v1/categories"),
        ("GET", "/partners-in-health"),
        ("GET", "/partners-in-health/{slug}"),
        # Anyone may ask for a listing's manage link: it goes to the partner's address on file.
        ("POST", "/partners-in-health/{slug}/manage-link"),
        # Partners hold a signed manage link instead of a login (tests/integration/directory/
        # test_directory_listings.py: tampered, expired and replayed links).
        ("GET", "/manage/{token}"),
        ("POST", "/manage/{token}"),
    }
    # The standards APIs (Open Referral HSDS, FHIR R4 directory): public by design, each route named there.
    | set(HSDS_ROUTES)
    | set(FHIR_ROUTES),
    "referrals": OPS
    | SCHEMA
    | ASSETS
    | {
        ("POST", "/api/v1/auth/token"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("GET", "/logout"),
        ("POST", "/logout"),
        # Partners hold a signed link instead of a login; see the link tests below.
        ("GET", "/respond/{token}"),
        ("POST", "/respond/{token}"),
        ("POST", "/respond/{token}/received"),
        ("GET", "/report/{token}"),
        ("POST", "/report/{token}"),
        # The partner inbox: a signed link per partner address (tests/integration/
        # test_referrals_inbox.py: tampered, expired, revoked links, another partner's offers).
        ("GET", "/inbox/{token}"),
        ("POST", "/inbox/{token}/offers/{offer_id}"),
        ("POST", "/inbox/{token}/reports/{offer_id}"),
        ("GET", "/static/{file_path}"),
        ("HEAD", "/static/{file_path}"),
    },
}
# The referrals routes for admins only; its other staff routes are for any staff member. (Every
# staff route of the directory is for admins.)
REFERRALS_ADMIN_ONLY = {
    ("GET", "/admin/staff"),
    ("POST", "/admin/staff"),
    ("POST", "/admin/staff/change"),
    ("GET", "/admin/inbox"),
    ("POST", "/admin/inbox/revoke"),
    ("GET", "/admin/emergency-stops"),
}


def routes(app: Litestar) -> set[Route]:
    """Every (method, path) the app serves. OPTIONS is Litestar's own preflight answer, the same
    for every path, and carries no data."""
    return {
        (method, route.path_format)
        for route in app.routes
        for method in getattr(route, "methods", ())
        if method != "OPTIONS"
    }


def filled(path: str, values: dict[str, str] | None = None) -> str:
    """``path`` with each ``{name}`` replaced by ``values[name]`` (default: a made-up id)."""
    return re.sub(r"\{(\w+)\}", lambda m: (values or {}).get(m.group(1), "no-such-id"), path)


class Caller:
    """One request at a time with exactly the credentials given: none, a staff bearer token
    (API) or the staff login cookie (pages); a valid CSRF token is always sent, so that a
    refusal comes from the route's guard rather than the CSRF check."""

    def __init__(self, client: TestClient, csrf_secret: str) -> None:
        self.client = client
        self.csrf = generate_csrf_token(secret=csrf_secret)

    def __call__(self, method: str, path: str, *, token: str = "", csrf_token: bool = True, **kwargs: object):
        self.client.cookies.clear()
        headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
        if csrf_token:
            self.client.cookies.set("csrftoken", self.csrf)
            headers["x-csrftoken"] = self.csrf
        if token and for_programs(path):
            headers["Authorization"] = f"Bearer {token}"
        elif token:
            self.client.cookies.set(STAFF_COOKIE, token)
        return self.client.request(method, path, headers=headers, follow_redirects=False, **kwargs)


def guard_problems(call: Caller, guarded: set[Route], *, admin_only: set[Route], admin: str, therapist: str) -> list:
    """Every way the ``guarded`` routes fail to guard themselves: a stranger must get 401 (API) or
    a 303 to the login page (pages: a browser is sent where it can sign in, and comes back
    after), a therapist on an admin route 403 (JSON on the API, a page for browsers), and the
    right role must get past the guard."""
    problems = []
    for method, template in sorted(guarded):
        path, api = filled(template), for_programs(template)
        stranger = call(method, path)
        # The JSON API's error body, or (on /fhir/) FHIR's own: an OperationOutcome.
        if api and (stranger.status_code != 401 or stranger.json().get("status_code", 401) != 401):
            problems.append((method, template, "stranger", stranger.status_code))
        if not api and (stranger.status_code != 303 or urlsplit(stranger.headers["location"]).path != "/login"):
            problems.append((method, template, "stranger", stranger.status_code))
        if (method, template) in admin_only:
            wrong = call(method, path, token=therapist)
            kind = (
                ("application/fhir+json" if template.startswith("/fhir/") else "application/json")
                if api
                else "text/html"
            )
            if wrong.status_code != 403 or not wrong.headers.get("content-type", "").startswith(kind):
                problems.append((method, template, "therapist", wrong.status_code))
        right = call(method, path, token=admin if (method, template) in admin_only else therapist)
        if right.status_code in (401, 403) or urlsplit(right.headers.get("location", "")).path == "/login":
            problems.append((method, template, "right role", right.status_code))
    return problems


def directory_token(role: str) -> str:
    return directory_bearer(role)["Authorization"].split()[1]


def referrals_token(client: TestClient, email: str) -> str:
    return login(client, email)["Authorization"].split()[1]


def snapshot(url: str, metadata) -> dict[str, list]:
    """Every row of every table of a service's database."""

    async def read() -> dict[str, list]:
        engine = database.create_engine(url)
        try:
            async with engine.connect() as connection:
                return {
                    name: sorted(map(repr, (await connection.execute(select(table))).all()))
                    for name, table in metadata.tables.items()
                }
        finally:
            await engine.dispose()

    return asyncio.run(read())


def settled(url: str, metadata) -> dict[str, list]:
    """:func:`snapshot` once nothing changes for a moment: a relay pass that began before a flush
    may still be marking its outbox rows sent."""
    previous, deadline = snapshot(url, metadata), time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.3)
        current = snapshot(url, metadata)
        if current == previous:
            return current
        previous = current
    raise AssertionError("the database kept changing")


# --- every route guarded -------------------------------------------------------------------------


def directory_problems(directory: TestClient) -> list:
    guarded = routes(directory.app) - PUBLIC["directory"]
    return guard_problems(
        Caller(directory, directory.app.state.signing_key),
        guarded,
        admin_only=guarded,
        admin=directory_token("admin"),
        therapist=directory_token("therapist"),
    )


def test_every_directory_route_is_public_by_name_or_for_admins_only(directory: TestClient) -> None:
    served = routes(directory.app)
    assert PUBLIC["directory"] <= served, PUBLIC["directory"] - served
    assert len(served - PUBLIC["directory"]) > 10
    assert directory_problems(directory) == []


def test_every_referrals_route_is_public_by_name_or_for_staff(client: TestClient) -> None:
    served = routes(client.app)
    assert PUBLIC["referrals"] <= served, PUBLIC["referrals"] - served
    assert REFERRALS_ADMIN_ONLY <= served
    guarded = served - PUBLIC["referrals"]
    assert len(guarded) > 20
    call = Caller(client, client.app.state.signing_key)
    assert (
        guard_problems(
            call,
            guarded,
            admin_only=REFERRALS_ADMIN_ONLY,
            admin=referrals_token(client, "ada@clinic.example"),
            therapist=referrals_token(client, "tess@clinic.example"),
        )
        == []
    )


@pytest.mark.parametrize("path", ["/api/v1/reports/everything", "/reports/everything"])
def test_a_new_route_without_a_guard_is_caught(directory: TestClient, path: str) -> None:
    @get(path, sync_to_thread=False)
    def everything() -> dict[str, str]:
        return {"partners": "all of them"}

    directory.app.register(everything)
    assert directory_problems(directory) == [("GET", path, "stranger", 200), ("GET", path, "therapist", 200)]


def test_a_therapist_on_an_admin_page_sees_a_page_not_json(client: TestClient) -> None:
    client.cookies.set(STAFF_COOKIE, referrals_token(client, "tess@clinic.example"))
    page = client.get("/admin/staff")
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "<h1>Your account cannot open this page</h1>" in page.text and "admin role" in page.text


# --- forms need their CSRF token -----------------------------------------------------------------

# A form post that would succeed with its CSRF token, for every form route (POST outside /api/).
DIRECTORY_FORMS: dict[str, dict] = {
    "/admin/partners/new": {"data": PARTNER_FORM},
    "/admin/partners/{partner_id}": {"data": {**PARTNER_FORM, "version": "1", "name": "Renamed"}},
    "/admin/partners/{partner_id}/status": {"data": {"version": "1", "status": "paused"}},
    "/admin/partners/import": {"files": {"file": ("p.csv", GOOD_CSV, "text/csv")}},
    "/admin/partners/reviews/{review_id}": {"data": {"decision": "reject", "note": "no"}},
    "/manage/{token}": {"data": {"action": "confirm"}},
}
# Form routes without a CSRF token, on purpose: the public page's "Update this listing" (a token
# would set a cookie and keep shared caches from storing the page). A forged post can only have
# the partner emailed its own link, rate-limited, and answers the same as any other.
CSRF_FREE_FORMS = {"/partners-in-health/{slug}/manage-link"}
REFERRALS_FORMS: dict[str, dict] = {
    "/login": {"data": {"email": "tess@clinic.example", "password": PASSWORD}},
    "/logout": {},
    "/referrals/new": {"data": {"client_name": "Zed", "reasons": "chest_pain_breathless"}},
    "/referrals/new/send": {
        "data": {
            "client_name": "Zed",
            "reasons": "calf_swelling_one_side",
            "partner_ids": "gp1",
            "consent_given": "yes",
            "consent_method": "verbal",
            "consent_scope": "clinical",
            "idempotency_key": "csrf-suite-1",
        }
    },
    "/referrals/{referral_id}/cancel": {"data": {"reason": "client moved", "confirm": "yes"}},
    "/referrals/{referral_id}/hold": {"data": {"reason": "client travelling"}},
    "/referrals/{referral_id}/resume": {},
    "/referrals/{referral_id}/forward": {"data": {"partner_id": "gp2"}},
    "/referrals/{referral_id}/handout/print": {},
    "/referrals/{referral_id}/offers/{offer_id}/accepted-by-phone": {},
    "/admin/staff": {"data": {"email": "new@clinic.example", "role": "therapist", "password": PASSWORD}},
    "/admin/staff/change": {"data": {"email": "tess@clinic.example", "action": "disable", "confirm": "yes"}},
    "/respond/{token}": {"data": {"decision": "accept"}},
    "/respond/{token}/received": {},
    "/report/{token}": {"data": {"outcome": "booked", "booked_for": in_days(14)}},
    "/inbox/{token}/offers/{offer_id}": {"data": {"decision": "decline", "reason": "no_capacity"}},
    "/inbox/{token}/reports/{offer_id}": {"data": {"outcome": "booked", "booked_for": in_days(15)}},
    # Last: it turns off the inbox link the forms above use.
    "/admin/inbox/revoke": {"data": {"email": "gp1@partners.example"}},
}


def assert_forms_need_csrf(
    call: Caller,
    forms: dict[str, dict],
    *,
    served: set[Route],
    paths: dict[str, str],
    staff: str,
    db_url: str,
    metadata,
    origin: str,
) -> None:
    """Each form (at ``paths[template]``) posted by signed-in ``staff`` without its CSRF token is
    refused with 403 and changes nothing in the database; the same post with the token then gets
    past the check, so the refusal was the token's doing."""
    posted = {path for method, path in served if method == "POST" and not path.startswith("/api/")}
    assert posted - CSRF_FREE_FORMS == set(forms)
    before = settled(db_url, metadata)
    for template, request in forms.items():
        refused = call("POST", paths[template], token=staff, csrf_token=False, **request)
        assert refused.status_code == 403, (template, refused.status_code)
        assert snapshot(db_url, metadata) == before, template
    for template, request in forms.items():
        # /logout checks the Origin instead of a token (the directory's pages post to it).
        sent = call("POST", paths[template], token=staff, headers={"Origin": origin}, **request)
        assert sent.status_code != 403, (template, sent.text)


def test_every_directory_form_needs_its_csrf_token(directory: TestClient, directory_settings: Settings) -> None:
    partner = directory.post("/api/v1/partners", json=PARTNER, headers=directory_bearer("admin")).json()
    assert_forms_need_csrf(
        Caller(directory, directory.app.state.signing_key),
        DIRECTORY_FORMS,
        served=routes(directory.app),
        paths={
            template: filled(
                template,
                {
                    "partner_id": partner["id"],
                    "review_id": "no-such-review",
                    "token": manage_links.issue(
                        key=directory_settings.keyring(),
                        partner_id=partner["id"],
                        expires_at=datetime.now(UTC) + timedelta(days=1),
                    ),
                },
            )
            for template in DIRECTORY_FORMS
        },
        staff=directory_token("admin"),
        db_url=directory_settings.db_url("directory"),
        metadata=directory_storage.metadata,
        origin=directory_settings.public_url("directory"),
    )


def test_every_referrals_form_needs_its_csrf_token(client: TestClient, settings: Settings) -> None:
    therapist = login(client)
    referral = new_referral(client, therapist)
    flush(client)
    offer = next(e for e in queued_emails(settings.redis_url) if e.referral_id == referral["id"])
    _, report_path = accept(client, settings, therapist)
    values = {"referral_id": referral["id"], "token": link_path(offer).rsplit("/", 1)[1]}
    # gp1's inbox holds the first referral's offer (open) and the second's (accepted).
    inbox = re.sub(r"^https?://[^/]+", "", offer.context.inbox_url)
    page = client.get(inbox).text
    answer_path = re.search(r'action="(/inbox/[^"]+/offers/[^"]+)"', page).group(1)
    report_in_inbox = re.search(r'action="(/inbox/[^"]+/reports/[^"]+)"', page).group(1)
    assert_forms_need_csrf(
        Caller(client, client.app.state.signing_key),
        REFERRALS_FORMS,
        served=routes(client.app),
        paths={template: filled(template, values) for template in REFERRALS_FORMS}
        | {
            "/report/{token}": report_path,
            "/inbox/{token}/offers/{offer_id}": answer_path,
            "/inbox/{token}/reports/{offer_id}": report_in_inbox,
        },
        staff=referrals_token(client, "ada@clinic.example"),
        db_url=settings.db_url("referrals"),
        metadata=referrals_storage.metadata,
        origin=settings.public_url("referrals"),
    )


# --- partner links -------------------------------------------------------------------------------


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def with_claims(token: str, **changes: object) -> str:
    """``token`` with its claims edited and its signature kept: what a partner could try by hand."""
    header, _, signature = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps({**claims(token), **changes}).encode()).rstrip(b"=").decode()
    return f"{header}.{payload}.{signature}"


def offer_token(settings: Settings, referral: dict, to: str) -> str:
    email = [
        e
        for e in queued_emails(settings.redis_url)
        if e.referral_id == referral["id"] and e.kind == "offer" and e.to == to
    ][-1]
    return link_path(email).rsplit("/", 1)[1]


def test_partner_links_tampered_forged_or_aimed_at_another_offer_are_refused(
    client: TestClient,
    settings: Settings,
) -> None:
    headers = login(client)
    mine = new_referral(client, headers)
    other = new_referral(client, headers, reasons=["rehab_exercise_needed"], partner_ids=["pt1"])
    flush(client)
    token, others = (
        offer_token(settings, mine, "gp1@partners.example"),
        offer_token(settings, other, "pt1@partners.example"),
    )
    page = client.get(f"/respond/{token}")
    form_token = csrf(page.text)
    stored = settled(settings.db_url("referrals"), referrals_storage.metadata)
    staff_token = headers["Authorization"].split()[1]

    attempts = {
        # The claims of one offer under the signature of another: the other referral's offer.
        "offer swapped": with_claims(token, oid=claims(others)["oid"]),
        "deadline moved": with_claims(token, exp=claims(token)["exp"] + 86400 * 365),
        "signature cut": token[:-6],
        "signed with another key": links.issue(
            key="not-the-clinics-key-" * 3,
            offer_id=claims(others)["oid"],
            expires_at=datetime.now(UTC) + timedelta(days=1),
        ),
        "made for reports": links.issue(
            key=settings.secret_key,
            offer_id=claims(token)["oid"],
            purpose="report",
            nonce="guess",
            expires_at=datetime.now(UTC) + timedelta(days=1),
        ),
        "a staff token": staff_token,
        "an offer that does not exist": links.issue(
            key=settings.secret_key, offer_id="no-such-offer", expires_at=datetime.now(UTC) + timedelta(days=1)
        ),
    }
    for why, forged in attempts.items():
        assert client.get(f"/respond/{forged}").status_code == 403, why
        answered = client.post(f"/respond/{forged}", data={"decision": "accept", "_csrf_token": form_token})
        assert answered.status_code == 403 and "This link is not valid" in answered.text, why
        assert client.post(f"/respond/{forged}/received", data={"_csrf_token": form_token}).status_code == 403, why
        # A signed report link whose nonce is not the offer's current one counts as used up.
        reported = client.post(f"/report/{forged}", data={"outcome": "no_show", "_csrf_token": form_token})
        assert reported.status_code == (410 if why == "made for reports" else 403), why
    # Nor does a partner link open the staff API.
    assert client.get("/api/v1/referrals", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert snapshot(settings.db_url("referrals"), referrals_storage.metadata) == stored

    # The real links still work: the refusals were the forgeries' doing.
    assert client.post(f"/respond/{others}", data={"decision": "accept", "_csrf_token": form_token}).status_code == 200


def test_expired_and_used_links_are_gone_and_cannot_touch_the_next_offer(
    client: TestClient,
    settings: Settings,
) -> None:
    headers = login(client)
    referral = new_referral(client, headers)  # gp1 is offered it, gp2 waits
    flush(client)
    first = offer_token(settings, referral, "gp1@partners.example")
    form_token = csrf(client.get(f"/respond/{first}").text)
    stored = settled(settings.db_url("referrals"), referrals_storage.metadata)

    # Properly signed, but past its time.
    expired = links.issue(
        key=settings.secret_key, offer_id=claims(first)["oid"], expires_at=datetime.now(UTC) - timedelta(minutes=1)
    )
    assert client.get(f"/respond/{expired}").status_code == 410
    assert client.post(f"/respond/{expired}", data={"decision": "accept", "_csrf_token": form_token}).status_code == 410
    assert client.post(f"/respond/{expired}/received", data={"_csrf_token": form_token}).status_code == 410
    assert snapshot(settings.db_url("referrals"), referrals_storage.metadata) == stored

    # gp1 declines; gp2 is offered it. gp1's link, used, can do nothing to gp2's offer.
    declined = client.post(
        f"/respond/{first}", data={"decision": "decline", "reason": "no_capacity", "_csrf_token": form_token}
    )
    assert declined.status_code == 200
    flush(client)
    second = offer_token(settings, referral, "gp2@partners.example")
    stored = settled(settings.db_url("referrals"), referrals_storage.metadata)
    for attempt in ({"decision": "accept"}, {"decision": "decline", "reason": "no_capacity"}):
        again = client.post(f"/respond/{first}", data={**attempt, "_csrf_token": form_token})
        assert again.status_code == 410 and "already been answered" in again.text
    assert client.post(f"/respond/{first}/received", data={"_csrf_token": form_token}).status_code == 410
    assert client.get(f"/respond/{first}").status_code == 410
    assert snapshot(settings.db_url("referrals"), referrals_storage.metadata) == stored
    detail = client.get(f"/api/v1/referrals/{referral['id']}", headers=headers).json()
    assert [o["status"] for o in detail["offers"]] == ["declined", "offered"]

    # gp2's link stops at its offer's deadline even though the token itself has not expired.
    async def past_deadline() -> None:
        engine = database.create_engine(settings.db_url("referrals"))
        async with engine.begin() as connection:
            await connection.execute(
                update(referrals_storage.offers)
                .where(referrals_storage.offers.c.id == claims(second)["oid"])
                .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
            )
        await engine.dispose()

    asyncio.run(past_deadline())
    stored = settled(settings.db_url("referrals"), referrals_storage.metadata)
    late = client.post(f"/respond/{second}", data={"decision": "accept", "_csrf_token": form_token})
    assert late.status_code == 410 and "expired" in late.text
    assert snapshot(settings.db_url("referrals"), referrals_storage.metadata) == stored


# --- nothing secret in the logs ------------------------------------------------------------------


@pytest.mark.slow  # the whole system, started by handoff dev
def test_a_whole_referral_at_debug_level_logs_no_secret_token_or_client_data(tmp_path: Path) -> None:
    """``handoff dev`` at DEBUG (the most it ever logs) runs a referral from sign-in to the
    partner's outcome report; its output, the CLI's and every log file under the data dir must
    not hold the secret key, any password, staff token or partner link, or what the client is."""
    from tests.support.polling import eventually
    from tests.support.system import System, body_text

    unique = secrets.token_hex(4)
    key, admin_password, therapist_password = secrets.token_urlsafe(48), f"adm-{unique}-pw", f"thr-{unique}-pw"
    wrong_password = f"not-{unique}-it"
    person = {
        "name": f"Ottoline Quarrington{unique}",
        "email": f"ottoline.{unique}@client.example",
        "phone": "+17275550187",
        "postal_code": "33701",
    }
    note = f"Tender left calf since the long flight home {unique}"
    outcome_note = f"Seen twice, ultrasound clear {unique}"

    system = System(tmp_path / "data")
    system.env |= {"HANDOFF_LOG_LEVEL": "DEBUG", "HANDOFF_SECRET_KEY": key}
    cli_output = []
    system.start()
    try:
        for address, role, password in (
            ("admin@clinic.example", "admin", admin_password),
            ("tess@clinic.example", "therapist", therapist_password),
        ):
            added = system.handoff("user", "add", "--email", address, "--role", role, stdin=password + "\n")
            assert added.returncode == 0, added.stderr
            cli_output.append(added.stdout + added.stderr)
        refused = system.referrals.post(
            "/api/v1/auth/token", json={"email": "tess@clinic.example", "password": wrong_password}
        )
        assert refused.status_code == 401

        def bearer(email_address: str, password: str) -> str:
            answer = system.referrals.post("/api/v1/auth/token", json={"email": email_address, "password": password})
            assert answer.status_code == 200, answer.text
            return answer.json()["access_token"]

        admin, therapist = (
            bearer("admin@clinic.example", admin_password),
            bearer("tess@clinic.example", therapist_password),
        )
        signed_in = system.referrals.post(
            "/login",
            data={
                "email": "tess@clinic.example",
                "password": therapist_password,
                "_csrf_token": csrf(system.referrals.get("/login").text),
            },
        )
        assert signed_in.status_code == 303
        cookie = system.referrals.cookies[STAFF_COOKIE]

        partner = system.directory.post(
            "/api/v1/partners",
            headers={"Authorization": f"Bearer {admin}"},
            json={
                "name": "Dr. Rosa Delgado",
                "category": "primary_care",
                "email": "rosa@bayside.example",
                "accepting_new_clients": "yes",
            },
        ).json()

        def replicated() -> bool:
            ranked = system.referrals.post(
                "/api/v1/referrals/suggestions",
                headers={"Authorization": f"Bearer {therapist}"},
                json={"reasons": ["calf_swelling_one_side"]},
            )
            return partner["id"] in [s["partner_id"] for s in ranked.json()]

        eventually(replicated, what="the partner in the referrals replica")
        issued = system.referrals.post(
            "/api/v1/referrals",
            headers={"Authorization": f"Bearer {therapist}"},
            json={
                "client": person,
                "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
                "reasons": ["calf_swelling_one_side"],
                "note": note,
                "partner_ids": [partner["id"]],
            },
        )
        assert issued.status_code == 201, issued.text
        referral = issued.json()
        assert person["name"] in system.referrals.get(f"/referrals/{referral['id']}").text

        def link(kind: str) -> str:
            message = eventually(
                lambda: next((m for m in system.mail() if f"/{kind}/" in body_text(m)), None),
                what=f"the email with a /{kind}/ link",
            )
            return "/" + kind + "/" + re.search(rf"/{kind}/(\S+)", body_text(message)).group(1)

        respond = link("respond")
        answered = system.referrals.post(
            respond, data={"decision": "accept", "_csrf_token": csrf(system.referrals.get(respond).text)}
        )
        assert answered.status_code == 200, answered.text
        report = link("report")
        reported = system.referrals.post(
            report,
            data={
                "outcome": "completed",
                "clearance": "ok",
                "note": outcome_note,
                "_csrf_token": csrf(system.referrals.get(report).text),
            },
        )
        assert reported.status_code == 200, reported.text
        detail = system.referrals.get(
            f"/api/v1/referrals/{referral['id']}", headers={"Authorization": f"Bearer {therapist}"}
        )
        assert detail.json()["status"] == "completed"
    finally:
        code, output = system.stop()
    assert code == 0

    secret_values = {
        "the secret key": key,
        "the admin's password": admin_password,
        "the therapist's password": therapist_password,
        "a wrong password": wrong_password,
        "the client's name": person["name"],
        "the client's email": person["email"],
        "the client's phone": person["phone"][-7:],
        "the referral note": note,
        "the outcome note": outcome_note,
    }
    for name, token in (
        ("the admin's token", admin),
        ("the therapist's token", therapist),
        ("the login cookie", cookie),
        ("the partner's answer link", respond.rsplit("/", 1)[1]),
        ("the partner's report link", report.rsplit("/", 1)[1]),
    ):
        secret_values[name] = token
        secret_values[f"{name}'s signature"] = token.rsplit(".", 1)[1]
    logs = {"handoff dev's output": output, "the CLI's output": "\n".join(cli_output)}
    for path in system.data_dir.rglob("*.log"):
        logs[str(path.relative_to(system.data_dir))] = path.read_text(errors="replace")
    assert "redis/redis.log" in logs
    assert len(output.splitlines()) > 50 and " DEBUG " in output  # it did log, and at DEBUG
    leaks = [(what, where) for what, value in secret_values.items() for where, text in logs.items() if value in text]
    assert leaks == [], leaks
