"""Stored XSS, checked in the browser: script-bearing text is stored in every free-text field a
person can fill, through the JSON API and through the HTML forms, and every page that shows it is
opened in Chromium. No dialog may fire, no element the payload would inject (an ``on…`` handler,
an inline script) may exist, and the text must read back as the text that was typed.

The pages' Content-Security-Policy forbids inline scripts, so it would stop most of these payloads
by itself. Every context here bypasses it (``bypass_csp=True``): what is proven is that the pages
escape what they show, with the CSP as a second wall rather than the only one.

Covered, field by field (where each is stored → the pages opened that show it):

- Partner, through ``POST /api/v1/partners`` (A), a CSV file sent to ``POST
  /api/v1/partners/import`` (B) and the admin's "Add a partner" form (D): name, credentials,
  practice, specialties, bio, website (a ``javascript:`` URL is refused with a 422 naming
  ``website``; an ``https`` one that closes the attribute is stored), address lines 1 and 2, city,
  state, languages, hours, insurance and accessibility notes, licence number, "takes referrals
  from"; B's email (admin only) → public page, its search results, each partner's public page
  (title, meta tags, JSON-LD), admin partner list and edit form; the new-referral form's
  suggestions, the referral and dashboard pages, the client handout, the partner's /respond page.
- CSV import errors, through the admin's import page: a payload in a column name and in rejected
  values (a ``javascript:`` website, an invalid email) → the import page's report.
- Referral, through the therapist's new-referral form (referral 1) and the JSON API (2, 3, 4):
  client name, consent "given by", the note → both steps of the form, the referral
  page, the dashboard (rows, search, the partners' chart), the handout, the partner's /respond page.
- Decline: reason (a fixed choice) and note, through the /respond form. The note is stored for the
  clinic but shown on no page yet; the /respond page it was typed on is checked.
- Outcome report, through the /report form: areas to avoid, pressure limits, note → the referral
  page (clearance and outcome table).
- Hold and cancel reasons, through the API → the referral page's timeline.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import ADMIN, THERAPIST, directory_url, emailed_link, log_in, open_page, referrals_url
from tests.support.polling import eventually
from tests.support.system import System, token

# Each ends the context it targets, then tries to run a script.
CLOSES_RCDATA = "</title></textarea><script>alert(1)</script>"  # <title>, <textarea>, then a script
CLOSES_DOUBLE_QUOTE = '"><img src=x onerror=alert(2)>'  # a double-quoted attribute
CLOSES_SINGLE_QUOTE = "'><svg onload=alert(3)>"  # a single-quoted attribute
CLOSES_SCRIPT = "</script><svg onload=alert(4)>"  # a script element (the pages' JSON-LD)
VECTORS = (CLOSES_RCDATA, CLOSES_DOUBLE_QUOTE, CLOSES_SINGLE_QUOTE, CLOSES_SCRIPT)
PAYLOAD = " ".join(VECTORS)
SHORT = f"{CLOSES_RCDATA} {CLOSES_DOUBLE_QUOTE}"  # for fields of at most 100 characters
WEBSITE = 'https://xss.example/"><svg/onload=alert(5)>'

# Elements or attributes that only an injected payload would put on these pages: they carry no
# inline script and no event-handler attribute of their own (the CSP forbids both).
INJECTED = """() => [
  ...[...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
      .filter(a => a.name.toLowerCase().startsWith('on')).map(a => `<${e.localName} ${a.name}>`)),
  ...[...document.scripts].filter(s => !s.src && s.type !== 'application/ld+json').map(s => s.outerHTML),
]"""


def partner_fields(who: str) -> dict[str, str]:
    """Every free-text partner field as a flat record (the CSV columns, the admin form's fields),
    each holding the payload (or the most of it the field's length allows)."""
    return {
        "name": f"{who} {PAYLOAD}",
        "credentials": SHORT,
        "category": "physical_therapy",
        "practice": f"{who} practice {PAYLOAD}",
        "specialties": "; ".join(VECTORS),
        "bio": f"{who} bio {PAYLOAD}",
        "website": WEBSITE,
        "address_line1": f"{who} street {PAYLOAD}",
        "address_line2": f"{who} suite {PAYLOAD}",
        "city": f"{who} {SHORT}",
        # A state is a US state's code since issue 13, so no payload fits; the licence number
        # below still closes a double-quoted attribute.
        "state": "FL",
        "postal_code": "33701",
        "languages": "; ".join(VECTORS[1:]),
        "hours": f"{who} hours {PAYLOAD}",
        "insurance_notes": f"{who} insurance {PAYLOAD}",
        "accessibility_notes": f"{who} access {PAYLOAD}",
        "license_number": CLOSES_DOUBLE_QUOTE,
        "accepts_referrals_from": "; ".join(VECTORS[:2]),
    }


# The JSON API's address fields, and the flat record's column for each.
ADDRESS = {
    "line1": "address_line1",
    "line2": "address_line2",
    "city": "city",
    "state": "state",
    "postal_code": "postal_code",
}
LISTS = ("specialties", "languages", "accepts_referrals_from")


def as_json(record: dict[str, str], *, email: str) -> dict:
    """The record as the JSON API's partner body."""
    body = {name: value for name, value in record.items() if name not in ADDRESS.values()}
    body |= {name: [item.strip() for item in record[name].split(";")] for name in LISTS}
    return body | {"address": {key: record[column] for key, column in ADDRESS.items()}, "email": email}


def as_csv(*records: dict[str, str]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(records[0]))
    writer.writeheader()
    writer.writerows(records)
    return out.getvalue()


A = partner_fields("Alpha")
# Email syntax refuses " < > (issue 16, item 8): the payload closes a single-quoted attribute
# with the characters a mailbox name may hold.
B = partner_fields("Bravo") | {"email": "'/autofocus/onfocus=alert`6`/'@xss.example"}
C = partner_fields("Charlie")
D = partner_fields("Delta")


@pytest.fixture(scope="module")
def partners(system: System, staff: None) -> Iterator[dict[str, dict]]:
    """Partners A (JSON API), B (CSV import) and C (JSON API) as the directory answers, once the
    referrals service has them too."""
    admin = token(system, ADMIN)
    refused = system.directory.post(
        "/api/v1/partners", headers=admin, json=as_json(A | {"website": "javascript:alert(1)"}, email="a@xss.example")
    )
    assert refused.status_code == 422 and refused.json()["extra"]["key"] == "website", refused.text
    stored = {}
    for name, record, email in (("A", A, "a@xss.example"), ("C", C, "c@xss.example")):
        created = system.directory.post("/api/v1/partners", headers=admin, json=as_json(record, email=email))
        assert created.status_code == 201, created.text
        stored[name] = created.json()
    imported = system.directory.post(
        "/api/v1/partners/import", headers={**admin, "content-type": "text/csv"}, content=as_csv(B)
    )
    assert imported.status_code == 200, imported.text
    found = system.directory.get("/api/v1/partners", params={"q": "Bravo"}).json()
    stored["B"] = next(p for p in found["items"] if p["name"] == B["name"])
    therapist = token(system, THERAPIST)

    def replicated() -> bool:
        answer = system.referrals.post(
            "/api/v1/referrals/suggestions", headers=therapist, json={"reasons": ["rehab_exercise_needed"], "limit": 10}
        )
        return answer.status_code == 200 and {p["id"] for p in stored.values()} <= {
            s["partner_id"] for s in answer.json()
        }

    eventually(replicated, timeout=60, what="the partners in the referrals replica")
    yield stored


@pytest.fixture
def dialogs() -> list[str]:
    return []


def watched(contexts: list[BrowserContext], browser: Browser, dialogs: list[str]) -> Page:
    """A page with the CSP bypassed whose every dialog is recorded (and dismissed)."""
    page = open_page(contexts, browser, bypass_csp=True)

    def record(dialog) -> None:
        dialogs.append(f"{dialog.type} {dialog.message!r} on {page.url}")
        dialog.dismiss()

    page.on("dialog", record)
    return page


def assert_inert(page: Page, dialogs: list[str], *shown: str) -> None:
    """Nothing fired or was injected on the page, and each of ``shown`` reads on it as text."""
    page.wait_for_load_state("load")
    assert not dialogs, dialogs
    injected = page.evaluate(INJECTED)
    assert not injected, f"injected into {page.url}: {injected}"
    for text in shown:
        # Visible ones: the public page's language picker holds each language as a (hidden) option too.
        expect(page.get_by_text(text).locator("visible=true").first).to_be_visible()


def test_partner_fields_render_as_text(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    partners: dict[str, dict],
    dialogs: list[str],
) -> None:
    public = watched(contexts, browser, dialogs)
    public.goto(f"{directory_url(system)}/partners-in-health")
    assert_inert(
        public, dialogs, *(r["name"] for r in (A, B, C)), A["address_line1"], A["city"], CLOSES_SINGLE_QUOTE, A["hours"]
    )
    public.get_by_role("search", name="Find a partner").get_by_label("Search").fill("Alpha")
    public.get_by_role("button", name="Show partners").click()
    expect(public.get_by_role("status")).to_have_text("Showing 1 partner.")
    assert_inert(public, dialogs, A["name"], A["practice"])

    for name, record in (("A", A), ("B", B), ("C", C)):
        public.goto(f"{directory_url(system)}/partners-in-health/{partners[name]['slug']}")
        expect(public).to_have_title(f"{record['name']} · Handoff Demo Clinic")
        expect(public.get_by_role("heading", level=1)).to_have_text(f"{record['name']}, {record['credentials']}")
        expect(public.get_by_role("link", name=WEBSITE)).to_have_attribute("href", WEBSITE)
        assert_inert(
            public,
            dialogs,
            record["bio"],
            record["practice"],
            record["address_line1"],
            record["address_line2"],
            record["city"],
            record["hours"],
            record["insurance_notes"],
            record["accessibility_notes"],
            CLOSES_RCDATA,
            CLOSES_SCRIPT,
        )

    admin = watched(contexts, browser, dialogs)
    log_in(admin, system, ADMIN)
    admin.goto(f"{directory_url(system)}/admin/partners/import")
    # Rejected values and column names are quoted back in the import report.
    bad_header = as_csv({"name": "x", "category": "physical_therapy", "email": "x@xss.example", PAYLOAD: "x"})
    _upload(admin, bad_header)
    expect(admin.get_by_role("alert")).to_contain_text("unknown column(s)")
    assert_inert(admin, dialogs, PAYLOAD)
    bad_rows = as_csv(
        A | {"name": "Echo", "email": "e@xss.example", "website": "javascript:alert(7)"},
        A | {"name": "Foxtrot", "email": CLOSES_RCDATA},
    )
    _upload(admin, bad_rows)
    report = admin.get_by_role("alert")
    expect(report).to_contain_text("2 row(s) cannot be imported, so nothing was imported.")
    expect(report).to_contain_text("column website")
    expect(report).to_contain_text("column email")
    assert_inert(admin, dialogs, "javascript:alert(7)", CLOSES_RCDATA)

    admin.goto(f"{directory_url(system)}/admin/partners/new")
    form = admin.locator("form[action='/admin/partners/new']")
    for name, label in FORM_LABELS.items():
        form.get_by_role("textbox", name=label, exact=True).fill(D[name])
    form.get_by_label("Referral email (never shown publicly)").fill("d@xss.example")
    # The category is chosen, never assumed (issue 13).
    form.get_by_label("Category").select_option(D["category"])
    form.get_by_role("button", name="Add partner").click()
    expect(admin.get_by_role("status")).to_have_text("Partner added.")

    expect(admin.get_by_role("heading", level=1)).to_have_text(f"Edit {D['name']}")
    _assert_form_holds(admin, D)
    assert_inert(admin, dialogs)
    for name, record in (("A", A), ("B", B)):
        admin.goto(f"{directory_url(system)}/admin/partners/{partners[name]['id']}")
        _assert_form_holds(admin, record)
        assert_inert(admin, dialogs)
    expect(admin.get_by_label("Referral email (never shown publicly)")).to_have_value(B["email"])
    admin.goto(f"{directory_url(system)}/admin/partners")
    assert_inert(admin, dialogs, *(r["name"] for r in (A, B, C, D)), A["city"])


FORM_LABELS = {
    "name": "Name",
    "credentials": "Credentials",
    "practice": "Practice or organisation",
    "specialties": "Specialties",
    "bio": "Short bio",
    "website": "Website",
    "address_line1": "Address",
    "address_line2": "Address, line 2",
    "city": "City",
    "state": "State",
    "postal_code": "ZIP code",
    "languages": "Languages",
    "hours": "Hours",
    "insurance_notes": "Insurance notes",
    "accessibility_notes": "Accessibility notes",
    "license_number": "Licence number",
    "accepts_referrals_from": "Takes referrals from",
}


def _upload(page: Page, text: str) -> None:
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "partners.csv", "mimeType": "text/csv", "buffer": text.encode()}]
    )
    page.get_by_role("button", name="Import").click()


