"""Issue 13's browser journeys: the two services read as one product. An admin goes from the
referrals home to the partner admin and back by the shared navigation; a therapist who opens a
partner-admin page sees the styled refusal with the navigation; every staff page fits a 390 px
phone; the public page understands everyday words ("chiropractor", "dietitian", "doctor") and
languages by code, measures in miles, offers ways out of an empty result, and both services
serve a favicon. Screenshots at 1280 and 390 px are kept as test artifacts."""

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
    log_in,
    open_page,
    referrals_url,
)
from tests.support.system import System

DESKTOP = {"viewport": {"width": 1280, "height": 900}}


@pytest.fixture(scope="module", autouse=True)
def demo_directory(system: System, staff: None) -> Iterator[None]:
    seeded = system.handoff("seed", "--demo")
    assert seeded.returncode == 0, seeded.stderr
    yield


def _fits(page: Page, width: int = 390) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth") <= width


def _staff_nav(page: Page):
    return page.get_by_role("navigation", name="Staff")


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_an_admin_goes_from_referrals_to_the_partner_admin_and_back_by_links(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots, screen: str
) -> None:
    page = open_page(contexts, browser, **(PHONE if screen == "phone" else DESKTOP))
    log_in(page, system, ADMIN)
    expect(page.get_by_role("heading", level=1, name="Referrals")).to_be_visible()
    nav = _staff_nav(page)
    for label in ("Referrals", "New referral", "Partners", "Import/Export", "Staff", "Public page"):
        expect(nav.get_by_role("link", name=label, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name="Referrals", exact=True)).to_have_attribute("aria-current", "page")
    shots(page, f"{screen}-referrals-home")
    assert_accessible(page, "the referrals home")

    nav.get_by_role("link", name="Partners", exact=True).click()
    expect(page).to_have_url(re.compile(rf"^{directory_url(system)}/admin/partners"))
    expect(page.get_by_role("heading", level=1, name="Partners")).to_be_visible()
    # The same header, the same look: the shared stylesheet is loaded on the directory too.
    expect(_staff_nav(page).get_by_role("link", name="Partners", exact=True)).to_have_attribute("aria-current", "page")
    assert page.evaluate("() => getComputedStyle(document.querySelector('.staff-header')).borderBottomStyle") == "solid"
    shots(page, f"{screen}-partner-admin")
    assert_accessible(page, "the partner admin")

    _staff_nav(page).get_by_role("link", name="Referrals", exact=True).click()
    expect(page).to_have_url(f"{referrals_url(system)}/")
    expect(page.get_by_role("heading", level=1, name="Referrals")).to_be_visible()


def test_a_therapist_on_a_partner_admin_page_sees_a_styled_refusal_with_the_navigation(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots
) -> None:
    for screen in ("desktop", "phone"):
        page = open_page(contexts, browser, **(PHONE if screen == "phone" else DESKTOP))
        log_in(page, system, THERAPIST)
        answer = page.goto(f"{directory_url(system)}/admin/partners/new")
        assert answer is not None and answer.status == 403
        expect(page.get_by_role("heading", level=1, name="Your account cannot open this page")).to_be_visible()
        nav = _staff_nav(page)
        expect(nav.get_by_role("link", name="Referrals", exact=True)).to_be_visible()
        expect(nav.get_by_role("link", name="Partners", exact=True)).to_have_count(0)
        expect(nav.get_by_role("button", name="Log out")).to_be_visible()
        assert page.evaluate("() => getComputedStyle(document.body).fontFamily") != "Times New Roman"
        assert page.evaluate("() => getComputedStyle(document.querySelector('main')).borderTopStyle") == "solid"
        assert _fits(page, 390 if screen == "phone" else 1280)
        shots(page, f"{screen}-therapist-refused")
        assert_accessible(page, "the refusal page")
        # An address that does not exist: the same styled page, not JSON.
        missing = page.goto(f"{referrals_url(system)}/no-such-page")
        assert missing is not None and missing.status == 404
        expect(page.get_by_role("heading", level=1, name="Page not found")).to_be_visible()
        expect(_staff_nav(page).get_by_role("link", name="New referral")).to_be_visible()


STAFF_PAGES = [
    ("referrals", "/"),
    ("referrals", "/referrals/new"),
    ("referrals", "/admin/staff"),
    ("referrals", "/logout"),
    ("directory", "/admin/partners"),
    ("directory", "/admin/partners/new"),
    ("directory", "/admin/partners/import"),
]


def test_every_staff_page_fits_a_phone(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots
) -> None:
    page = open_page(contexts, browser, **PHONE)
    log_in(page, system, ADMIN)
    urls = {"referrals": referrals_url(system), "directory": directory_url(system)}
    too_wide = []
    for service, path in STAFF_PAGES:
        page.goto(urls[service] + path)
        expect(page.get_by_role("heading", level=1).first).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        if width > 390:
            too_wide.append((service, path, width))
        shots(page, f"{service}{path.replace('/', '-')}")
    # A partner's edit page, reached from the list.
    page.goto(urls["directory"] + "/admin/partners")
    page.get_by_role("table").get_by_role("link").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Edit")
    if not _fits(page):
        too_wide.append(("directory", page.url, page.evaluate("() => document.documentElement.scrollWidth")))
    shots(page, "directory-partner-edit")
    assert too_wide == [], f"staff pages wider than 390 px: {too_wide}"


