"""The partner's manage page and the admin's review page in Chromium, at 1280 and 390 px: a partner
asks for its link on the public page, fixes a typo the page points at, asks for a new name; the
admin approves it. Every page passes axe-core; screenshots are kept as test artifacts."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.browser import (
    ADMIN,
    PHONE,
    Screenshots,
    assert_accessible,
    directory_url,
    log_in,
    open_page,
)
from tests.support.polling import eventually
from tests.support.system import System, body_text, token

DESKTOP = {"viewport": {"width": 1280, "height": 900}}


def _fits(page: Page) -> bool:
    return page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")


def _manage_link(system: System, address: str) -> str:
    message = eventually(
        lambda: next((m for m in reversed(system.mail()) if m["To"] == address), None), what="the manage link"
    )
    return re.search(r"https?://\S+/manage/\S+", body_text(message)).group(0)


def test_a_partner_updates_its_listing_and_the_admin_approves_the_new_name(
    browser: Browser, contexts: list[BrowserContext], system: System, staff: None, shots: Screenshots
) -> None:
    created = system.directory.post(
        "/api/v1/partners",
        json={
            "name": "Harbor Physical Therapy",
            "category": "physical_therapy",
            "email": "front@harbor-pt.example",
            "phone": "+17275550142",
            "hours": "Mon-Fri 8-5",
            "address": {"line1": "200 Harbor Dr", "city": "St. Petersburg", "state": "FL", "postal_code": "33701"},
            "license_number": "PT12345",
            "license_state": "FL",
        },
        headers=token(system, ADMIN),
    )
    assert created.status_code == 201, created.text
    slug = created.json()["slug"]

    # The partner finds "Update this listing" on its public page.
    partner = open_page(contexts, browser, **PHONE)
    partner.goto(f"{directory_url(system)}/partners-in-health/{slug}")
    expect(partner.get_by_text("Listing details not yet confirmed")).to_be_visible()
    partner.get_by_role("button", name="Update this listing").tap()
    expect(partner.get_by_role("heading", level=1)).to_have_text("Check your email")
    shots(partner, "390-link-requested")
    assert_accessible(partner, "the manage-link answer")

    link = _manage_link(system, "front@harbor-pt.example")
    for width, options in (("1280", DESKTOP), ("390", PHONE)):
        page = open_page(contexts, browser, **options)
        page.goto(link)
        expect(page.get_by_role("heading", level=1)).to_have_text("Your listing: Harbor Physical Therapy")
        assert _fits(page), f"the manage page scrolls sideways at {width} px"
        shots(page, f"{width}-manage-page")
        assert_accessible(page, f"the manage page at {width} px")

    # A bad phone and a past "until" day: both named at once, what was typed kept.
    page.get_by_label("Taking new clients").select_option("waitlist")
    page.get_by_label("Until (optional)").fill("2001-01-01")
    page.get_by_label("Phone").fill("555")
    page.get_by_label("Hours").fill("Mon-Sat 8-6")
    page.get_by_role("button", name="Save changes").tap()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("2 field(s) to fix")
    expect(alert.get_by_role("link")).to_have_count(2)
    expect(page.get_by_label("Hours")).to_have_value("Mon-Sat 8-6")
    expect(page.get_by_label("Phone")).to_have_attribute("aria-invalid", "true")
    shots(page, "390-manage-errors")
    assert_accessible(page, "the manage page with errors")

    page.get_by_label("Phone").fill("+1 727 555 0143")
    page.get_by_label("Until (optional)").fill("")
    page.locator("#m-name").fill("Harbor Physio & Rehab")
    page.get_by_role("button", name="Save changes").tap()
    expect(page.get_by_role("status")).to_contain_text("wait for its review")
    expect(page.get_by_text("Waiting for the clinic's review")).to_be_visible()
    shots(page, "390-manage-saved")

    # The admin reviews it, at both widths.
    for width, options in (("390", PHONE), ("1280", DESKTOP)):
        admin = open_page(contexts, browser, **options)
        log_in(admin, system, ADMIN)
        admin.goto(f"{directory_url(system)}/admin/partners/reviews")
        expect(admin.get_by_role("heading", level=2, name="Harbor Physical Therapy")).to_be_visible()
        expect(admin.get_by_role("cell", name="Harbor Physio & Rehab")).to_be_visible()
        assert _fits(admin), f"the review page scrolls sideways at {width} px"
        shots(admin, f"{width}-admin-review")
        assert_accessible(admin, f"the admin's review page at {width} px")
    admin.get_by_label("Note to the partner (optional)").fill("Matches the state board.")
    admin.get_by_role("button", name="Approve and publish").click()
    expect(admin.get_by_role("status")).to_contain_text("Approved")
    shots(admin, "1280-admin-approved")

    public = open_page(contexts, browser, **DESKTOP)
    public.goto(f"{directory_url(system)}/partners-in-health/{slug}")
    expect(public.get_by_role("heading", level=1)).to_have_text("Harbor Physio & Rehab")
    expect(public.get_by_text("Mon-Sat 8-6")).to_be_visible()
    shots(public, "1280-public-after")
