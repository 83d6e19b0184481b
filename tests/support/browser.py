"""What the browser tests share besides fixtures: Debian's Chromium (never a downloaded one),
pages opened in contexts of their own (one person each), full-page screenshots kept as test
artifacts, axe-core's accessibility check, logging in as a person would, and the links the SMTP
catcher caught.

Without Chromium, or without axe-core (``make browser-tools``), the tests skip on a developer's
machine and fail in CI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.support.ci import skip_or_fail
from tests.support.polling import eventually
from tests.support.system import PASSWORD, REPO, System, body_text

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts" / "browser"
ADMIN = "ada@clinic.example"
THERAPIST = "tess@clinic.example"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
# Impacts that fail the accessibility check; "moderate" and "minor" ones are advice.
BLOCKING_IMPACTS = ("serious", "critical")


def open_page(contexts: list[BrowserContext], browser: Browser, **options: object) -> Page:
    """A page in a new context of its own (its own cookies: one person)."""
    context = browser.new_context(**options)
    context.set_default_timeout(20_000)
    contexts.append(context)
    return context.new_page()


class Screenshots:
    """Full-page screenshots, numbered in the order taken, under
    ``test-artifacts/browser/<test name>/NN-step.png`` (CI keeps the folder)."""

    def __init__(self, test_name: str) -> None:
        self.folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", test_name)
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)
        self.taken = 0

    def __call__(self, page: Page, step: str) -> Path:
        self.taken += 1
        path = self.folder / f"{self.taken:02d}-{step}.png"
        page.screenshot(path=path, full_page=True)
        return path


def blocking_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one readable line
    per offending element: rule, impact, what to fix, where."""
    if not AXE.exists():
        skip_or_fail(f"{AXE.relative_to(REPO)} is missing: run `make browser-tools` (npm ci)")
    # Evaluated through the DevTools protocol, which the page's Content-Security-Policy does not
    # govern, so the check runs on the page exactly as served (no bypass_csp needed).
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {' '.join(node['target'])}: {node['failureSummary']}"
        for v in result["violations"]
        if v["impact"] in BLOCKING_IMPACTS
        for node in v["nodes"]
    ]


def assert_accessible(page: Page, what: str) -> None:
    violations = blocking_violations(page)
    assert not violations, f"axe-core on {what} ({page.url}):\n" + "\n".join(violations)


def log_in(page: Page, system: System, email: str) -> None:
    """Log in on the referrals service's login page, as a person would."""
    page.goto(f"{referrals_url(system)}/login")
    expect(page.get_by_label("Email")).to_be_focused()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


# The services' public URLs (localhost, as the emailed links say): the staff cookie is set for
# that host, and both services share it.
def directory_url(system: System) -> str:
    return f"http://localhost:{system.directory_port}"


def referrals_url(system: System) -> str:
    return f"http://localhost:{system.referrals_port}"


def emailed_link(system: System, *, reference: str, kind: str, to: str | None = None) -> str:
    """The ``kind`` link (``/respond/`` or ``/report/``) in the email the SMTP server caught for
    the referral ``reference`` (sent ``to`` that address, when given)."""

    def link() -> str | None:
        for message in system.mail():
            text = body_text(message)
            found = re.search(rf"https?://\S+{kind}\S+", text)
            if found and reference in text and to in (None, message["To"]):
                return found.group(0)
        return None

    return eventually(link, timeout=60, what=f"an email with a {kind} link for {reference}")
