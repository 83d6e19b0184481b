"""The public Partners in Health pages (HTML). They show listed, active partners only and never a
partner's referral email: referrals go through Handoff, not a public address.

Both pages work without JavaScript (filters are a GET form), carry schema.org JSON-LD and
OpenGraph tags, and are served from :class:`PageCache` with an ETag that changes with the
catalogue revision, so a browser or CDN revalidates cheaply and never shows a stale directory.
"""

from __future__ import annotations

from collections.abc import Awaitable
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response.base import ASGIResponse

from services.directory.domain import Partner, PartnerNotFound
from services.directory.search import Hit, InvalidSearch, PartnerQuery, query_terms
from services.directory.service import PartnerService
from services.directory.web import jsonld, listing
from services.directory.web.filters import partner_query
from services.directory.web.page_cache import cached, raw_query
from shared import categories, languages

BASE = "/partners-in-health"
# Litestar adds "; charset=utf-8" to a text type itself.
HTML = "text/html"
# Short pages, so that the list stays a few screens long on a phone; "More partners" pages on.
PAGE_SIZE = 12
# Partners shown per kind on the unfiltered page; the rest are one "see all" link away.
PREVIEW = 4
# The radii offered, in the clinic's unit (HANDOFF_DISTANCE_UNIT), and the one chosen at first.
RADII = (5, 10, 25, 50, 100)
DEFAULT_RADIUS = {"mi": 25, "km": 50}
FILTERS = ("q", "category", "zip", "radius_km", "radius_mi", "accepting", "language", "telehealth")


def early_key(path: str, query_string: bytes) -> tuple[str, str] | None:
    """(cache key, route template) of a request for the plain page or a partner's page, which
    the page cache may answer before the app (:func:`page_cache.front`): neither is rate-limited
    while it exists, nor differs by who asks. The keys are the handlers' own."""
    if path == BASE:
        return None if query_string else (f"{BASE}?", BASE)
    slug = path.removeprefix(f"{BASE}/")
    if slug == path or not slug or "/" in slug:
        return None
    return path, f"{BASE}/{{slug}}"  # as the router names the detail route (its path_template)


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

        key = f"{BASE}?{raw_query(request)}"
        return await cached(
            request, directory.catalogue_revision, key, render, HTML, cache=request.app.state.page_cache
        )

    @get("/{slug:str}")
    async def detail(self, request: Request, slug: FromPath[str]) -> ASGIResponse:
        directory: PartnerService = request.app.state.directory
        response = await cached(
            request,
            directory.catalogue_revision,
            f"{BASE}/{slug}",
            lambda: _detail(request, directory, slug),
            HTML,
            cache=request.app.state.page_cache,
        )
        if response.status_code == 404:
            # A page that exists is served from the cache and never counted; made-up slugs are
            # counted with the anonymous searches (see the app's SEARCH_ROUTES).
            await request.app.state.count_miss(request)
        return response


async def _index(request: Request, directory: PartnerService, form: dict[str, str]) -> tuple[bytes, int]:
    unit = request.app.state.settings.distance_unit
    context = _base_context(request) | {
        "form": form,
        "radii": RADII,
        "radius_field": f"radius_{unit}",
        "radius_chosen": form[f"radius_{unit}"] or str(DEFAULT_RADIUS[unit]),
        "error": None,
        "path": BASE,
        "language_options": await _language_options(directory, asked=form["language"]),
        "language_key": languages.key,
        "suggestions": [],
    }
    try:
        query = partner_query(
            category=form["category"],
            q=form["q"],
            zip=form["zip"],
            radius_km=_radius_km(form, unit) if form["zip"] else None,
            accepting="yes" if form["accepting"] else None,
            language=form["language"],
            telehealth=True if form["telehealth"] else None,
        )
        if query.is_filtered or form["cursor"]:
            page = await directory.search(query, limit=PAGE_SIZE, cursor=form["cursor"] or None)
            context |= {
                "results": _results(page.hits, by_distance=query.near is not None, q=form["q"]),
                "total_shown": len(page.hits),
                "next_url": None if page.next_cursor is None else _url({**form, "cursor": page.next_cursor}),
                "groups": None,
            }
            if not page.hits:
                context["suggestions"] = _suggestions(form, unit)
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


def _radius_km(form: dict[str, str], unit: str) -> float | None:
    """The radius asked for: ``radius_km`` (the API's name) or ``radius_mi`` (the page's, when
    the clinic measures in miles), in kilometres."""
    if form["radius_km"]:
        return _number(form["radius_km"], "radius_km")
    given = _number(form["radius_mi"], "radius_mi")
    return None if given is None else listing.to_km(given, "mi")


async def _language_options(directory: PartnerService, *, asked: str) -> list[tuple[str, str]]:
    """(value, label) of each language listed partners speak, one per language however spelled,
    and the one ``asked`` for (a link may name any)."""
    spoken = await directory.languages(PartnerQuery())
    found = {languages.key(name): languages.label(name) for name in [*spoken, *([asked] if asked else [])]}
    return sorted(found.items(), key=lambda item: (item[0] != "en", item[1].casefold()))


def _suggestions(form: dict[str, str], unit: str) -> list[tuple[str, str]]:
    """(text, link) of ways out of an empty result: look farther, drop a filter, telehealth."""
    found = []
    radius_field = f"radius_{unit}"
    if form["zip"]:
        chosen = _number(form[radius_field], radius_field) or DEFAULT_RADIUS[unit]
        wider = [r for r in RADII if r > chosen]
        if wider:
            found.append((f"Look farther: within {wider[-1]} {unit} of {form['zip']}", {radius_field: str(wider[-1])}))
    dropped = {
        "q": f"Without the words “{form['q']}”",
        "category": f"Any kind of practitioner, not only {label_of(form['category'])}",
        "language": f"Any language, not only {languages.label(form['language'])}",
        "accepting": "Also partners not taking new clients now",
        "zip": "Anywhere, not only near " + form["zip"],
    }
    for name, text in dropped.items():
        if form[name]:
            found.append((text, {name: ""} | ({radius_field: "", "radius_km": ""} if name == "zip" else {})))
    if not form["telehealth"]:
        found.append(("Partners who see clients by video (telehealth)", {"telehealth": "yes", "zip": ""}))
    base = {k: v for k, v in form.items() if k != "cursor"}
    return [(text, _url(base | change)) for text, change in found]


async def _overview(directory: PartnerService) -> list[tuple[str, str, int, list[Partner]]]:
    """(slug, label, how many, the first few) for each kind that has listed partners."""
    counts = await directory.count_by_category(PartnerQuery())
    groups = []
    for slug, category in categories.load().items():
        if counts.get(slug):
            page = await directory.search(PartnerQuery(category=slug), limit=PREVIEW)
            groups.append((slug, category.label, counts[slug], page.partners))
    return groups


def _results(hits: list[Hit], *, by_distance: bool, q: str = "") -> list[tuple[str, list[Hit]]]:
    """Hits grouped by kind, or in one list nearest first. The kinds the search words name
    ("chiropractor") come first, then the vocabulary's order."""
    if by_distance:
        return [("", hits)] if hits else []
    named = {slug for term in query_terms(q, categories.search_words()) for slug in term.categories} if q else set()
    order = sorted(categories.load(), key=lambda slug: slug not in named)
    groups: dict[str, list[Hit]] = {slug: [] for slug in order}
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
        "unit": settings.distance_unit,
        "listing": listing,
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


def label_of(slug: str) -> str:
    category = categories.load().get(slug)
    # A category dropped from the vocabulary still shows, under its slug, until edited.
    return category.label if category else slug
