"""Where the login page may send a staff member afterwards: only the clinic's own services."""

from __future__ import annotations

import pytest

from services.referrals.web.login import safe_next
from shared.config import load_settings

LOCAL = load_settings(environ={})
HOSTED = load_settings(
    environ={}, directory_url="https://partners.clinic.example", referrals_url="https://referrals.clinic.example/"
)


@pytest.mark.parametrize(
    ("settings", "target"),
    [
        (LOCAL, "/referrals/new"),
        (LOCAL, "http://localhost:8001/admin/partners?page=2"),
        (LOCAL, "http://127.0.0.1:8002/"),
        (HOSTED, "https://partners.clinic.example/admin/partners"),
        (HOSTED, "https://referrals.clinic.example:443/referrals/abc"),
    ],
)
def test_own_services_are_allowed(settings, target: str) -> None:
    assert safe_next(target, settings=settings) == target


@pytest.mark.parametrize(
    ("settings", "target"),
    [
        (LOCAL, ""),
        (LOCAL, None),
        (LOCAL, "//evil.example/"),
        (LOCAL, "/\\evil.example"),
        (LOCAL, "https://evil.example/"),
        (LOCAL, "http://localhost:8001@evil.example/"),
        (LOCAL, "http://evil.example#@localhost:8001/"),
        (LOCAL, "http://localhost:9000/"),
        (LOCAL, "https://localhost:8001/"),
        (LOCAL, "javascript:alert(1)"),
        (LOCAL, "/ok\r\nSet-Cookie: x=1"),
        (LOCAL, "http://localhost:99999/"),
        (HOSTED, "https://partners.clinic.example.evil.example/"),
        (HOSTED, "http://partners.clinic.example/"),
        (HOSTED, "http://localhost:8001/"),
    ],
)
def test_anywhere_else_is_refused(settings, target: str | None) -> None:
    assert safe_next(target, settings=settings) is None
