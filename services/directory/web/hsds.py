"""``/hsds``: the public directory as an Open Referral HSDS 3.0 read API, keyless, readable from any
web page (``Access-Control-Allow-Origin: *``). Lists are paged as HSDS specifies (``page`` from 1,
``per_page``); a page out of range is empty, not an error. Errors are the service's usual JSON body.
Shapes: :mod:`services.directory.hsds`; field by field: docs/standards.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Request, Response, get
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency, Provide
from litestar.exceptions import TooManyRequestsException
from litestar.params import FromPath, QueryParameter

from services.directory import hsds
from services.directory.catalogue import Numbered, PracticeNotFound, has_location
from services.directory.domain import Partner, PartnerNotFound
from services.directory.identifiers import partner_of
from services.directory.search import PartnerQuery
from services.directory.service import MAX_PAGE_SIZE, PartnerService
from shared import categories, web
from shared.errors import NotFound
from shared.openapi import RateLimited, errors

BASE = "/hsds"
DEFAULT_PAGE_SIZE = 50
ANY_ORIGIN = "*"
Json = dict[str, Any]

PageNumber = Annotated[int, QueryParameter(description="page number, from 1; past the last page: an empty page")]
PerPage = Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE, description="items a page")]
Search = Annotated[
    str | None, QueryParameter(max_length=200, description="words in the name, practice, specialties or city")
]
TermId = Annotated[str | None, QueryParameter(description="only services with this taxonomy term (a category)")]
OrganizationId = Annotated[str | None, QueryParameter(description="only the services of this organization")]


class HsdsPage(msgspec.Struct, kw_only=True):
    """HSDS's paged list: the counts, then the page's objects (HSDS 3.0 schemas, see ``contents``)."""

    total_items: int
    total_pages: int
    page_number: int
    size: Annotated[int, msgspec.Meta(description="objects on this page")]
    first_page: bool
    last_page: bool
    empty: bool
    contents: list[dict[str, Any]]


class HsdsApi(msgspec.Struct, kw_only=True):
    version: str
    openapi_url: str


class NoSuchObject(NotFound):
    """No published object of this kind has this id."""

    def __init__(self, kind: str, object_id: str) -> None:
        super().__init__(f"no {kind} {object_id!r}", field="id")


def context(request: Request) -> hsds.Context:
    settings = request.app.state.settings
    return hsds.Context(
        categories=categories.load(),
        clinic_name=settings.clinic_name,
        assurer_email=settings.clinic_email or None,
        timezone=ZoneInfo(settings.clinic_timezone),
        base_url=settings.public_url("directory"),
    )


def _anyone_may_read(handler: Any) -> Any:
    """An error handler whose answer, like every answer here, may be read by any web page."""

    def handle(request: Request, exc: Exception) -> Response:
        response = handler(request, exc)
        response.headers["Access-Control-Allow-Origin"] = ANY_ORIGIN
        return response

    return handle


_OPERATION: dict[str, Any] = {"operation_class": RateLimited}


class HsdsController(Controller):
    path = BASE
    tags = ["Open Referral HSDS 3.0"]
    response_headers = [
        ResponseHeader(name="Access-Control-Allow-Origin", value=ANY_ORIGIN, description="any web page may read it")
    ]
    dependencies = {"hsds_context": Provide(context, sync_to_thread=False)}
    # The service's usual JSON errors (a 429 too: these are API callers, not browsers reading a page).
    exception_handlers = {
        kind: _anyone_may_read(handler)
        for kind, handler in {**web.exception_handlers, TooManyRequestsException: web.api_error}.items()
    }

    @get("/", summary="HSDS version of this API", responses=errors(429), operation_class=RateLimited)
    async def api(self, request: Request) -> HsdsApi:
        base = request.app.state.settings.public_url("directory")
        return HsdsApi(version=hsds.HSDS_VERSION, openapi_url=f"{base}/schema/openapi.json")

    @get("/services", summary="Services (one per listed partner)", responses=errors(400, 429, 503), **_OPERATION)
    async def services(
        self,
        directory: NamedDependency[PartnerService],
        hsds_context: NamedDependency[hsds.Context],
        page: PageNumber = 1,
        per_page: PerPage = DEFAULT_PAGE_SIZE,
        search: Search = None,
        taxonomy_term_id: TermId = None,
        organization_id: OrganizationId = None,
    ) -> HsdsPage:
        query = _query(hsds_context, search=search, term=taxonomy_term_id, organization=organization_id)
        found = await _partners(directory, query, page, per_page)
        return _paged([hsds.service(p, hsds_context, full=False) for p in found.items], found, page, per_page)

    @get("/services/{id:str}", summary="One service", responses=errors(404, 429, 503), **_OPERATION)
    async def service(
        self, directory: NamedDependency[PartnerService], hsds_context: NamedDependency[hsds.Context], id: FromPath[str]
    ) -> Json:
        try:
            partner = await directory.get(partner_id=id)
        except PartnerNotFound:
            raise NoSuchObject("service", id) from None
        return hsds.service(partner, hsds_context)

    @get(
        "/organizations",
        summary="Organizations (the partners' practices)",
        responses=errors(400, 429, 503),
        **_OPERATION,
    )
    async def organizations(
        self,
        directory: NamedDependency[PartnerService],
        hsds_context: NamedDependency[hsds.Context],
        page: PageNumber = 1,
        per_page: PerPage = DEFAULT_PAGE_SIZE,
        search: Search = None,
    ) -> HsdsPage:
        query = PartnerQuery(q=" ".join((search or "").split()) or None)
        found = await directory.catalogue.practices(query, offset=(page - 1) * per_page, limit=per_page)
        return _paged([hsds.organization(p, hsds_context, full=False) for p in found.items], found, page, per_page)

    @get(
        "/organizations/{id:str}",
        summary="One organization, with its services",
        responses=errors(404, 429, 503),
        **_OPERATION,
    )
    async def organization(
        self, directory: NamedDependency[PartnerService], hsds_context: NamedDependency[hsds.Context], id: FromPath[str]
    ) -> Json:
        try:
            practice = await directory.catalogue.practice(practice_id=id)
        except PracticeNotFound:
            raise NoSuchObject("organization", id) from None
        return hsds.organization(practice, hsds_context)

    @get("/locations", summary="Locations", responses=errors(400, 429, 503), **_OPERATION)
    async def locations(
        self,
        directory: NamedDependency[PartnerService],
        page: PageNumber = 1,
        per_page: PerPage = DEFAULT_PAGE_SIZE,
    ) -> HsdsPage:
        found = await _partners(directory, PartnerQuery(located=True), page, per_page)
        return _paged([hsds.location(p) for p in found.items], found, page, per_page)

    @get("/locations/{id:str}", summary="One location", responses=errors(404, 429, 503), **_OPERATION)
    async def location(self, directory: NamedDependency[PartnerService], id: FromPath[str]) -> Json:
        return hsds.location(await _located(directory, id, "location"))

    @get("/service_at_locations", summary="Services at their locations", responses=errors(400, 429, 503), **_OPERATION)
    async def service_at_locations(
        self,
        directory: NamedDependency[PartnerService],
        hsds_context: NamedDependency[hsds.Context],
        page: PageNumber = 1,
        per_page: PerPage = DEFAULT_PAGE_SIZE,
        search: Search = None,
        taxonomy_term_id: TermId = None,
        organization_id: OrganizationId = None,
    ) -> HsdsPage:
        query = _query(hsds_context, search=search, term=taxonomy_term_id, organization=organization_id, located=True)
        found = await _partners(directory, query, page, per_page)
        return _paged([hsds.service_at_location(p, hsds_context) for p in found.items], found, page, per_page)

    @get(
        "/service_at_locations/{id:str}",
        summary="One service at its location",
        responses=errors(404, 429, 503),
        **_OPERATION,
    )
    async def service_at_location(
        self, directory: NamedDependency[PartnerService], hsds_context: NamedDependency[hsds.Context], id: FromPath[str]
    ) -> Json:
        partner = await _located(directory, id, "service_at_location")
        return hsds.service_at_location(partner, hsds_context, full=True)

    @get("/taxonomies", summary="Taxonomies of the category vocabulary", responses=errors(400, 429), **_OPERATION)
    async def taxonomies(
        self, hsds_context: NamedDependency[hsds.Context], page: PageNumber = 1, per_page: PerPage = DEFAULT_PAGE_SIZE
    ) -> HsdsPage:
        return _listed(hsds.taxonomies(hsds_context), page, per_page)

    @get("/taxonomies/{id:str}", summary="One taxonomy", responses=errors(404, 429), **_OPERATION)
    async def taxonomy(self, hsds_context: NamedDependency[hsds.Context], id: FromPath[str]) -> Json:
        return _one(hsds.taxonomies(hsds_context), id, "taxonomy")

    @get("/taxonomy_terms", summary="Taxonomy terms (one per category)", responses=errors(400, 429), **_OPERATION)
    async def taxonomy_terms(
        self,
        hsds_context: NamedDependency[hsds.Context],
        page: PageNumber = 1,
        per_page: PerPage = DEFAULT_PAGE_SIZE,
        taxonomy_id: Annotated[str | None, QueryParameter(description="only the terms of this taxonomy")] = None,
    ) -> HsdsPage:
        terms = hsds.taxonomy_terms(hsds_context)
        return _listed([t for t in terms if taxonomy_id in (None, t["taxonomy_id"])], page, per_page)

    @get("/taxonomy_terms/{id:str}", summary="One taxonomy term", responses=errors(404, 429), **_OPERATION)
    async def taxonomy_term(self, hsds_context: NamedDependency[hsds.Context], id: FromPath[str]) -> Json:
        return _one(hsds.taxonomy_terms(hsds_context), id, "taxonomy term")


def _query(
    context: hsds.Context,
    *,
    search: str | None = None,
    term: str | None = None,
    organization: str | None = None,
    located: bool = False,
) -> PartnerQuery | None:
    """The partners these HSDS filters ask for; None when no partner can match (an unknown term)."""
    category = None
    if term is not None:
        category = next((slug for slug, c in context.categories.items() if hsds.term_id(c) == term), None)
        if category is None:
            return None
    return PartnerQuery(
        q=" ".join((search or "").split()) or None,
        category=category,
        practices=None if organization is None else (organization,),
        located=located,
    )


async def _partners(
    directory: PartnerService, query: PartnerQuery | None, page: int, per_page: int
) -> Numbered[Partner]:
    if query is None:
        return Numbered([], 0)
    return await directory.catalogue.partners(query, offset=(page - 1) * per_page, limit=per_page)


async def _located(directory: PartnerService, object_id: str, kind: str) -> Partner:
    """The public partner whose ``kind`` (location, service_at_location) has this id."""
    partner_id = partner_of(object_id, kind)
    try:
        partner = None if partner_id is None else await directory.get(partner_id=partner_id)
    except PartnerNotFound:
        partner = None
    if partner is None or not has_location(partner):
        raise NoSuchObject(kind.replace("_", " "), object_id)
    return partner


def _paged(contents: Sequence[Json], found: Numbered[Any], page: int, per_page: int) -> HsdsPage:
    return HsdsPage(**hsds.page(contents, total=found.total, number=page, size=per_page))


def _listed(items: list[Json], page: int, per_page: int) -> HsdsPage:
    """A page of a short list held in memory (the vocabulary)."""
    start = (page - 1) * per_page
    contents = items[start : start + per_page] if page >= 1 else []
    return HsdsPage(**hsds.page(contents, total=len(items), number=page, size=per_page))


def _one(items: list[Json], object_id: str, kind: str) -> Json:
    for item in items:
        if item["id"] == object_id:
            return item
    raise NoSuchObject(kind, object_id)


# Every route above, for the app's rate limits: anonymous reads count like the public search.
ROUTES = [
    ("GET", f"{BASE}{path}")
    for path in (
        "",
        "/services",
        "/services/{id}",
        "/organizations",
        "/organizations/{id}",
        "/locations",
        "/locations/{id}",
        "/service_at_locations",
        "/service_at_locations/{id}",
        "/taxonomies",
        "/taxonomies/{id}",
        "/taxonomy_terms",
        "/taxonomy_terms/{id}",
    )
]