@pytest.mark.parametrize(
    ("words", "kind"),
    [
        ("chiropractor", "Chiropractic"),
        ("dietitian", "Registered dietitian"),
        ("doctor", "Primary-care physician"),
        ("nutritionist", "Registered dietitian"),
    ],
)
def test_the_public_search_understands_everyday_words(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots, words: str, kind: str
) -> None:
    page = open_page(contexts, browser, **DESKTOP)
    page.goto(f"{directory_url(system)}/partners-in-health")
    search = page.get_by_role("search", name="Find a partner")
    search.get_by_label("Search").fill(words)
    search.get_by_role("button", name="Show partners").click()
    expect(page.get_by_role("status")).to_have_text(re.compile(r"Showing \d+ partners?"))
    # The kind the word names comes first.
    expect(page.get_by_role("heading", level=2).first).to_have_text(kind)
    expect(page.get_by_role("article").first).to_contain_text(kind)
    shots(page, f"search-{words}")


def test_a_client_on_a_phone_finds_spanish_speakers_near_a_zip_in_miles(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots
) -> None:
    page = open_page(contexts, browser, **PHONE)
    page.goto(f"{directory_url(system)}/partners-in-health?language=es")
    cards = page.get_by_role("article")
    expect(cards.first).to_be_visible()
    for card in cards.all():
        expect(card).to_contain_text("Spanish")
    search = page.get_by_role("search", name="Find a partner")
    expect(search.get_by_label("Language")).to_have_value("es")
    assert _fits(page)
    shots(page, "phone-spanish")
    assert_accessible(page, "the public page's results")

    search.locator("summary").tap()
    search.get_by_label("Language").select_option(label="Spanish (Español)")
    search.get_by_label("Near ZIP code").fill("33701")
    search.get_by_role("button", name="Apply filters").tap()
    expect(page.get_by_role("heading", level=2, name="Nearest first")).to_be_visible()
    first = cards.first.inner_text()
    assert re.search(r"(In 33701|[\d.]+ mi away)", first), first
    assert " km away" not in page.content()
    shots(page, "phone-spanish-near-33701")

    # Nothing matches: ways out rather than a dead end.
    page.goto(f"{directory_url(system)}/partners-in-health?q=zzzzqq&zip=33701")
    expect(page.get_by_role("status")).to_have_text("No partner matches these filters.")
    expect(page.get_by_role("link", name=re.compile("^Without the words"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("telehealth"))).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Look farther"))).to_be_visible()
    shots(page, "phone-empty-state")
    assert_accessible(page, "the empty state")


def test_both_services_serve_a_favicon(browser: Browser, contexts: list[BrowserContext], system: System) -> None:
    page = open_page(contexts, browser)
    for url in (directory_url(system), referrals_url(system)):
        answer = page.request.get(f"{url}/favicon.ico")
        assert answer.status == 200 and answer.headers["content-type"] == "image/x-icon", url
        assert answer.body()[:4] == b"\x00\x00\x01\x00"


@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_a_partner_form_with_seven_bad_fields_says_so_once_and_keeps_them(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots, screen: str
) -> None:
    page = open_page(contexts, browser, **(PHONE if screen == "phone" else DESKTOP))
    log_in(page, system, ADMIN)
    page.goto(f"{directory_url(system)}/admin/partners/new")
    expect(page.get_by_label("Category")).to_have_value("")  # chosen, never assumed
    page.get_by_label("Category").select_option(label="Physical therapy")
    typed = {
        "Referral email (never shown publicly)": "not-an-address",
        "Website": "baypt dot example",
        "State": "Florida",
        "ZIP code": "1234",
        "Latitude": "north",
        "Longitude": "-82.64",
        "Response window (days)": "",
    }
    for label, value in typed.items():
        if value:
            page.get_by_role("textbox", name=label, exact=True).fill(value)
    page.get_by_label("Response window (days)").evaluate("(input) => { input.type = 'text'; input.value = 'soon'; }")
    page.get_by_role("button", name="Add partner").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("fix the 7 fields below")
    expect(alert.get_by_role("listitem")).to_have_count(7)
    for label in ("Name", "Referral email", "Website", "State", "ZIP code", "Latitude", "Response window (days)"):
        expect(alert.get_by_role("link", name=re.compile(rf"^{re.escape(label)}"))).to_have_count(1)
    for label, value in typed.items():
        if value:
            expect(page.get_by_role("textbox", name=label, exact=True)).to_have_value(value)
    assert _fits(page, 390 if screen == "phone" else 1280)
    shots(page, f"{screen}-seven-errors")
    assert_accessible(page, "the partner form with errors")


def test_archiving_a_partner_and_disabling_an_account_each_ask_first(
    browser: Browser, contexts: list[BrowserContext], system: System, shots: Screenshots
) -> None:
    page = open_page(contexts, browser, **PHONE)
    log_in(page, system, ADMIN)
    page.goto(f"{directory_url(system)}/admin/partners")
    page.get_by_role("table").get_by_role("link").first.click()
    name = page.get_by_role("heading", level=1).inner_text().removeprefix("Edit ")
    page.get_by_role("button", name="Archive (final)").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Archive {name}?")
    assert _fits(page)
    shots(page, "archive-asks")
    page.get_by_role("link", name="No, keep this partner").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Edit {name}")

    page.goto(f"{referrals_url(system)}/admin/staff")
    mine = page.get_by_role("row").filter(has_text=ADMIN)
    expect(mine.get_by_role("button", name="Disable")).to_have_count(0)  # nobody disables themselves
    theirs = page.get_by_role("row").filter(has_text=THERAPIST)
    theirs.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Disable {THERAPIST}?")
    assert _fits(page)
    shots(page, "disable-asks")
    assert_accessible(page, "the disable confirmation")
    page.get_by_role("link", name="No, keep the account").click()
    expect(page.get_by_role("row").filter(has_text=THERAPIST)).to_contain_text("active")
