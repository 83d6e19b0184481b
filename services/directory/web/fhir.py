"""``/fhir/r4``: the public directory as an HL7 FHIR R4 API (``application/fhir+json``), keyless and
read-only: ``metadata`` (the CapabilityStatement), and read and search of ``PractitionerRole``,
``Practitioner``, ``Organization``, ``Location`` and ``HealthcareService``. Searches answer
searchset Bundles with ``total`` and ``self``/``next`` links; every error is an
``OperationOutcome``. Resources: :mod:`services.directory.fhir`; parameters:
:mod:`services.directory.fhir_search`; field by field: docs/standards.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.exceptions import PermissionDeniedException, TooManyRequestsException
from litestar.params import FromPath, QueryParameter
from litestar.types import ExceptionHandlersMap

from services.directory import fhir, fhir_search
from services.directory.catalogue import PracticeNotFound, has_location
from services.directory.domain import Partner, PartnerNotFound
from services.directory.identifiers import partner_of
from services.directory.search import InvalidSearch, PartnerQuery
from services.directory.service import MAX_PAGE_SIZE, PartnerService
from services.directory.web.filters import bad_search
from shared import categories, web
from shared.errors import NotFound
from shared.fhir import MEDIA_TYPE, Json, SearchsetBundle, error_responses, outcome_handler, searchset
from shared.openapi import RateLimited

BASE = "/fhir/r4"

# Parameters whose Python names (in Litestar's validation errors) differ from their query names.
_QUERY_NAMES = {"count": "_count", "near_zip": "near-zip", "specialty_text": "specialty:text"}
_CORS = {"Access-Control-Allow-Origin": "*"}


class NoSuchResource(NotFound):
    def __init__(self, resource: str, resource_id: str) -> None:
        super().__init__(f"no {resource} with id {resource_id!r}", field="id")


# The service's own error answers, each turned into an OperationOutcome (a 403 or 429 as the JSON
# API answers them: FHIR clients are programs, not browsers).
_SERVICE_ERRORS: ExceptionHandlersMap = {
    **web.exception_handlers,
    InvalidSearch: bad_search,
    TooManyRequestsException: web.api_error,
    PermissionDeniedException: web.api_error,
}

_SEARCH: dict[str, Any] = {
    "media_type": MEDIA_TYPE,
    "operation_class": RateLimited,
    "responses": error_responses(400, 429, 503),
}
_READ: dict[str, Any] = {
    "media_type": MEDIA_TYPE,
    "operation_class": RateLimited,
    "responses": error_responses(404, 429, 503),
}

Count = Annotated[int | None, QueryParameter(name="_count", ge=0, description=f"page size, at most {MAX_PAGE_SIZE}")]
Cursor = Annotated[str | None, QueryParameter(description="where the next page starts (from Bundle.link next)")]
Name = Annotated[
    str | None, QueryParameter(max_length=200, description="words in the name, practice, specialties or city")
]
Specialty = Annotated[str | None, QueryParameter(description="a NUCC code, or http://nucc.org/provider-taxonomy|code")]
SpecialtyText = Annotated[str | None, QueryParameter(name="specialty:text", max_length=200, description="a category")]
Near = Annotated[str | None, QueryParameter(description="latitude|longitude[|distance[|units]]")]
NearZip = Annotated[str | None, QueryParameter(name="near-zip", description="ZIP[|distance[|units]]")]
Organization = Annotated[str | None, QueryParameter(description="Organization/[id] or [id]")]


class FhirController(Controller):
    path = BASE
    tags = ["FHIR R4 directory"]
    response_headers = [
        ResponseHeader(name="Access-Control-Allow-Origin", value="*", description="any web page may read it")
    ]
    exception_handlers = {
        kind: outcome_handler(handler, query_names=_QUERY_NAMES, headers=_CORS)
        for kind, handler in _SERVICE_ERRORS.items()
    }

    @get("/metadata", summary="CapabilityStatement: what this FHIR API implements", media_type=MEDIA_TYPE)
    async def metadata(self, request: Request) -> Json:
        settings = request.app.state.settings
        return fhir_search.capability_statement(base=_base(request), publisher=settings.clinic_name)

    @get("/PractitionerRole", summary="Search PractitionerRoles", **_SEARCH)
    async def practitioner_roles(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        specialty: Specialty = None,
        specialty_text: SpecialtyText = None,
        name: Name = None,
        near: Near = None,
        near_zip: NearZip = None,
        accepting: Annotated[
            str | None, QueryParameter(description="accepting new clients: yes, waitlist or no")
        ] = None,
        organization: Organization = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        used = {"specialty": specialty, "specialty:text": specialty_text, "name": name, "near": near}
        used |= {"near-zip": near_zip, "accepting": accepting, "organization": organization}
        vocabulary = categories.load()
        query = fhir_search.partner_query(
            categories=vocabulary,
            specialty=specialty,
            specialty_text=specialty_text,
            name=name,
            near=near,
            near_zip=near_zip,
            accepting=accepting,
            organization=organization,
        )
        build = functools.partial(fhir.practitioner_role, categories=vocabulary)
        return await _partners(request, directory, "PractitionerRole", query, used, count, cursor, build)

    @get("/PractitionerRole/{id:str}", summary="Read a PractitionerRole", **_READ)
    async def practitioner_role(self, directory: NamedDependency[PartnerService], id: FromPath[str]) -> Json:
        return fhir.practitioner_role(await _partner(directory, id, "PractitionerRole"), categories.load())

    @get("/Practitioner", summary="Search Practitioners", **_SEARCH)
    async def practitioners(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        name: Name = None,
        communication: Annotated[
            str | None, QueryParameter(max_length=40, description="a language, e.g. Spanish")
        ] = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        query = fhir_search.partner_query(categories=categories.load(), name=name, communication=communication)
        used = {"name": name, "communication": communication}
        return await _partners(request, directory, "Practitioner", query, used, count, cursor, fhir.practitioner)

    @get("/Practitioner/{id:str}", summary="Read a Practitioner", **_READ)
    async def practitioner(self, directory: NamedDependency[PartnerService], id: FromPath[str]) -> Json:
        return fhir.practitioner(await _partner(directory, id, "Practitioner"))

    @get("/Organization", summary="Search Organizations (practices)", **_SEARCH)
    async def organizations(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        name: Name = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        _check_strict(request, "Organization")
        size = fhir_search.count(count)
        offset = _offset(cursor)
        query = PartnerQuery(q=" ".join((name or "").split()) or None)
        found = await directory.catalogue.practices(query, offset=offset, limit=max(size, 1))
        shown = found.items if size else []
        following = offset + size if size and offset + size < found.total else None
        links = _links(
            request, "Organization", {"name": name}, size, cursor, None if following is None else str(following)
        )
        return _bundle(request, [(fhir.organization(p), None) for p in shown], found.total, *links)

    @get("/Organization/{id:str}", summary="Read an Organization (a practice)", **_READ)
    async def organization(self, directory: NamedDependency[PartnerService], id: FromPath[str]) -> Json:
        try:
            return fhir.organization(await directory.catalogue.practice(practice_id=id))
        except PracticeNotFound:
            raise NoSuchResource("Organization", id) from None

    @get("/Location", summary="Search Locations", **_SEARCH)
    async def locations(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        name: Name = None,
        near: Near = None,
        near_zip: NearZip = None,
        organization: Organization = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        query = fhir_search.partner_query(
            categories=categories.load(),
            name=name,
            near=near,
            near_zip=near_zip,
            organization=organization,
            located=True,
        )
        used = {"name": name, "near": near, "near-zip": near_zip, "organization": organization}
        return await _partners(request, directory, "Location", query, used, count, cursor, fhir.location)

    @get("/Location/{id:str}", summary="Read a Location", **_READ)
    async def location(self, directory: NamedDependency[PartnerService], id: FromPath[str]) -> Json:
        partner_id = partner_of(id, "location")
        partner = None if partner_id is None else await _partner(directory, partner_id, "Location", shown_id=id)
        if partner is None or not has_location(partner):
            raise NoSuchResource("Location", id)
        return fhir.location(partner)

    @get("/HealthcareService", summary="Search HealthcareServices", **_SEARCH)
    async def healthcare_services(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        specialty: Specialty = None,
        specialty_text: SpecialtyText = None,
        name: Name = None,
        organization: Organization = None,
        count: Count = None,
        cursor: Cursor = None,
    ) -> SearchsetBundle:
        vocabulary = categories.load()
        query = fhir_search.partner_query(
            categories=vocabulary,
            specialty=specialty,
            specialty_text=specialty_text,
            name=name,
            organization=organization,
        )
        used = {"specialty": specialty, "specialty:text": specialty_text, "name": name, "organization": organization}
        build = functools.partial(fhir.healthcare_service, categories=vocabulary)
        return await _partners(request, directory, "HealthcareService", query, used, count, cursor, build)

    @get("/HealthcareService/{id:str}", summary="Read a HealthcareService", **_READ)
    async def healthcare_service(self, directory: NamedDependency[PartnerService], id: FromPath[str]) -> Json:
        return fhir.healthcare_service(await _partner(directory, id, "HealthcareService"), categories.load())


async def _partners(
    request: Request,
    directory: PartnerService,
    resource: str,
    query: PartnerQuery | None,
    used: dict[str, str | None],
    count: int | None,
    cursor: str | None,
    build: Callable[[Partner], Json],
) -> SearchsetBundle:
    """A searchset of partner-backed resources, through the directory's own search (nearest first
    for ``near``, else by name; its cursor pages it)."""
    _check_strict(request, resource)
    size = fhir_search.count(count)
    if query is None:
        return _bundle(request, [], 0, *_links(request, resource, used, size, cursor, None))
    total = await directory.catalogue.count(query)
    entries: list[tuple[Json, Json | None]] = []
    following = None
    if size:
        page = await directory.search(query, limit=size, cursor=cursor)
        entries = [(build(hit.partner), _distance(hit.distance_km)) for hit in page.hits]
        following = page.next_cursor
    return _bundle(request, entries, total, *_links(request, resource, used, size, cursor, following))


async def _partner(
    directory: PartnerService, partner_id: str, resource: str, *, shown_id: str | None = None
) -> Partner:
    try:
        return await directory.get(partner_id=partner_id)
    except PartnerNotFound:
        raise NoSuchResource(resource, shown_id or partner_id) from None


def _check_strict(request: Request, resource: str) -> None:
    """With ``Prefer: handling=strict``, a parameter this search does not know is an error."""
    if "handling=strict" not in request.headers.get("prefer", "").replace(" ", ""):
        return
    if extra := fhir_search.unknown(resource, request.query_params.keys()):
        raise InvalidSearch(f"{resource} has no search parameter {', '.join(extra)}", field=extra[0])


def _offset(cursor: str | None) -> int:
    if cursor is None:
        return 0
    if not cursor.isdigit() or len(cursor) > 9:
        raise InvalidSearch("cursor is not one this search handed out", field="cursor")
    return int(cursor)


def _base(request: Request) -> str:
    return f"{request.app.state.settings.public_url('directory')}{BASE}"


def _links(
    request: Request, resource: str, used: dict[str, str | None], size: int, cursor: str | None, following: str | None
) -> tuple[str, str | None]:
    """The ``self`` link (only the parameters this search used, the page size it gave) and the
    ``next`` one."""
    kept = [(name, value) for name, value in used.items() if value is not None] + [("_count", str(size))]
    url = f"{_base(request)}/{resource}?"
    current = url + urlencode(kept + ([("cursor", cursor)] if cursor else []))
    return current, None if following is None else url + urlencode([*kept, ("cursor", following)])


def _distance(km: float | None) -> Json | None:
    return None if km is None else fhir.distance(km)


def _bundle(
    request: Request, entries: list[tuple[Json, Json | None]], total: int, self_url: str, next_url: str | None
) -> SearchsetBundle:
    return searchset(entries, base=_base(request), total=total, self_url=self_url, next_url=next_url)


# Every route above, for the app's rate limits: anonymous reads count like the public search.
ROUTES = [("GET", f"{BASE}/metadata")] + [
    ("GET", f"{BASE}/{resource}{suffix}") for resource in fhir_search.PARAMETERS for suffix in ("", "/{id}")
]
