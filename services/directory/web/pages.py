"""The public Partners in Health pages (HTML). They show listed, active partners only and never a
partner's referral email: referrals go through Handoff, not a public address.

Both pages work without JavaScript (filters are a GET form), carry schema.org JSON-LD and
OpenGraph tags, and are served from :class:`PageCache` with an ETag that changes with the
catalogue revision, so a browser or CDN revalidates cheaply and never shows a stale directory.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import date, datetime
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response.base import ASGIResponse

from services.directory.domain import Partner, PartnerNotFound
from services.directory.search import InvalidSearch, PartnerQuery
from services.directory.service import Hit, PartnerService
from services.directory.web import jsonld
from services.directory.web.filters import partner_query
from services.directory.web.page_cache import cached, raw_query
from shared import categories

BASE = "/partners-in-health"
HTML = "text/html; charset=utf-8"
PAGE_SIZE = 30
# Partners shown per kind on the unfiltered page; the rest are one "see all" link away.
PREVIEW = 6
RADII_KM = (5, 10, 25, 50, 100)
FILTERS = ("q", "category", "zip", "radius_km", "accepting", "language", "telehealth")


class PartnersInHealthController(Controller):
    path = BASE
    include_in_schema = False

    # The hottest route of the service: it reads its service from app state rather than through
    # dependency injection, keys the cache on the raw query string, and answers with a prepared
    # ASGI response, so that a cached page costs little more than a static file.
    @get("/")
    async def index(self, request: Request) -> ASGIResponse:
        directory: PartnerService = request.app.state.directory

        def render() -> Awaitable[tuple[bytes, int]]:
            form = {name: request.query_params.get(name, "").strip() for name in (*FILTERS, "cursor")}
            return _index(request, directory, form)

        return await cached(request, directory.catalogue_revision, f"{BASE}?{raw_query(request)}", render, HTML)

    @get("/{slug:str}")
    async def detail(self, request: Request, slug: FromPath[str]) -> ASGIResponse:
        directory: PartnerService = request.app.state.directory
        response = await cached(
            request, directory.catalogue_revision, f"{BASE}/{slug}", lambda: _detail(request, directory, slug), HTML
        )
        if response.status_code == 404:
            # A page that exists is served from the cache and never counted; made-up slugs are
            # counted with the anonymous searches (see the app's SEARCH_ROUTES).
            await request.app.state.count_miss(request)
        return response


async def _index(request: Request, directory: PartnerService, form: dict[str, str]) -> tuple[bytes, int]:
    context = _base_context(request) | {"form": form, "radii": RADII_KM, "error": None, "path": BASE}
    try:
        query = partner_query(
            category=form["category"],
            q=form["q"],
            zip=form["zip"],
            radius_km=_number(form["radius_km"], "radius_km") if form["zip"] else None,
            accepting="yes" if form["accepting"] else None,
            language=form["language"],
            telehealth=True if form["telehealth"] else None,
        )
        if query.is_filtered or form["cursor"]:
            page = await directory.search(query, limit=PAGE_SIZE, cursor=form["cursor"] or None)
            context |= {
                "results": _results(page.hits, by_distance=query.near is not None),
                "total_shown": len(page.hits),
                "next_url": None if page.next_cursor is None else _url({**form, "cursor": page.next_cursor}),
                "groups": None,
            }
            shown = page.partners
        else:
            context |= {"groups": await _overview(directory), "results": None}
            shown = [p for _, _, _, members in context["groups"] for p in members]
    except InvalidSearch as exc:
        context |= {"error": exc, "groups": None, "results": []}
        shown = []
    origin = context["origin"]
    context["jsonld"] = jsonld.script_json(
        jsonld.item_list([(p.details.name, f"{origin}{BASE}/{p.slug}") for p in shown])
    )
    status = 400 if context["error"] else 200
    return _render(request, "partners_in_health/index.html", context), status


async def _overview(directory: PartnerService) -> list[tuple[str, str, int, list[Partner]]]:
    """(slug, label, how many, the first few) for each kind that has listed partners."""
    counts = await directory.count_by_category(PartnerQuery())
    groups = []
    for slug, category in categories.load().items():
        if counts.get(slug):
            page = await directory.search(PartnerQuery(category=slug), limit=PREVIEW)
            groups.append((slug, category.label, counts[slug], page.partners))
    return groups


def _results(hits: list[Hit], *, by_distance: bool) -> list[tuple[str, list[Hit]]]:
    """Hits grouped by kind (in the vocabulary's order), or in one list nearest first."""
    if by_distance:
        return [("", hits)]
    groups: dict[str, list[Hit]] = {slug: [] for slug in categories.load()}
    for hit in hits:
        groups.setdefault(hit.partner.details.category, []).append(hit)
    return [(label_of(slug), members) for slug, members in groups.items() if members]


async def _detail(request: Request, directory: PartnerService, slug: str) -> tuple[bytes, int]:
    context = _base_context(request)
    try:
        partner = await directory.get_by_slug(slug=slug)
    except PartnerNotFound:
        return _render(request, "partners_in_health/not_found.html", context), 404
    url = f"{context['origin']}{BASE}/{partner.slug}"
    label = label_of(partner.details.category)
    context |= {
        "partner": partner,
        "category_label": label,
        "url": url,
        "jsonld": jsonld.script_json(jsonld.partner_jsonld(partner, url=url, category_label=label)),
    }
    return _render(request, "partners_in_health/detail.html", context), 200


def _base_context(request: Request) -> dict:
    settings = request.app.state.settings
    return {
        "clinic_name": settings.clinic_name,
        "origin": settings.public_url("directory"),
        "categories": [(slug, c.label) for slug, c in categories.load().items()],
        "label_of": label_of,
        "accepting_text": ACCEPTING_TEXT,
        "day_text": day_text,
    }


def _render(request: Request, template: str, context: dict) -> bytes:
    engine = request.app.template_engine
    assert engine is not None, "the app is built with a template engine"
    return engine.get_template(template).render(**context).encode()


def _url(form: dict[str, str]) -> str:
    return f"{BASE}?{urlencode([(k, v) for k, v in form.items() if v])}"


def _number(value: str, name: str) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise InvalidSearch(f"{name} must be a number", field=name) from None


ACCEPTING_TEXT = {
    "yes": "Accepting new clients",
    "no": "Not accepting new clients",
    "waitlist": "Waitlist for new clients",
}


def day_text(moment: date | datetime | None) -> str:
    """E.g. "November 30, 2026"."""
    if moment is None:
        return ""
    return f"{moment:%B} {moment.day}, {moment:%Y}"


def label_of(slug: str) -> str:
    category = categories.load().get(slug)
    # A category dropped from the vocabulary still shows, under its slug, until edited.
    return category.label if category else slug
