"""Litestar pieces every Handoff web service uses: staff guards, the operational endpoints
(``/health``, ``/ready``; ``/metrics`` is :mod:`shared.metrics`) and the mapping of domain errors
to HTTP.

Each app keeps ``app.state.keyring`` (:mod:`shared.keys`), ``app.state.engine``,
``app.state.redis`` and ``app.state.revocations`` (:mod:`shared.revocation`), which
:func:`authenticate` checks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
import redis.exceptions
import sqlalchemy.exc
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.datastructures import Cookie, State
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
    TooManyRequestsException,
    ValidationException,
)
from litestar.handlers import BaseRouteHandler
from litestar.params import ParameterKwarg
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import ExceptionHandlersMap, Message, Scope

from shared import database, error_pages, schema
from shared.auth import InvalidToken, Role, Staff, StaffToken, verify_staff_token
from shared.config import Settings
from shared.error_pages import wants_page
from shared.errors import Conflict, DomainError, InvalidInput, NotFound
from shared.revocation import Revocations, RevocationUnknown

log = logging.getLogger(__name__)


STAFF_COOKIE = "handoff_staff"


class LoginRequired(NotAuthorizedException):
    """A staff page was asked for without a valid login; answered with a redirect to the login page."""


class StaffCheckUnavailable(ServiceUnavailableException):
    """Whether a staff token was revoked cannot be told (Redis did not answer): the request is
    refused (503), never let through on a token that may have been revoked."""

    def __init__(self) -> None:
        super().__init__(
            "the redis is busy or unavailable, so staff sign-ins cannot be checked; try again in a few seconds",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            extra={"unavailable": "redis"},
        )


# The paths programs call (the JSON API and the FHIR API): a bearer token only, never the login
# cookie, and errors as data rather than pages or redirects to the login.
PROGRAM_PATHS = ("/api/", "/fhir/")


def for_programs(path: str) -> bool:
    """Whether ``path`` belongs to an API for programs rather than to pages for people."""
    return path.startswith(PROGRAM_PATHS)


async def authenticate(connection: ASGIConnection) -> Staff:
    """The staff member behind the request: a bearer token on the JSON API, the login cookie on
    HTML pages (never on ``/api/``, where a cookie would open the door to cross-site requests).
    401 when there is neither, or when the token is invalid, expired, issued before its account
    was disabled, changed role or signed out everywhere, or its sign-in was logged out
    (``app.state.revocations``); 503 (:class:`StaffCheckUnavailable`) when that cannot be told.
    Pages answer each 401 with a redirect to the login (:class:`LoginRequired`)."""
    if isinstance(connection.scope.get("user"), Staff):
        return connection.scope["user"]
    verified = await staff_token(connection)
    connection.scope["user"] = verified.staff
    return verified.staff


async def staff_token(connection: ASGIConnection) -> StaffToken:
    """The verified, unrevoked staff token the request carries (see :func:`authenticate`)."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    page = not for_programs(connection.url.path)
    refusal = LoginRequired if page else NotAuthorizedException
    if scheme.lower() != "bearer" or not token:
        token = connection.cookies.get(STAFF_COOKIE, "") if page else ""
        if not token:
            raise refusal("a staff bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    invalid = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    try:
        verified = verify_staff_token(token.strip(), key=connection.app.state.keyring)
    except InvalidToken as exc:
        raise refusal(f"staff token {exc}", headers=invalid) from None
    revocations: Revocations = connection.app.state.revocations
    try:
        revoked = await revocations.refuse(verified)
    except RevocationUnknown:
        raise StaffCheckUnavailable() from None
    if revoked:
        raise refusal("staff token revoked", headers=invalid)
    return verified


def requires(*roles: Role):
    """A guard admitting authenticated staff whose role is one of ``roles`` (any role if none)."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        staff = await authenticate(connection)
        if roles and staff.role not in roles:
            raise PermissionDeniedException(f"this needs the {' or '.join(roles)} role")

    return guard


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def whole_numbers(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """A guard for every route: a query parameter documented as an integer takes digits only.
    Litestar reads query values leniently (``_count=0.0`` and ``limit=1e2`` pass as 0 and 100),
    which the API's own schema refuses; a client that sends them gets the same 400, naming the
    parameter, as for ``limit=ten``."""
    wrong = [
        name
        for name in _integer_queries(handler)
        if any(not _WHOLE_NUMBER.fullmatch(value.strip()) for value in connection.query_params.getall(name, []))
    ]
    if wrong:
        raise ValidationException(
            detail=f"Validation failed for {connection.scope.get('method', 'GET')} {connection.url.path}",
            extra=[{"message": "Expected `int`, got `str`", "key": name, "source": "query"} for name in wrong],
        )


# By the handler's function: Litestar hands a guard a new handler object for each request.
_INTEGER_QUERIES: dict[object, frozenset[str]] = {}


def _integer_queries(handler: BaseRouteHandler) -> frozenset[str]:
    """The names of ``handler``'s query parameters typed as integers (read once per route)."""
    names = _INTEGER_QUERIES.get(handler.fn)
    if names is None:
        names = _INTEGER_QUERIES[handler.fn] = frozenset(
            kwarg.query or kwarg.name or name
            for name, field in handler.parsed_fn_signature.parameters.items()
            if isinstance(kwarg := field.kwarg_definition, ParameterKwarg)
            and kwarg.header is None
            and kwarg.cookie is None
            and (field.is_subclass_of(int) or field.has_inner_subclass_of(int))
            and not (field.is_subclass_of(bool) or field.has_inner_subclass_of(bool))
        )
    return names


def login_url(settings: Settings, *, next_url: str = "") -> str:
    """The staff login page (served by referrals, which holds the staff accounts)."""
    url = f"{settings.public_url('referrals')}/login"
    return f"{url}?{urlencode({'next': next_url})}" if next_url else url


def staff_cookie(token: str, *, settings: Settings, max_age: int) -> Cookie:
    """The login cookie both services' staff pages accept: the signed, expiring staff token."""
    return Cookie(
        key=STAFF_COOKIE,
        value=token,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.public_url("referrals").startswith("https://"),
        domain=settings.session_cookie_domain or None,
    )


def error_page(
    request: Request,
    status_code: int,
    *,
    title: str | None = None,
    explanation: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The styled error page (:mod:`shared.error_pages`), with the navigation of whoever is
    signed in: the member a guard already checked, else the login cookie's (its signature and
    expiry alone, enough to choose links that each check it again when followed)."""
    user = request.scope.get("user")
    if not isinstance(user, Staff) and not hasattr(user, "role"):
        user = None
        token = request.cookies.get(STAFF_COOKIE, "")
        if token:
            try:
                user = verify_staff_token(token.strip(), key=request.app.state.keyring).staff
            except InvalidToken:
                user = None
    return error_pages.error_page(
        request, status_code, title=title, explanation=explanation, headers=headers, user=user
    )


def _login_required(request: Request, exc: LoginRequired) -> Response:
    settings = request.app.state.settings
    return Redirect(login_url(settings, next_url=str(request.url)), status_code=303)


def _domain_error(request: Request, exc: DomainError) -> Response:
    status = 409 if isinstance(exc, Conflict) else 404 if isinstance(exc, NotFound) else 422
    if wants_page(request):
        explanation = None if status == 404 else f"{exc.detail[:1].upper()}{exc.detail[1:]}. Nothing was changed."
        return error_page(request, status, explanation=explanation)
    extra = {"key": exc.field, **exc.extra} if exc.field else dict(exc.extra)
    return Response({"status_code": status, "detail": exc.detail, "extra": extra}, status_code=status)


_MISSING = re.compile(r"^Object missing required field `([^`]+)`")


def _invalid_request(request: Request, exc: ValidationException) -> Response:
    """Litestar's 400, with a missing field named by its own path (``client.name``) rather than
    by the object that lacks it (``client``, or ``data`` for the body itself)."""
    if wants_page(request):
        return error_page(request, 400)
    extra = exc.extra if isinstance(exc.extra, list) else ([exc.extra] if exc.extra else [])
    fixed = []
    for item in extra:
        if isinstance(item, dict) and (missing := _MISSING.match(str(item.get("message", "")))):
            parent = item.get("key")
            item = {**item, "key": missing.group(1) if parent in (None, "data") else f"{parent}.{missing.group(1)}"}
        fixed.append(item)
    return Response({"status_code": 400, "detail": exc.detail, "extra": fixed}, status_code=400)


def api_error(request: Request, exc: HTTPException) -> Response:
    """Litestar's own refusals (401, 403, 404, 405, 429, ...) in the shared error body; a
    browser opening a page gets the styled error page instead."""
    if wants_page(request):
        return error_page(request, exc.status_code, headers=exc.headers)
    extra = exc.extra if exc.extra else {}
    return Response(
        {"status_code": exc.status_code, "detail": exc.detail, "extra": extra},
        status_code=exc.status_code,
        headers=exc.headers,
    )


def refused(request: Request, exc: HTTPException) -> Response:
    """A 403, 429 or 503 of the staff check: the JSON error body on the API (``/api/``); on every
    other path, which a browser opens (staff pages, forms, the public pages), the styled error
    page (:mod:`shared.error_pages`) saying what to do."""
    if for_programs(request.url.path):
        return api_error(request, exc)
    if exc.status_code == 503:
        title = "Please try again in a few seconds"
        explanation = "Sign-ins cannot be checked right now. Nothing was changed; reload the page in a moment."
    elif exc.status_code == 429:
        title = "Too many requests"
        explanation = f"Please wait {(exc.headers or {}).get('Retry-After', 'a few')} seconds, then try again."
    elif exc.detail.startswith("CSRF"):  # Litestar's CSRF middleware: a form sent without this site's token.
        title = "This form could not be accepted"
        explanation = "It was not sent from this site's own page. Go back, reload the page and send it again."
    else:
        title = "Your account cannot open this page"
        explanation = f"{exc.detail[:1].upper()}{exc.detail[1:]}. Ask the clinic's administrator if you need it."
    return error_page(request, exc.status_code, title=title, explanation=explanation, headers=exc.headers)


def _unexpected(request: Request, exc: Exception) -> Response:
    # Logged with its traceback for us; the caller gets no internals.
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    if wants_page(request):
        return error_page(request, 500)
    return Response({"status_code": 500, "detail": "Internal Server Error", "extra": {}}, status_code=500)


# What a 503 asks the caller to wait: about one lock wait (shared.database.LOCK_WAIT_MS).
RETRY_AFTER_SECONDS = 5


def _unavailable(request: Request, exc: Exception) -> Response:
    """503 with Retry-After when the database or Redis is busy or out of reach for now: the same
    request may simply be sent again. Any other error of those libraries stays a 500."""
    if isinstance(exc, redis.exceptions.RedisError):
        part = "redis"
    elif database.unavailable(exc):
        part = "database"
    else:
        return _unexpected(request, exc)
    # The driver's message only: SQLAlchemy's own would carry the statement's parameters.
    log.warning("%s %s: the %s is unavailable: %s", request.method, request.url.path, part, getattr(exc, "orig", exc))
    if wants_page(request):
        return error_page(request, 503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    return Response(
        {
            "status_code": 503,
            "detail": f"the {part} is busy or unavailable; try again in a few seconds",
            "extra": {"unavailable": part},
        },
        status_code=HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


exception_handlers: ExceptionHandlersMap = {
    LoginRequired: _login_required,
    ValidationException: _invalid_request,
    InvalidInput: _domain_error,
    NotFound: _domain_error,
    Conflict: _domain_error,
    DomainError: _domain_error,
    HTTPException: api_error,
    PermissionDeniedException: refused,
    TooManyRequestsException: refused,
    StaffCheckUnavailable: refused,
    sqlalchemy.exc.DBAPIError: _unavailable,
    sqlalchemy.exc.TimeoutError: _unavailable,
    ConnectionError: _unavailable,
    redis.exceptions.ConnectionError: _unavailable,
    redis.exceptions.TimeoutError: _unavailable,
    500: _unexpected,
}


@get("/health", sync_to_thread=False, include_in_schema=False)
def health() -> dict[str, str]:
    """The process is alive and serving."""
    return {"status": "ok"}


@get("/ready", include_in_schema=False)
async def ready(request: Request) -> Response:
    """The database and Redis both answer and the schema is not behind the code (on an app that
    keeps ``app.state.migrations``); 503 naming what is not ready."""
    problems: dict[str, str] = {}
    try:
        await database.ping(request.app.state.engine)
    except Exception as exc:
        problems["database"] = type(exc).__name__
    migrations = getattr(request.app.state, "migrations", None)
    if migrations is not None and "database" not in problems:
        try:
            found = await schema.check(request.app.state.engine, migrations)
        except Exception as exc:
            problems["database"] = type(exc).__name__
        else:
            if found.behind:
                problems["schema"] = found.describe()
    try:
        await anyio.to_thread.run_sync(request.app.state.redis.ping)
    except Exception as exc:
        problems["redis"] = type(exc).__name__
    if problems:
        return Response(
            {"status_code": 503, "detail": "not ready", "extra": problems}, status_code=HTTP_503_SERVICE_UNAVAILABLE
        )
    return Response({"status": "ready"}, status_code=HTTP_200_OK)


ops_handlers = [health, ready]


def initial_state(settings: Settings) -> State:
    """App state every service starts with: its settings and its keys (``signing_key`` signs,
    ``keyring`` verifies, see :mod:`shared.keys`)."""
    keyring = settings.keyring()
    return State({"settings": settings, "signing_key": keyring.signing, "keyring": keyring})


def _logo_origin(settings: Settings) -> str:
    """The clinic logo's site, when it is not on the services themselves (" https://cdn.example")."""
    parts = urlsplit(settings.clinic_logo_url)
    return f" {parts.scheme}://{parts.netloc}" if parts.scheme in ("http", "https") and parts.netloc else ""


def security_headers(settings: Settings) -> Callable[[Message, Scope], Awaitable[None]]:
    """A ``before_send`` hook adding the security headers every response of a Handoff service
    carries (:func:`encoded_security_headers`), those the response did not set itself."""
    # Encoded once: this runs on every response, where Litestar's header mapping (a scan of the
    # headers per name set) cost more than a cached page.
    encoded = encoded_security_headers(settings)

    async def before_send(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or ())
        present = {bytes(name).lower() for name, _ in headers}
        # Only those the response did not set itself (a page may have its own policy).
        headers.extend(pair for pair in encoded if pair[0] not in present)
        message["headers"] = headers

    return before_send


def encoded_security_headers(settings: Settings) -> list[tuple[bytes, bytes]]:
    """The security headers, encoded, in the order responses carry them. Forms may post to either
    service (the directory's logout goes to referrals)."""
    origins = " ".join(dict.fromkeys((settings.public_url("directory"), settings.public_url("referrals"))))
    policy = "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            f"img-src 'self' data:{_logo_origin(settings)}",
            "object-src 'none'",
            "base-uri 'self'",
            "frame-ancestors 'none'",
            f"form-action 'self' {origins}",
        ]
    )
    fixed = {
        "x-content-type-options": "nosniff",
        # Partner links carry their token in the path: other sites get the origin only.
        "referrer-policy": "strict-origin-when-cross-origin",
        "x-frame-options": "DENY",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
    }
    encoded = [(name.encode(), value.encode("latin-1")) for name, value in fixed.items()]
    encoded.append((b"content-security-policy", policy.encode("latin-1")))
    return encoded
