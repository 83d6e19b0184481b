"""Staff login and logout pages. The login sets the cookie both services' staff pages accept
(:func:`shared.web.staff_cookie`); ``next`` may only lead back to this clinic's own services."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, Request, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromQuery, URLEncodedBody
from litestar.response import Redirect, Template
from redis.exceptions import RedisError

from services.referrals import identity
from services.referrals.web.rendering import page
from shared.auth import issue_staff_token
from shared.config import Settings
from shared.revocation import Revocations
from shared.web import StaffCheckUnavailable, staff_cookie, staff_token

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}
_DEFAULT_PORTS = {"http": 80, "https": 443}


def safe_next(target: str | None, *, settings: Settings) -> str | None:
    """``target`` when it is a path on this service or a URL on the clinic's directory or
    referrals service; None otherwise (no open redirect to anyone else's site)."""
    if not target or any(ord(c) < 32 or c == "\\" for c in target):
        return None
    parts = urlsplit(target)
    if not parts.scheme and not parts.netloc:
        # "//evil.example" is a URL to another host, not a path.
        return target if target.startswith("/") and not target.startswith("//") else None
    if parts.scheme not in _DEFAULT_PORTS or parts.username or parts.password or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    for service in ("directory", "referrals"):
        base = urlsplit(settings.public_url(service))
        base_port = base.port or _DEFAULT_PORTS.get(base.scheme, 0)
        same_host = parts.hostname == base.hostname or {parts.hostname, base.hostname} <= _LOOPBACK
        if parts.scheme == base.scheme and same_host and port == base_port:
            return target
    return None


class LoginForm(msgspec.Struct, kw_only=True):
    email: str = ""
    password: str = ""
    next: str = ""


class LoginController(Controller):
    include_in_schema = False

    @get("/login")
    async def show(self, request: Request, next: FromQuery[str] = "") -> Template:
        return page(request, "staff/login.html", next=safe_next(next, settings=_settings(request)) or "")

    @post("/login", status_code=303)
    async def submit(self, request: Request, data: URLEncodedBody[LoginForm]) -> Template | Redirect:
        settings = _settings(request)
        target = safe_next(data.next, settings=settings) or "/"
        try:
            staff = await identity.authenticate(
                request.app.state.runtime.sessions, email=data.email, password=data.password
            )
        except identity.BadCredentials:
            return page(
                request,
                "staff/login.html",
                status_code=401,
                next=data.next if target != "/" else "",
                email=data.email,
                error="Invalid email or password.",
            )
        ttl = timedelta(minutes=settings.staff_token_ttl_minutes)
        token = issue_staff_token(key=request.app.state.keyring, staff=staff, ttl=ttl)
        return Redirect(
            target, status_code=303, cookies=[staff_cookie(token, settings=settings, max_age=int(ttl.total_seconds()))]
        )

    # The directory's pages link here, and they cannot hold this service's CSRF token; the
    # browser's Origin (or Referer) naming one of the clinic's services is the check instead.
    @post("/logout", status_code=303, opt={"exclude_from_csrf": True})
    async def logout(self, request: Request) -> Template | Redirect:
        """End this sign-in on both services (every copy of its cookie or token), or with
        ``everywhere=yes`` every sign-in of the account; then clear the cookie. When Redis cannot
        record it, 503 and the cookie is kept, so the same click works a moment later."""
        settings = _settings(request)
        origin = request.headers.get("origin") or request.headers.get("referer") or ""
        if not urlsplit(origin).scheme or safe_next(origin.rstrip("/") + "/", settings=settings) is None:
            return page(request, "staff/logout.html", status_code=403)
        everywhere = (await request.form()).get("everywhere") == "yes"
        try:
            signed_in = await staff_token(request)
        except NotAuthorizedException:
            signed_in = None  # signed out already, or a cookie that was never valid: nothing to end
        if signed_in is not None:
            revocations: Revocations = request.app.state.revocations
            try:
                if everywhere:
                    await revocations.revoke(signed_in.staff.id)
                elif signed_in.session_id:
                    await revocations.end_session(signed_in.session_id)
            except (RedisError, OSError):
                raise StaffCheckUnavailable() from None
        return Redirect("/login", status_code=303, cookies=[staff_cookie("", settings=settings, max_age=0)])

    @get("/logout")
    async def confirm_logout(self, request: Request) -> Template:
        return page(request, "staff/logout.html")


def _settings(request: Request) -> Settings:
    return request.app.state.settings
