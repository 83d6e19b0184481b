"""Fixtures of the end-to-end tests: the whole system as real processes (``handoff dev``), and
Chromium driven by Playwright for the browser tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect, sync_playwright

from tests.support.browser import ADMIN, CHROMIUM, THERAPIST, Screenshots
from tests.support.ci import skip_or_fail
from tests.support.system import PASSWORD, System


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole system for one test module, with no staff accounts yet."""
    system = System(tmp_path_factory.mktemp("system") / "data")
    system.start()
    try:
        yield system
    finally:
        if system.process.poll() is None:
            system.process.kill()
            system.process.wait()


@pytest.fixture(scope="module")
def staff(system: System) -> None:
    """An admin (:data:`~tests.support.browser.ADMIN`) and a therapist
    (:data:`~tests.support.browser.THERAPIST`) in the module's system, password :data:`PASSWORD`."""
    for address, role in ((ADMIN, "admin"), (THERAPIST, "therapist")):
        added = system.handoff("user", "add", "--email", address, "--role", role, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (Debian package chromium)")
    # Waits for what a page shows are generous: the machine may be busy (CI shares its cores).
    expect.set_options(timeout=20_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def contexts(browser: Browser) -> Iterator[list[BrowserContext]]:
    """Browser contexts (one per person in the test) that are closed after the test."""
    opened: list[BrowserContext] = []
    yield opened
    for context in opened:
        context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Screenshots:
    return Screenshots(request.node.name)
