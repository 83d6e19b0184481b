"""Issue 13 keeps the public Partners in Health pages at Lighthouse 100 for accessibility and SEO:
Lighthouse (npm, locked in package-lock.json) runs on Debian's Chromium against the page, a search
result and one partner's page of a running system with the demo directory. Each report is kept
under ``test-artifacts/lighthouse/``. Staff pages are deliberately ``noindex`` and not checked here
(axe-core checks them in the browser journeys).

Without Lighthouse (``make browser-tools``) or Chromium, the test skips on a developer's machine
and fails in CI."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.support.browser import CHROMIUM, directory_url
from tests.support.ci import skip_or_fail
from tests.support.system import REPO, System

LIGHTHOUSE = REPO / "node_modules" / ".bin" / "lighthouse"
REPORTS = REPO / "test-artifacts" / "lighthouse"
CATEGORIES = ("accessibility", "seo")


@pytest.fixture(scope="module", autouse=True)
def demo_directory(system: System) -> Iterator[None]:
    seeded = system.handoff("seed", "--demo")
    assert seeded.returncode == 0, seeded.stderr
    yield


def _lighthouse(url: str, name: str) -> dict:
    """Lighthouse's report on ``url`` (accessibility and SEO only), also saved as ``<name>.json``."""
    if not LIGHTHOUSE.exists():
        skip_or_fail(f"{LIGHTHOUSE.relative_to(REPO)} is missing: run `make browser-tools` (npm ci)")
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} is missing (Debian package chromium)")
    REPORTS.mkdir(parents=True, exist_ok=True)
    report = REPORTS / f"{name}.json"
    report.unlink(missing_ok=True)
    ran = subprocess.run(
        [
            str(LIGHTHOUSE),
            url,
            f"--only-categories={','.join(CATEGORIES)}",
            "--output=json",
            f"--output-path={report}",
            "--chrome-flags=--headless=new --no-sandbox",
            "--quiet",
        ],
        env={**os.environ, "CHROME_PATH": str(CHROMIUM)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert ran.returncode == 0, f"lighthouse on {url} exited {ran.returncode}:\n{ran.stderr}"
    return json.loads(report.read_text())


def _failing_audits(report: dict, category: str) -> list[str]:
    """The audits that cost ``category`` points, one line each: id and title."""
    audits = report["audits"]
    return [
        f"{ref['id']}: {audits[ref['id']]['title']}"
        for ref in report["categories"][category]["auditRefs"]
        if ref["weight"] > 0 and (audits[ref["id"]]["score"] is not None and audits[ref["id"]]["score"] < 1)
    ]


@pytest.mark.parametrize("page", ["index", "search", "partner"])
def test_public_pages_score_100_for_accessibility_and_seo(system: System, page: str) -> None:
    base = directory_url(system)
    search = "q=chiropractor&zip=33701"
    if page == "partner":
        found = system.directory.get(f"/api/v1/partners?{search}&limit=1")
        assert found.status_code == 200, found.text
        url = f"{base}/partners-in-health/{found.json()['items'][0]['slug']}"
    else:
        url = f"{base}/partners-in-health" + (f"?{search}" if page == "search" else "")

    report = _lighthouse(url, page)

    assert not report.get("runtimeError"), report["runtimeError"]
    scores = {category: report["categories"][category]["score"] for category in CATEGORIES}
    failing = {category: _failing_audits(report, category) for category in CATEGORIES if scores[category] != 1}
    assert scores == {"accessibility": 1, "seo": 1}, f"Lighthouse on {url}: {scores}\n" + "\n".join(
        f"{category}: {line}" for category, lines in failing.items() for line in lines
    )
