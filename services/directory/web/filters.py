"""Search parameters shared by the JSON search and the public page: the Contract's names
(``category``, ``q``, ``near`` or ``zip``, ``radius_km``, ``accepting``, ``language``,
``telehealth``) turned into a :class:`PartnerQuery`, or a 400 naming the parameter at fault."""

from __future__ import annotations

from litestar import Request, Response

from services.directory.fields import Accepting
from services.directory.search import DEFAULT_RADIUS_KM, InvalidSearch, Near, PartnerQuery, parse_near
from services.directory.service import zip_centroid
from shared.geo import is_zip


def partner_query(
    *,
    category: str | None = None,
    q: str | None = None,
    near: str | None = None,
    zip: str | None = None,
    radius_km: float | None = None,
    accepting: Accepting | None = None,
    language: str | None = None,
    telehealth: bool | None = None,
) -> PartnerQuery:
    """The public search these parameters ask for. Empty strings count as not given (an HTML
    form sends every field)."""
    origin = None
    if near and near.strip():
        if zip and zip.strip():
            raise InvalidSearch("give near or zip, not both", field="zip")
        origin = parse_near(near.strip())
    elif zip and zip.strip():
        if not is_zip(zip):
            raise InvalidSearch(f"zip must be a 5-digit US ZIP code, not {zip!r}", field="zip")
        origin = zip_centroid(zip.strip())
        if origin is None:
            raise InvalidSearch(f"no known place has ZIP code {zip.strip()}", field="zip")
    elif radius_km is not None:
        raise InvalidSearch("radius_km needs near or zip", field="radius_km")
    return PartnerQuery(
        category=(category or "").strip() or None,
        q=" ".join((q or "").split()) or None,
        near=None if origin is None else Near(origin, DEFAULT_RADIUS_KM if radius_km is None else radius_km),
        accepting=accepting or None,
        language=(language or "").strip() or None,
        telehealth=telehealth,
    )


def bad_search(request: Request, exc: InvalidSearch) -> Response:
    """A malformed search parameter is the caller's syntax error: 400, like Litestar's own
    parameter validation, with the parameter named the same way."""
    return Response(
        {
            "status_code": 400,
            "detail": exc.detail,
            "extra": [{"key": exc.field, "message": exc.detail, "source": "query"}],
        },
        status_code=400,
    )
