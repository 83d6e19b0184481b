"""Error pages for people: what a browser gets instead of the JSON error body when a page of
either service fails (401, 403, 404, 409, 410, 422, 429, 500, 503). The API (``/api/``) and every
client that does not ask for HTML keep the JSON body (:mod:`shared.web`).

The page is ``error.html`` of the shared templates (:mod:`shared.templating`): the staff layout,
with the navigation when someone is signed in, so a therapist who opens an admin page is shown
where they can go instead."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from litestar import Request, Response
from litestar.response import Template


@dataclass(frozen=True)
class Wording:
    title: str
    explanation: str


WORDING: dict[int, Wording] = {
    400: Wording("This request could not be read", "Go back, check what you entered and try again."),
    401: Wording("Please log in", "This page is for the clinic's staff."),
    403: Wording("Your account cannot open this page", "Ask the clinic's administrator if you need it."),
    404: Wording("Page not found", "There is no page at this address, or it is no longer there."),
    405: Wording("This page cannot do that", "Go back and use the page's own buttons and links."),
    409: Wording("Someone changed this meanwhile", "Nothing was saved. Reload the page and try again."),
    410: Wording("This link is no longer valid", "It was used already, or it has expired."),
    413: Wording("That is too large", "Nothing was saved. Send less at a time."),
    422: Wording("This could not be saved", "Nothing was changed. Go back, correct it and send it again."),
    429: Wording("Too many requests", "Please wait a few seconds, then try again."),
    500: Wording(
        "Something went wrong on our side",
        "Nothing you did caused this, and it has been logged. Try again; if it keeps happening, tell the "
        "clinic's administrator.",
    ),
    503: Wording("Please try again in a few seconds", "Nothing was changed; reload the page in a moment."),
}


def wants_page(request: Request) -> bool:
    """Whether the caller is a browser opening a page: not the API, and HTML accepted by name
    (browsers send ``text/html`` first; API clients, curl and httpx send ``*/*`` or JSON)."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_page(
    request: Request,
    status_code: int,
    *,
    title: str | None = None,
    explanation: str | None = None,
    headers: Mapping[str, str] | None = None,
    user: object = None,
) -> Response:
    """The styled error page for ``status_code``, its standard wording unless given; with the
    staff navigation when ``user`` (a signed-in staff member) is given."""
    wording = WORDING.get(status_code, WORDING[500 if status_code >= 500 else 400])
    settings = request.app.state.settings
    next_url, next_label = "", ""
    if status_code == 401:
        next_url, next_label = f"{settings.public_url('referrals')}/login", "Log in"
    elif user is None and status_code in (403, 404):
        next_url, next_label = f"{settings.public_url('directory')}/partners-in-health", "See the clinic's partners"
    return Template(
        "error.html",
        status_code=status_code,
        headers=dict(headers or {}),
        context={
            "title": title or wording.title,
            "explanation": explanation or wording.explanation,
            "status_code": status_code,
            "user": user if hasattr(user, "role") else None,
            "next_url": next_url,
            "next_label": next_label,
        },
    )
