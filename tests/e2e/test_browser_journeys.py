"""Issue 7's browser journeys: a client browsing the Partners in Health page on a phone, a
therapist referring a client (an emergency first, then a routine reason), and a partner answering
and later reporting through their emailed links. Chromium drives the whole system as a person
would; assertions are on what the person sees (text, roles, accessible names, focus), and each
page they pass through is checked with axe-core. Screenshots are kept as test artifacts."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import (
    ADMIN,
    PHONE,
    THERAPIST,
    Screenshots,
    assert_accessible,
    directory_url,
    emailed_link,
    log_in,
    open_page,
    referrals_url,
)
from tests.support.polling import eventually
from tests.support.system import PASSWORD, System, token

CLIENT = "Jordan Whitaker"


@pytest.fixture(scope="module", autouse=True)
def demo_directory(system: System, staff: None) -> Iterator[None]:
    """The St. Petersburg demo directory, in both services (referrals keeps a replica)."""
    seeded = system.handoff("seed", "--demo")
    assert seeded.returncode == 0, seeded.stderr
    therapist = token(system, THERAPIST)

    def replicated() -> bool:
        answer = system.referrals.post(
            "/api/v1/referrals/suggestions",
            headers=therapist,
            json={"reasons": ["rehab_exercise_needed"], "postal_code": "33701"},
        )
        return answer.status_code == 200 and len(answer.json()) >= 3

    eventually(replicated, timeout=60, what="the demo partners in the referrals replica")
    yield


def test_a_client_on_a_phone_finds_a_physical_therapist_near_them(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    shots: Screenshots,
) -> None:
    page = open_page(contexts, browser, **PHONE)
    page.goto(f"{directory_url(system)}/partners-in-health")
    expect(page.get_by_role("heading", level=1, name="Partners in Health")).to_be_visible()
    expect(page.get_by_role("heading", level=2, name="Physical therapy")).to_be_visible()
    expect(page.get_by_role("heading", level=2, name="Podiatry")).to_be_visible()
    assert _fits_the_screen(page), "the page scrolls sideways on a phone"
    # The first Tab reaches the skip link, which takes keyboard users past the header.
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("main")).to_be_focused()
    shots(page, "all-partners")
    assert_accessible(page, "the public page")

    search = page.get_by_role("search", name="Find a partner")
    # On a phone the filters wait behind one "Filters" control, so the list starts on the first screen.
    expect(search.get_by_label("Kind of practitioner")).to_be_hidden()
    search.locator("summary").tap()
    search.get_by_label("Kind of practitioner").select_option(label="Physical therapy")
    search.get_by_label("Near ZIP code").fill("33701")
    search.get_by_role("button", name="Show partners").tap()

    expect(page.get_by_role("status")).to_have_text(re.compile(r"Showing \d+ partners"))
    expect(page.get_by_role("heading", level=2, name="Nearest first")).to_be_visible()
    # What was asked stays in the form.
    expect(search.get_by_label("Kind of practitioner")).to_have_value("physical_therapy")
    expect(search.get_by_label("Near ZIP code")).to_have_value("33701")
    cards = page.get_by_role("article")
    expect(cards.first).to_be_visible()
    shown = cards.all()
    assert len(shown) >= 3
    for card in shown:
        expect(card).to_contain_text("Physical therapy")
    # Miles (HANDOFF_DISTANCE_UNIT's default); a partner placed by ZIP only is "In 33701", not "0.0".
    distances = [_miles(card.inner_text()) for card in shown]
    assert distances == sorted(distances), f"not nearest first: {distances}"
    assert distances[-1] <= 25  # the default radius, in miles
    expect(cards.first).to_have_accessible_name("Bay Physical Therapy (demo), DPT")
    assert _fits_the_screen(page), "the results scroll sideways on a phone"
    shots(page, "physical-therapists-near-33701")
    assert_accessible(page, "the public page's search results")

    cards.first.get_by_role("link", name="Bay Physical Therapy (demo)", exact=True).tap()
    expect(page.get_by_role("heading", level=1)).to_have_text("Bay Physical Therapy (demo), DPT")
    expect(
        page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="Physical therapy")
    ).to_be_visible()
    expect(page.get_by_text("100 Central Ave")).to_be_visible()
    phone = page.get_by_role("link", name=re.compile(r"^\(\d{3}\) \d{3}-\d{4}$"))
    expect(phone).to_have_attribute("href", re.compile(r"^tel:\+1\d{10}$"))
    expect(page.get_by_text("Accepting new clients")).to_be_visible()
    # Referrals go through the clinic: the partner's referral email is never on the public page.
    expect(page.get_by_text("@")).to_have_count(0)
    assert _fits_the_screen(page), "the partner page scrolls sideways on a phone"
    shots(page, "partner-page")
    assert_accessible(page, "a partner's public page")


def test_a_therapist_stops_at_an_emergency_then_refers_a_routine_case(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    shots: Screenshots,
) -> None:
    page = open_page(contexts, browser)
    # A staff page sends a visitor who is not logged in to the login page, then back.
    page.goto(f"{referrals_url(system)}/referrals/new")
    expect(page.get_by_role("heading", name="Staff log in")).to_be_visible()
    expect(page.get_by_label("Email")).to_be_focused()
    shots(page, "login")
    page.get_by_label("Email").fill(THERAPIST)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1, name="New referral")).to_be_visible()
    expect(page.get_by_text(THERAPIST)).to_be_visible()
    assert_accessible(page, "the referral form, step 1")

    _describe_client(page)
    page.get_by_role("checkbox", name=re.compile(r"^Sudden breathlessness or chest pain")).check()
    shots(page, "emergency-reason")
    page.get_by_role("button", name="Next: rules, consent and partners").click()

    alert = page.get_by_role("alert")
    expect(alert.get_by_role("heading", level=1)).to_have_text("Emergency: act now. This is not a referral.")
    expect(alert.get_by_role("link", name="Call 911")).to_have_attribute("href", "tel:911")
    expect(alert).to_contain_text("No referral was created")
    shots(page, "emergency-stop")
    assert_accessible(page, "the emergency page")

    page.get_by_role("link", name="Back to referrals").click()
    page.get_by_role("navigation", name="Staff").get_by_role("link", name="New referral").click()
    _describe_client(page)
    page.get_by_label("Filter reasons").fill("rehab")
    # The filter hides what does not match (the page's own script, under its real CSP).
    expect(page.get_by_role("checkbox", name=re.compile(r"^Sudden breathlessness"))).to_be_hidden()
    page.get_by_role("checkbox", name=re.compile(r"^Needs a rehabilitation exercise plan")).check()
    page.get_by_label("What you observed, in your words").fill(
        "Stiff left knee six weeks after a fall; climbs stairs one step at a time."
    )
    shots(page, "routine-reason")
    page.get_by_role("button", name="Next: rules, consent and partners").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"New referral for {CLIENT}")
    expect(page.get_by_role("heading", name=re.compile(r"What the rules say: routine"))).to_be_visible()
    partners = page.get_by_role("group", name="Partners, offered one at a time in this order")
    offered = partners.get_by_role("checkbox")
    expect(offered.first).to_be_visible()
    assert offered.count() >= 3
    assert_accessible(page, "the referral form, step 2")
    shots(page, "review")

    consent = page.get_by_role("group", name="Client consent")
    consent.get_by_role("checkbox", name="The client agrees to be referred").check()
    consent.get_by_role("radio", name="Verbal").check()
    consent.get_by_role("checkbox", name=re.compile(r"^Clinical partners")).check()
    # The therapist keeps only the first suggestion.
    for box in offered.all():
        box.uncheck()
    first = partners.get_by_role("row").nth(1).get_by_role("checkbox")
    first.check()
    chosen = first.get_attribute("id")
    partner_name = partners.locator(f"label[for='{chosen}']").inner_text().strip()
    shots(page, "consent-and-partner")
    page.get_by_role("button", name="Send the referral").click()

    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text(re.compile(r"^Referral \S+$"))
    expect(page.get_by_text("status requested")).to_be_visible()
    expect(page.get_by_text(f"for {CLIENT}")).to_be_visible()
    offers = page.get_by_role("table").filter(has=page.get_by_role("columnheader", name="Answer by"))
    expect(offers.get_by_role("row")).to_have_count(2)
    expect(offers.get_by_role("row").nth(1)).to_contain_text(f"{partner_name} offered")
    shots(page, "sent")
    referral_url = page.url

    # Cancelling asks first, without JavaScript: a page saying who will be told; "No" changes nothing.
    page.get_by_role("link", name="Cancel this referral…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Cancel referral \S+\?$"))
    expect(page.get_by_text(f"{partner_name} is told by email that the referral is cancelled")).to_be_visible()
    expect(page.get_by_text(f"{CLIENT} is not told: let them know yourself.")).to_be_visible()
    shots(page, "cancel-confirm")
    assert_accessible(page, "the cancel confirmation")
    page.set_viewport_size({"width": 390, "height": 844})
    assert _fits_the_screen(page), "the cancel confirmation scrolls sideways on a phone"
    shots(page, "cancel-confirm-390")
    page.set_viewport_size({"width": 1280, "height": 720})
    page.get_by_role("link", name="No, keep it").click()
    expect(page.get_by_text("status requested")).to_be_visible()
    page.get_by_role("link", name="Cancel this referral…").click()
    page.get_by_label(re.compile(r"^Why \(optional, kept on the timeline")).fill("Client chose a PT near work")
    page.get_by_role("button", name="Yes, cancel this referral").click()
    assert page.url == referral_url
    expect(page.get_by_text("status cancelled")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel this referral…")).to_have_count(0)
    shots(page, "cancelled")

    # The client is a record of their own: their page, from the referral's.
    page.get_by_role("link", name=CLIENT, exact=True).click()
    expect(page.get_by_role("heading", level=1, name=CLIENT)).to_be_visible()
    expect(page.get_by_role("link", name="(727) 555-0177")).to_have_attribute("href", "tel:+17275550177")
    expect(page.get_by_role("link", name=re.compile(r"^HX-"))).to_have_count(1)
    shots(page, "client")
    assert_accessible(page, "a client's page")

    # The next referral for them starts from their record, found by phone, on a phone.
    phone = open_page(contexts, browser, **PHONE)
    log_in(phone, system, THERAPIST)
    phone.goto(f"{referrals_url(system)}/referrals/new")
    shots(phone, "new-client-form-390")
    assert _fits_the_screen(phone), "the new-referral form scrolls sideways on a phone"
    finder = phone.get_by_role("search", name="Find an existing client")
    finder.get_by_label("Find an existing client").fill("727 555 0177")
    finder.get_by_role("button", name="Find").tap()
    expect(phone.get_by_role("heading", level=2, name="1 client found")).to_be_visible()
    shots(phone, "client-found-390")
    phone.get_by_role("link", name=CLIENT, exact=True).tap()
    chosen = phone.get_by_role("group", name="Client")
    expect(chosen).to_contain_text(f"Referring {CLIENT}")
    assert _fits_the_screen(phone), "the form with a chosen client scrolls sideways on a phone"
    shots(phone, "existing-client-390")
    assert_accessible(phone, "the referral form for an existing client")


@pytest.mark.parametrize("size", ["wide", "phone"])
def test_a_therapist_shares_advice_then_sends_a_mixed_pair_as_two_referrals(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    shots: Screenshots,
    size: str,
) -> None:
    """Issue 17: abuse disclosure needs no partner (advice, recorded, no referral); a DVT sign
    and a rehab question need different kinds of partner, so they go as two referrals sent
    together under one consent, most urgent first, each linked to the other. At 1280 and 390 px."""
    page = open_page(contexts, browser, **(PHONE if size == "phone" else {"viewport": {"width": 1280, "height": 900}}))
    log_in(page, system, THERAPIST)
    page.goto(f"{referrals_url(system)}/referrals/new")
    _describe_client(page)
    page.get_by_label("Filter reasons").fill("abuse")
    page.get_by_role("checkbox", name=re.compile(r"^Client discloses abuse")).check()
    page.get_by_role("button", name="Next: rules, consent and partners").click()

    alert = page.get_by_role("alert")
    expect(alert.get_by_role("heading", level=1)).to_have_text("Act now: share this advice. No referral is needed.")
    expect(alert.get_by_role("link", name="Call the Hotline: 1-800-799-7233")).to_have_attribute(
        "href", "tel:+18007997233"
    )
    expect(alert.get_by_role("link", name="Text START to 88788")).to_have_attribute("href", "sms:88788?body=START")
    expect(alert.get_by_role("link", name="Call 911")).to_have_attribute("href", "tel:911")
    expect(alert).to_contain_text("mandated-reporting")
    expect(alert).to_contain_text("No referral was created")
    expect(page.get_by_role("button", name=re.compile("Print"))).to_have_count(0)
    assert _fits_the_screen(page), "the advice page scrolls sideways"
    shots(page, f"{size}-advice")
    assert_accessible(page, "the advice page")

    page.get_by_role("link", name="Start a new referral").click()
    _describe_client(page)
    page.get_by_role("checkbox", name=re.compile(r"^One-sided calf")).check()
    page.get_by_role("checkbox", name=re.compile(r"^Needs a rehabilitation exercise plan")).check()
    page.get_by_label("What you observed, in your words").fill(
        "Left calf warm and swollen since Tuesday; stiff left knee six weeks after a fall."
    )
    page.get_by_role("button", name="Next: rules, consent and partners").click()

    expect(page.get_by_role("status").filter(has_text="2 referrals will be sent together")).to_be_visible()
    urgent = page.get_by_role("group", name=re.compile(r"^Referral 1 of 2, urgent\W+One-sided calf"))
    routine = page.get_by_role("group", name=re.compile(r"^Referral 2 of 2, routine\W+Needs a rehabilitation"))
    expect(urgent.get_by_role("checkbox").first).to_be_checked()
    expect(routine.get_by_role("checkbox").first).to_be_checked()
    consent = page.get_by_role("group", name=re.compile(r"^Client consent, for all 2 referrals"))
    consent.get_by_role("checkbox", name=re.compile(r"^The client agrees to be referred")).check()
    consent.get_by_role("radio", name="Verbal").check()
    consent.get_by_role("checkbox", name=re.compile(r"^Clinical partners")).check()
    assert _fits_the_screen(page), "the split review scrolls sideways"
    shots(page, f"{size}-split-review")
    assert_accessible(page, "the referral form, step 2, split in two")
    page.get_by_role("button", name="Send the 2 referrals together").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Referral \S+$"))
    expect(page.get_by_text("status requested")).to_be_visible()
    together = page.get_by_role("region", name="Sent together with")
    expect(together.get_by_role("link")).to_have_count(1)
    expect(together).to_contain_text("routine")
    expect(page.get_by_role("heading", name="What the client is told to do")).to_be_visible()
    first_reference = page.get_by_role("heading", level=1).inner_text().split()[-1]
    shots(page, f"{size}-split-sent-urgent")
    assert_accessible(page, "the urgent referral, sent together")

    together.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).not_to_have_text(f"Referral {first_reference}")
    expect(page.get_by_role("region", name="Sent together with").get_by_role("link")).to_have_text(first_reference)
    shots(page, f"{size}-split-sent-routine")


def test_a_partner_accepts_by_email_and_reports_clearance_the_therapist_sees_it(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    shots: Screenshots,
) -> None:
    therapist = token(system, THERAPIST)
    suggestions = system.referrals.post(
        "/api/v1/referrals/suggestions",
        headers=therapist,
        json={"reasons": ["rehab_exercise_needed"], "postal_code": "33701"},
    ).json()
    # The second partner is never offered it: once the first accepts, that offer is not needed.
    partner, unused = suggestions[0], suggestions[1]
    issued = system.referrals.post(
        "/api/v1/referrals",
        headers=therapist,
        json={
            "client": {"name": "Casey Lindqvist-Moore", "postal_code": "33701", "phone": "727-555-0163"},
            "consent": {"given": True, "method": "written", "scope": ["clinical"]},
            "reasons": ["rehab_exercise_needed"],
            "note": "Right shoulder stiff since March; no fall.",
            "partner_ids": [partner["partner_id"], unused["partner_id"]],
        },
    )
    assert issued.status_code == 201, issued.text
    referral = issued.json()

    offer_link = emailed_link(system, reference=referral["reference"], kind="/respond/")
    page = open_page(contexts, browser)
    page.goto(offer_link)
    expect(page.get_by_role("heading", level=1)).to_have_text(f"A referral for {partner['name']}")
    expect(page.get_by_text(referral["reference"])).to_be_visible()
    expect(page.get_by_text("Right shoulder stiff since March; no fall.")).to_be_visible()
    # The client's name is shared only once the partner accepts.
    expect(page.get_by_text("Casey")).to_have_count(0)
    shots(page, "offer")
    assert_accessible(page, "the partner's page (/respond)")

    # Sent without a choice, then a decline without its reason: the form again, every error
    # beside its field by label, what was chosen and typed kept.
    answer = page.get_by_role("group", name="Your answer")
    page.get_by_role("button", name="Send my answer").click()
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("Your answer: choose accept or decline")
    expect(answer).to_contain_text("Your answer: choose accept or decline")
    shots(page, "answer-without-a-choice")
    answer.get_by_role("radio", name="I cannot take it").check()
    answer.get_by_label("Note for the clinic (optional)").fill("Fully booked until the 15th.")
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("alert")).to_contain_text("Reason for declining: say why you are declining")
    expect(page.get_by_role("alert")).not_to_contain_text("Your answer")
    expect(answer.get_by_role("radio", name="I cannot take it")).to_be_checked()
    expect(answer.get_by_label("Note for the clinic (optional)")).to_have_value("Fully booked until the 15th.")
    expect(answer.get_by_label("Reason for declining")).to_have_attribute("aria-invalid", "true")
    shots(page, "answer-errors")
    assert_accessible(page, "the partner's answer form with its errors")
    page.set_viewport_size({"width": 390, "height": 844})
    assert _fits_the_screen(page), "the answer form with errors scrolls sideways on a phone"
    shots(page, "answer-errors-390")
    page.set_viewport_size({"width": 1280, "height": 720})
    answer.get_by_label("Note for the clinic (optional)").fill("")

    answer.get_by_role("radio", name="I accept this referral").check()
    expect(answer.get_by_role("radio", name="I accept this referral")).to_be_focused()
    page.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: you have accepted the referral")
    # Now, and only now, this partner sees who the client is and how to reach them.
    who = page.get_by_role("region", name="The client")
    expect(who).to_contain_text("Casey Lindqvist-Moore")
    expect(who.get_by_role("link", name="(727) 555-0163")).to_have_attribute("href", "tel:+17275550163")
    expect(who).to_contain_text("Please call the client to book.")
    shots(page, "accepted")
    assert_accessible(page, "the accepting partner's page")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(offer_link)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"you accepted it$"))
    expect(page.get_by_role("region", name="The client")).to_contain_text("Casey Lindqvist-Moore")
    assert _fits_the_screen(page), "the accepted page scrolls sideways on a phone"
    shots(page, "accepted-390")
    page.set_viewport_size({"width": 1280, "height": 720})

    report_link = emailed_link(system, reference=referral["reference"], kind="/report/")
    page.goto(report_link)
    expect(page.get_by_role("heading", level=1)).to_have_text("How did the referral go?")
    assert_accessible(page, "the partner's outcome report form")
    page.get_by_role("group", name="Outcome").get_by_role(
        "radio", name="Seen: our part of the care is complete"
    ).check()
    clearance = page.get_by_role("group", name=re.compile(r"^Massage clearance"))
    clearance.get_by_role("radio", name="Massage with precautions").check()
    clearance.get_by_label("Precautions: areas to avoid").fill("right shoulder blade")
    clearance.get_by_label("Precautions: pressure limits").fill("light pressure only, no deep work")
    page.get_by_label("Note for the therapist").fill("Home exercises twice a day for four weeks.")
    # A date typed a century off is refused in plain words; the rest stays as filled.
    page.get_by_label("Appointment date (when booked)").fill("1999-01-01")
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_role("alert")).to_contain_text("Appointment date: January 1, 1999 is in the past")
    expect(clearance.get_by_label("Precautions: areas to avoid")).to_have_value("right shoulder blade")
    expect(clearance.get_by_role("radio", name="Massage with precautions")).to_be_checked()
    shots(page, "report-errors")
    assert_accessible(page, "the outcome report form with its errors")
    page.get_by_label("Appointment date (when booked)").fill("")
    shots(page, "report")
    page.get_by_role("button", name="Send the report").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you: your report is recorded")
    expect(page.get_by_text("the referral is complete")).to_be_visible()
    shots(page, "reported")

    staff = open_page(contexts, browser)
    log_in(staff, system, THERAPIST)
    expect(staff.get_by_role("heading", level=1, name="Referrals")).to_be_visible()
    # One control, one tab stop: the "New referral" call to action is a link, not a button in one.
    start = staff.get_by_role("main").get_by_role("link", name="New referral")
    start.focus()
    staff.keyboard.press("Tab")
    expect(staff.get_by_role("search").get_by_label("Reference or client")).to_be_focused()
    search = staff.get_by_role("search")
    search.get_by_label("Reference or client").fill(referral["reference"])
    search.get_by_label("Status").select_option("completed")
    search.get_by_role("button", name="Show").click()
    row = staff.get_by_role("row").filter(has=staff.get_by_role("link", name=referral["reference"]))
    expect(row).to_contain_text("Casey Lindqvist-Moore")
    expect(row).to_contain_text("completed")
    funnel = staff.get_by_role("table", name=re.compile(r"^Referral funnel"))
    expect(funnel.get_by_role("row", name=re.compile(r"^completed [1-9]"))).to_be_visible()
    shots(staff, "dashboard")
    assert_accessible(staff, "the therapist's dashboard")

    row.get_by_role("link", name=referral["reference"]).click()
    cleared = staff.get_by_role("region", name="Massage clearance: Massage with precautions")
    expect(cleared).to_contain_text("Areas to avoid: right shoulder blade")
    expect(cleared).to_contain_text("Pressure limits: light pressure only, no deep work")
    expect(cleared).to_contain_text("Partner's note: Home exercises twice a day for four weeks.")
    expect(staff.get_by_text("status completed")).to_be_visible()
    offers = staff.get_by_role("table").filter(has=staff.get_by_role("columnheader", name="Answer by"))
    expect(offers.get_by_role("row").nth(1)).to_contain_text(f"{partner['name']} accepted")
    expect(offers.get_by_role("row").nth(2)).to_contain_text(f"{unused['name']} not needed")
    # The timeline in sentences, each email under the step that sent it.
    timeline = staff.get_by_role("list", name="Timeline")
    accepted = timeline.get_by_role("listitem").filter(has_text=f"accepted by {partner['name']}")
    expect(accepted).to_contain_text("Email to tess@clinic.example: accepted")
    expect(timeline).not_to_contain_text("notifier")
    shots(staff, "referral-with-clearance")
    assert_accessible(staff, "a referral's page")
    staff.set_viewport_size({"width": 390, "height": 844})
    staff.reload()
    assert _fits_the_screen(staff), "the referral page scrolls sideways on a phone"
    shots(staff, "referral-with-clearance-390")


def test_an_admin_lists_the_emergency_stops(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    shots: Screenshots,
) -> None:
    stopped = system.referrals.post(
        "/api/v1/referrals",
        headers=token(system, THERAPIST),
        json={
            "client": {"name": "Robin Asante", "phone": "727-555-0190"},
            "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
            "reasons": ["chest_pain_breathless"],
        },
    )
    assert stopped.status_code == 422 and stopped.json()["extra"]["urgency"] == "emergency"
    for size, options in (("1280", {}), ("390", PHONE)):
        page = open_page(contexts, browser, **options)
        log_in(page, system, ADMIN)
        expect(page.get_by_role("heading", level=3, name="Emergency stops")).to_be_visible()
        page.get_by_role("link", name="See every emergency stop").click()
        expect(page.get_by_role("heading", level=1, name="Emergency stops")).to_be_visible()
        newest = page.get_by_role("row").nth(1)
        expect(newest).to_contain_text(THERAPIST)
        expect(newest).to_contain_text("Sudden breathlessness or chest pain")
        expect(page.get_by_text("Robin")).to_have_count(0)
        assert _fits_the_screen(page), f"the emergency stops page scrolls sideways at {size} px"
        shots(page, f"emergency-stops-{size}")
        assert_accessible(page, "the emergency stops page")


def _describe_client(page: Page) -> None:
    client = page.get_by_role("group", name="Client")
    client.get_by_label("Name").fill(CLIENT)
    client.get_by_label("Phone").fill("727-555-0177")
    client.get_by_label("ZIP code").fill("33701")


def _miles(card_text: str) -> float:
    if "In 33701" in card_text:
        return 0.0
    found = re.search(r"(?:About |Less than )?([\d.]+) mi away", card_text)
    assert found, f"no distance in miles on the card: {card_text!r}"
    return float(found.group(1))


def _fits_the_screen(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def test_a_partner_with_three_offers_answers_one_in_their_inbox(
    browser: Browser,
    contexts: list[BrowserContext],
    system: System,
    shots: Screenshots,
) -> None:
    """Issue 14 item 5: the inbox link in an offer email lists every open offer to that partner;
    one is accepted there, and the client's details then show there, for that one only."""
    therapist = token(system, THERAPIST)
    partner = system.referrals.post(
        "/api/v1/referrals/suggestions",
        headers=therapist,
        json={"reasons": ["rehab_exercise_needed"], "postal_code": "33701"},
    ).json()[1]
    references = []
    for name in ("Robin Inbox-One", "Sam Inbox-Two", "Alex Inbox-Three"):
        issued = system.referrals.post(
            "/api/v1/referrals",
            headers=therapist,
            json={
                "client": {"name": name, "postal_code": "33701", "phone": "727-555-0170"},
                "consent": {"given": True, "method": "verbal", "scope": ["clinical"]},
                "reasons": ["rehab_exercise_needed"],
                "partner_ids": [partner["partner_id"]],
            },
        )
        assert issued.status_code == 201, issued.text
        references.append(issued.json()["reference"])

    inbox_link = emailed_link(system, reference=references[-1], kind="/inbox/")
    page = open_page(contexts, browser)
    page.goto(inbox_link)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Your referrals from "))
    for reference in references:
        expect(page.get_by_role("region", name=re.compile(f"^Referral {reference}"))).to_be_visible()
    expect(page.get_by_text("Inbox-")).to_have_count(0)  # no client's name before accepting
    shots(page, "inbox")
    assert_accessible(page, "the partner inbox")

    first = page.get_by_role("region", name=re.compile(f"^Referral {references[0]}"))
    first.get_by_role("radio", name="I accept this referral").check()
    first.get_by_role("button", name="Send my answer").click()
    expect(page.get_by_role("status")).to_contain_text("you accepted the referral")
    expect(page.get_by_role("region", name=re.compile(f"^Referral {references[1]}"))).to_be_visible()
    accepted = page.get_by_role("region", name=re.compile(f"^Referral {references[0]}"))
    expect(accepted).to_contain_text("Robin Inbox-One")
    expect(page.get_by_text("Sam Inbox-Two")).to_have_count(0)
    shots(page, "inbox-accepted")
    assert_accessible(page, "the partner inbox after accepting")

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(inbox_link)
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Your referrals from "))
    shots(page, "inbox-390")
    assert _fits_the_screen(page), "the inbox scrolls sideways on a phone"

    # A leaked link: the admin turns off that address's links; the old one is refused at once.
    admin = open_page(contexts, browser)
    log_in(admin, system, ADMIN)
    admin.goto(f"{referrals_url(system)}/admin/inbox")
    expect(admin.get_by_role("heading", level=1)).to_have_text("Partner inbox links")
    row = admin.get_by_role("row").filter(has_text=partner["name"])
    shots(admin, "admin-inbox")
    assert_accessible(admin, "the admin's partner inbox links page")
    row.get_by_role("button", name="Turn off links for").click()
    expect(admin.get_by_role("status")).to_contain_text("Turned off every inbox link sent to")
    page.goto(inbox_link)
    expect(page.get_by_role("heading", level=1)).to_have_text("This inbox link was turned off")
    shots(page, "inbox-turned-off-390")
