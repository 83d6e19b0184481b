"""``/fhir/r4`` on referrals: the clinic's referrals as an HL7 FHIR R4 API for staff programs
(a staff bearer token, as on ``/api/``): ``ServiceRequest`` and ``Task`` (one each per referral)
and ``Patient`` (the client), read and search. Searches answer searchset Bundles, oldest change
first, paged by ``cursor``; every error is an ``OperationOutcome``. A therapist sees their own
referrals only, as everywhere else. Resources: :mod:`services.referrals.fhir`; element by
element: docs/standards.md.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.params import FromPath, QueryParameter
from litestar.types import ExceptionHandlersMap

from services.referrals import fhir
from services.referrals.domain import DECLINE_REASONS
from services.referrals.records import ReferralRecord
from services.referrals.rules import Rules
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from shared import web
from shared.errors import InvalidInput, NotFound
from shared.fhir import (
    FHIR_VERSION,
    MEDIA_TYPE,
    Json,
    SearchsetBundle,
    error_responses,
    outcome_handler,
    searchset,
)
from shared.openapi import STAFF

BASE = "/fhir/r4"
MAX_COUNT = 100
DEFAULT_COUNT = 20

# Parameters whose Python names (in Litestar's validation errors) differ from their query names.
_QUERY_NAMES = {"count": "_count", "last_updated": "_lastUpdated"}
_PREFIX = re.compile(r"^(eq|ge|gt|le|lt)?(.+)$")


class BadSearch(Exception):
    """A malformed search parameter: 400 naming it, as an OperationOutcome."""

    def __init__(self, detail: str, *, field: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


def _bad_search(request: Request, exc: BadSearch) -> Response:
    return Response(
        {"status_code": 400, "detail": exc.detail, "extra": [{"key": exc.field, "message": exc.detail}]},
        status_code=400,
    )


_SERVICE_ERRORS: ExceptionHandlersMap = {
    **web.exception_handlers,
    BadSearch: _bad_search,
    NotAuthorizedException: web.api_error,
    PermissionDeniedException: web.api_error,
}

_SEARCH: dict[str, Any] = {"media_type": MEDIA_TYPE, "responses": error_responses(400, 401, 403, 503)}
_READ: dict[str, Any] = {"media_type": MEDIA_TYPE, "responses": error_responses(401, 403, 404, 503)}

LastUpdated = Annotated[
    list[str] | None,
    QueryParameter(
        name="_lastUpdated",
        description="when it last changed: a date or an instant, with ge, gt, le, lt or eq (repeat for a range)",
    ),
]
Count = Annotated[int | None, QueryParameter(name="_count", ge=0, description=f"page size, at most {MAX_COUNT}")]
Cursor = Annotated[str | None, QueryParameter(description="where the next page starts (from Bundle.link next)")]
Patient = Annotated[str | None, QueryParameter(description="Patient/[id] or [id]: the client's referrals only")]


class FhirController(Controller):
    path = BASE
    guards = [staff("admin", "therapist")]
    security = STAFF
    tags = ["FHIR R4 referrals"]
    exception_handlers = {
        kind: outcome_handler(handler, query_names=_QUERY_NAMES) for kind, handler in _SERVICE_ERRORS.items()
    }

    @get("/metadata", summary="CapabilityStatement: what this FHIR API implements", media_type=MEDIA_TYPE)
    async def metadata(self, request: Request) -> Json:
        return capability_statement(base=_base(request), publisher=request.app.state.settings.clinic_name)

    @get("/ServiceRequest", summary="Search ServiceRequests (referrals)", **_SEARCH)
    async def service_requests(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        last_updated: LastUpdated = None,
        patient: Patient = None,
        subject: Patient = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        used = {"_lastUpdated": last_updated, "patient": patient, "subject": subject}
        client_id = _patient_id(patient, "patient") or _patient_id(subject, "subject")
        return await _search(request, referrals, "ServiceRequest", used, count, cursor, client_id=client_id)

    @get("/ServiceRequest/{id:str}", summary="Read a ServiceRequest (a referral)", **_READ)
    async def service_request(self, request: Request, referrals: NamedDependency[Referrals], id: FromPath[str]) -> Json:
        return _service_request(request, await _referral(request, referrals, id, "ServiceRequest"))

    @get("/Task", summary="Search Tasks (how each referral is going)", **_SEARCH)
    async def tasks(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        focus: Annotated[str | None, QueryParameter(description="ServiceRequest/[id]: that referral's Task")] = None,
        last_updated: LastUpdated = None,
        patient: Patient = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        used = {"focus": focus, "_lastUpdated": last_updated, "patient": patient}
        referral_id = None
        if focus is not None:
            kind, _, referral_id = focus.rpartition("/")
            if kind not in ("ServiceRequest", "") or not referral_id:
                raise BadSearch("focus must be ServiceRequest/[id]", field="focus")
        client_id = _patient_id(patient, "patient")
        return await _search(
            request, referrals, "Task", used, count, cursor, client_id=client_id, referral_id=referral_id
        )

    @get("/Task/{id:str}", summary="Read a Task (how a referral is going)", **_READ)
    async def task(self, request: Request, referrals: NamedDependency[Referrals], id: FromPath[str]) -> Json:
        return _task(request, await _referral(request, referrals, id, "Task"))

    @get("/Patient", summary="Search Patients (clients) by name, birth date or phone", **_SEARCH)
    async def patients(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        name: Annotated[str | None, QueryParameter(max_length=200, description="words of the name")] = None,
        birthdate: Annotated[str | None, QueryParameter(description="YYYY-MM-DD")] = None,
        phone: Annotated[str | None, QueryParameter(max_length=40, description="the phone number")] = None,
        count: Count = None,
    ) -> SearchsetBundle:
        used = {"name": name, "birthdate": birthdate, "phone": phone}
        given = [(key, value.strip()) for key, value in used.items() if value and value.strip()]
        if len(given) != 1:
            raise BadSearch("search by one of name, birthdate or phone", field="name")
        (key, value), size = given[0], DEFAULT_COUNT if count is None else min(count, MAX_COUNT)
        try:
            found = await referrals.find_clients(staff=request.user, q=value)
        except InvalidInput as exc:
            raise BadSearch(exc.detail, field=key) from None
        self_url, _ = _links(request, "Patient", used, size, None, None)
        entries: list[tuple[Json, Json | None]] = [(fhir.patient(client), None) for client in found[:size]]
        return searchset(entries, base=_base(request), total=len(found), self_url=self_url, next_url=None)

    @get("/Patient/{id:str}", summary="Read a Patient (a client; audited)", **_READ)
    async def patient(self, request: Request, referrals: NamedDependency[Referrals], id: FromPath[str]) -> Json:
        try:
            client = await referrals.client(staff=request.user, client_id=id)
        except NotFound:
            raise NotFound(f"no Patient with id {id!r}", field="id") from None
        return fhir.patient(client)


def capability_statement(*, base: str, publisher: str) -> Json:
    """What this server implements: reads and the searches above, JSON only, staff bearer tokens."""

    def resource(kind: str, params: list[tuple[str, str]]) -> Json:
        return {
            "type": kind,
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": name, "type": kind_of} for name, kind_of in params],
        }

    common = [("_lastUpdated", "date"), ("patient", "reference"), ("_count", "number")]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": datetime.now(UTC).date().isoformat(),
        "publisher": publisher,
        "kind": "instance",
        "implementation": {"description": "Handoff referrals", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "security": {"description": "A staff bearer token (POST /api/v1/auth/token)"},
                "resource": [
                    resource("ServiceRequest", [*common, ("subject", "reference")]),
                    resource("Task", [*common, ("focus", "reference")]),
                    resource("Patient", [("name", "string"), ("birthdate", "date"), ("phone", "token")]),
                ],
            }
        ],
    }


async def _search(
    request: Request,
    referrals: Referrals,
    resource: str,
    used: dict[str, Any],
    count: int | None,
    cursor: str | None,
    *,
    client_id: str | None = None,
    referral_id: str | None = None,
) -> SearchsetBundle:
    size = DEFAULT_COUNT if count is None else min(count, MAX_COUNT)
    bounds = [bound for value in used.get("_lastUpdated") or [] for bound in _last_updated(value)]
    found, total = await referrals.changed(
        staff=request.user,
        bounds=bounds,
        client_id=client_id,
        referral_id=referral_id,
        after=_after(cursor),
        limit=max(size, 1),
    )
    shown = found[:size]
    build = _task if resource == "Task" else _service_request
    # A full page may have more after it; the next page then starts after its last change.
    following = _cursor(shown[-1]) if size and len(shown) == size else None
    self_url, next_url = _links(request, resource, used, size, cursor, following)
    entries: list[tuple[Json, Json | None]] = [(build(request, referral), None) for referral in shown]
    return searchset(entries, base=_base(request), total=total, self_url=self_url, next_url=next_url)


async def _referral(request: Request, referrals: Referrals, referral_id: str, resource: str) -> ReferralRecord:
    try:
        return await referrals.get(staff=request.user, referral_id=referral_id)
    except NotFound:
        raise NotFound(f"no {resource} with id {referral_id!r}", field="id") from None


def _service_request(request: Request, referral: ReferralRecord) -> Json:
    rules: Rules = request.app.state.runtime.rules
    labels = {code: reason.label for code, reason in rules.reasons.items()}
    settings = request.app.state.settings
    return fhir.service_request(
        referral, reason_labels=labels, systems=_systems(request), clinic_name=settings.clinic_name
    )


def _task(request: Request, referral: ReferralRecord) -> Json:
    settings = request.app.state.settings
    return fhir.task(
        referral, decline_labels=DECLINE_REASONS, systems=_systems(request), clinic_name=settings.clinic_name
    )


def _systems(request: Request) -> fhir.Systems:
    settings = request.app.state.settings
    return fhir.Systems(referrals_url=settings.public_url("referrals"), directory_url=settings.public_url("directory"))


def _patient_id(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    kind, _, client_id = value.rpartition("/")
    if kind not in ("Patient", "") or not client_id:
        raise BadSearch(f"{name} must be Patient/[id]", field=name)
    return client_id


def _last_updated(value: str) -> list[tuple[str, datetime]]:
    """``_lastUpdated`` as bounds on the change time: a date covers its whole day (UTC), an
    instant is exact; ``eq`` (or no prefix) keeps what lies within, the others compare."""
    match = _PREFIX.match(value.strip())
    prefix, moment = (match.group(1) or "eq", match.group(2)) if match else ("eq", "")
    try:
        if len(moment) == 10:
            start = datetime.combine(date.fromisoformat(moment), time(), tzinfo=UTC)
            end = start + timedelta(days=1)
        else:
            start = end = datetime.fromisoformat(moment.replace("Z", "+00:00"))
            if start.tzinfo is None:
                raise ValueError("no time zone")
    except ValueError:
        raise BadSearch(
            "_lastUpdated must be a date (2026-11-29) or an instant with its time zone (2026-11-29T14:00:00Z), "
            "optionally after ge, gt, le, lt or eq",
            field="_lastUpdated",
        ) from None
    whole_day = end != start
    return {
        "ge": [(">=", start)],
        "gt": [(">=" if whole_day else ">", end)],
        "le": [("<" if whole_day else "<=", end)],
        "lt": [("<", start)],
        "eq": [(">=", start), ("<" if whole_day else "<=", end)],
    }[prefix]


def _cursor(referral: ReferralRecord) -> str:
    raw = f"{referral.updated_at.isoformat()}|{referral.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        moment, _, referral_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition("|")
        return datetime.fromisoformat(moment), referral_id
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise BadSearch("cursor is not one this search handed out", field="cursor") from None


def _base(request: Request) -> str:
    return f"{request.app.state.settings.public_url('referrals')}{BASE}"


def _links(
    request: Request, resource: str, used: dict[str, Any], size: int, cursor: str | None, following: str | None
) -> tuple[str, str | None]:
    """The ``self`` link (the parameters this search used, the page size it gave) and ``next``."""
    kept: list[tuple[str, str]] = []
    for name, value in used.items():
        for one in value if isinstance(value, list) else [value]:
            if one is not None:
                kept.append((name, one))
    kept.append(("_count", str(size)))
    url = f"{_base(request)}/{resource}?"
    current = url + urlencode(kept + ([("cursor", cursor)] if cursor else []))
    return current, None if following is None else url + urlencode([*kept, ("cursor", following)])
