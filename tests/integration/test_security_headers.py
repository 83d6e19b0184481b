"""Every response of both services carries the security headers, enumerated from the apps'
own routes, and the policy forbids inline scripts and framing."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from services.directory.storage import MIGRATIONS as DIRECTORY_MIGRATIONS
from services.directory.web.app import create_app as directory_app
from services.referrals.storage import MIGRATIONS as REFERRALS_MIGRATIONS
from services.referrals.web.app import create_app as referrals_app
from shared import database
from shared.config import load_settings

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
}


def get_paths(app: Litestar) -> list[str]:
    """Every GET path of the app, with a placeholder for path parameters (a 404 must carry the
    headers too)."""
    paths = set()
    for route in app.routes:
        methods = getattr(route, "methods", set())
        if "GET" in methods and route.path != "/schema/{path:str}":
            paths.add(route.path.replace("{", "").replace("}", "").replace(":str", "").replace(":int", ""))
    return sorted(paths)


@pytest.mark.parametrize("service", ["directory", "referrals"])
def test_every_get_route_sends_security_headers(service: str, tmp_path: Path, redis_url: str) -> None:
    settings = load_settings(environ={}, data_dir=str(tmp_path), redis_url=redis_url, secret_key="k" * 40)
    migrations, factory = {
        "directory": (DIRECTORY_MIGRATIONS, directory_app),
        "referrals": (REFERRALS_MIGRATIONS, referrals_app),
    }[service]
    database.upgrade(migrations=migrations, url=settings.db_url(service))
    app = factory(settings)
    paths = get_paths(app)
    assert "/health" in paths and len(paths) > 5
    with TestClient(app) as client:
        for path in paths:
            response = client.get(path, follow_redirects=False)
            for name, value in EXPECTED.items():
                assert response.headers.get(name) == value, (path, name)
            policy = response.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy, path
            assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
            assert "frame-ancestors 'none'" in policy, path
            # Nothing is loaded from anyone else's site (issue 16, item 14: the API docs were).
            assert "https:" not in policy and "cdn" not in policy and "unpkg" not in policy, (path, policy)


@pytest.mark.parametrize("service", ["directory", "referrals"])
def test_the_api_documents_are_served_without_any_other_sites_scripts(
    service: str, tmp_path: Path, redis_url: str
) -> None:
    settings = load_settings(environ={}, data_dir=str(tmp_path), redis_url=redis_url, secret_key="k" * 40)
    factory = {"directory": directory_app, "referrals": referrals_app}[service]
    with TestClient(factory(settings)) as client:
        for path in ("/schema", "/schema/openapi.json", "/schema/openapi.yaml"):
            answer = client.get(path)
            assert answer.status_code == 200 and "openapi" in answer.text, path
            assert "jsdelivr" not in answer.text and "unpkg" not in answer.text and "<script" not in answer.text
            assert "https:" not in answer.headers["content-security-policy"]


def test_reason_filter_script_is_a_file(tmp_path: Path, redis_url: str) -> None:
    settings = load_settings(environ={}, data_dir=str(tmp_path), redis_url=redis_url, secret_key="k" * 40)
    database.upgrade(migrations=REFERRALS_MIGRATIONS, url=settings.db_url("referrals"))
    with TestClient(referrals_app(settings)) as client:
        script = client.get("/static/reason-filter.js")
    assert script.status_code == 200 and "reason-filter" in script.text