def _assert_form_holds(page: Page, record: dict[str, str]) -> None:
    """The admin's edit form shows every stored value exactly, as a field's value."""
    for name, label in FORM_LABELS.items():
        expect(page.get_by_role("textbox", name=label, exact=True)).to_have_value(record[name])


def test_referral_fields_render_as_text(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    partners: dict[str, dict],
    dialogs: list[str],
) -> None:
    therapist_api = token(system, THERAPIST)

    def issue(client: str, partner: str, **extra: object) -> dict:
        issued = system.referrals.post(
            "/api/v1/referrals",
            headers=therapist_api,
            json={
                "client": {"name": client, "postal_code": "33701", "phone": "727-555-0142"},
                "consent": {
                    "given": True,
                    "method": "written",
                    "scope": ["clinical"],
                    "given_by": f"guardian {PAYLOAD}",
                },
                "reasons": ["rehab_exercise_needed"],
                "partner_ids": [partners[partner]["id"]],
                **extra,
            },
        )
        assert issued.status_code == 201, issued.text
        return issued.json()

    held = issue(f"Held {PAYLOAD}", "A")
    hold = system.referrals.post(
        f"/api/v1/referrals/{held['id']}/hold", headers=therapist_api, json={"reason": f"hold reason {PAYLOAD}"}
    )
    assert hold.status_code == 200, hold.text
    cancelled = issue(f"Cancelled {PAYLOAD}", "A")
    cancel = system.referrals.post(
        f"/api/v1/referrals/{cancelled['id']}/cancel",
        headers=therapist_api,
        json={"reason": f"cancel reason {PAYLOAD}"},
    )
    assert cancel.status_code == 200, cancel.text
    # The note may hold nothing of the client's name (partners read it before accepting), so the
    # note's payload goes on a referral for a client named plainly.
    waiting = issue("Waiting Person", "A", note=f"api note {PAYLOAD}")

    # Referral 1, through the therapist's forms: offered to A, then C.
    staff = watched(contexts, browser, dialogs)
    log_in(staff, system, THERAPIST)
    staff.goto(f"{referrals_url(system)}/referrals/new")
    client = staff.get_by_role("group", name="Client")
    client.get_by_label("Name").fill(f"Formed {PAYLOAD}")
    client.get_by_label("ZIP code").fill("33701")
    client.get_by_label("Phone").fill("727-555-0142")
    staff.get_by_role("checkbox", name=re.compile(r"^Needs a rehabilitation exercise plan")).check()
    # A note holding words of the client's name is refused; the form shows both back as text.
    staff.get_by_label("What you observed, in your words").fill(f"form note {PAYLOAD}")
    staff.get_by_role("button", name="Next: rules, consent and partners").click()
    expect(staff.get_by_role("alert")).to_contain_text("Partners read the note before they accept")
    expect(staff.get_by_label("What you observed, in your words")).to_have_value(f"form note {PAYLOAD}")
    expect(client.get_by_label("Name")).to_have_value(f"Formed {PAYLOAD}")
    assert_inert(staff, dialogs)
    staff.get_by_label("What you observed, in your words").fill("form note: knee stiff after a fall")
    staff.get_by_role("button", name="Next: rules, consent and partners").click()

    expect(staff.get_by_role("heading", level=1)).to_have_text(f"New referral for Formed {PAYLOAD}")
    expect(staff.get_by_label("Note for the partner")).to_have_value("form note: knee stiff after a fall")
    assert_inert(staff, dialogs, A["name"], B["name"], C["name"])
    consent = staff.get_by_role("group", name="Client consent")
    consent.get_by_role("checkbox", name="The client agrees to be referred").check()
    consent.get_by_label("Given by").fill(f"parent {PAYLOAD}")
    consent.get_by_role("radio", name="Verbal").check()
    consent.get_by_role("checkbox", name=re.compile(r"^Clinical partners")).check()
    offered = staff.get_by_role("group", name="Partners, offered one at a time in this order")
    for box in offered.get_by_role("checkbox").all():
        box.uncheck()
    for position, name in enumerate((A["name"], C["name"]), start=1):
        offered.get_by_role("checkbox", name=name, exact=True).check()
        offered.get_by_label(f"Order for {name}", exact=True).fill(str(position))
    staff.get_by_role("button", name="Send the referral").click()
    expect(staff.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Referral \S+$"))
    reference = staff.get_by_role("heading", level=1).inner_text().removeprefix("Referral ")
    formed_url = staff.url

    # A sees the referral (the note, their own name) and declines with a note; C accepts, reports.
    partner = watched(contexts, browser, dialogs)
    partner.goto(emailed_link(system, reference=reference, kind="/respond/", to="a@xss.example"))
    expect(partner.get_by_role("heading", level=1)).to_have_text(f"A referral for {A['name']}")
    assert_inert(partner, dialogs, "form note: knee stiff after a fall")
    partner.get_by_role("radio", name="I cannot take it").check()
    partner.get_by_label("Reason for declining").select_option(label="Other")
    partner.get_by_label("Note for the clinic (optional)").fill(f"decline note {PAYLOAD}")
    partner.get_by_role("button", name="Send my answer").click()
    expect(partner.get_by_role("heading", level=1)).to_have_text("Thank you for letting us know")
    assert_inert(partner, dialogs)

    partner.goto(emailed_link(system, reference=reference, kind="/respond/", to="c@xss.example"))
    expect(partner.get_by_role("heading", level=1)).to_have_text(f"A referral for {C['name']}")
    assert_inert(partner, dialogs, "form note: knee stiff after a fall")
    partner.get_by_role("radio", name="I accept this referral").check()
    partner.get_by_role("button", name="Send my answer").click()
    expect(partner.get_by_role("heading", level=1)).to_have_text("Thank you: you have accepted the referral")
    partner.goto(emailed_link(system, reference=reference, kind="/report/", to="c@xss.example"))
    assert_inert(partner, dialogs)
    partner.get_by_role("radio", name="Seen: our part of the care is complete").check()
    partner.get_by_role("radio", name="Massage with precautions").check()
    partner.get_by_label("Precautions: areas to avoid").fill(f"areas {PAYLOAD}")
    partner.get_by_label("Precautions: pressure limits").fill(f"pressure {PAYLOAD}")
    partner.get_by_label("Note for the therapist").fill(f"outcome note {PAYLOAD}")
    partner.get_by_role("button", name="Send the report").click()
    expect(partner.get_by_role("heading", level=1)).to_have_text("Thank you: your report is recorded")
    assert_inert(partner, dialogs)

    # A's link for the referral still waiting: its /respond page shows the API's note.
    partner.goto(emailed_link(system, reference=waiting["reference"], kind="/respond/", to="a@xss.example"))
    assert_inert(partner, dialogs, A["name"], f"api note {PAYLOAD}")

    staff.goto(formed_url)
    cleared = staff.get_by_role("region", name="Massage clearance: Massage with precautions")
    expect(cleared).to_contain_text(f"Areas to avoid: areas {PAYLOAD}")
    expect(cleared).to_contain_text(f"Pressure limits: pressure {PAYLOAD}")
    assert_inert(
        staff,
        dialogs,
        f"for Formed {PAYLOAD}",
        "form note: knee stiff after a fall",
        f"given by parent {PAYLOAD}",
        f"outcome note {PAYLOAD}",
        f"declined by {A['name']}: Other",
        f"accepted by {C['name']}",
    )
    staff.goto(f"{referrals_url(system)}/referrals/{held['id']}")
    assert_inert(staff, dialogs, f"Held {PAYLOAD}", f"hold reason {PAYLOAD}", f"given by guardian {PAYLOAD}")
    staff.goto(f"{referrals_url(system)}/referrals/{cancelled['id']}")
    assert_inert(staff, dialogs, f"Cancelled {PAYLOAD}", f"cancel reason {PAYLOAD}")
    staff.goto(f"{referrals_url(system)}/referrals/{waiting['id']}")
    assert_inert(staff, dialogs, "Waiting Person", f"api note {PAYLOAD}", f"offered to {A['name']}")

    staff.goto(f"{referrals_url(system)}/")
    assert_inert(staff, dialogs, f"Held {PAYLOAD}", "Waiting Person", f"{A['name']} (offered)")
    staff.get_by_role("search").get_by_label("Reference or client").fill("Formed")
    staff.get_by_role("search").get_by_role("button", name="Show").click()
    # The median-time-to-accept chart names C in SVG text, and its table in HTML.
    assert_inert(staff, dialogs, f"Formed {PAYLOAD}", "Referrals matching “Formed”")
    expect(staff.get_by_role("table", name=re.compile("^Median time to accept"))).to_contain_text(C["name"])

    staff.goto(f"{formed_url}/handout")
    assert_inert(
        staff, dialogs, f"Prepared for Formed {PAYLOAD}", C["name"], C["practice"], C["address_line1"], WEBSITE
    )
    staff.goto(f"{referrals_url(system)}/referrals/{held['id']}/handout")
    assert_inert(staff, dialogs, f"Prepared for Held {PAYLOAD}", A["name"])
