"""The partner's self-service pages: ``POST /partners-in-health/{slug}/manage-link`` (public: emails
a manage link to the partner's referral address on file, and answers the same whether or not it
did) and ``/manage/{token}`` (the listing as a form; GET changes nothing, the CSRF-protected POST
confirms or updates). After a POST the browser is sent to the page again with a fresh link
(post/redirect/get), so a reload never submits twice."""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Template
from redis import Redis
from redis.exceptions import RedisError

from services.directory.columns import DAY_COLUMNS, record_from_partner
from services.directory.listing_form import REVIEWED_COLUMNS, SELF_SERVICE_COLUMNS, ListingInvalid
from services.directory.listings import LinkRefused, Listings, ManagePage
from services.directory.web.pages import ACCEPTING_TEXT, label_of
from shared import categories, ratelimit

log = logging.getLogger(__name__)

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
MANAGE_LINK_ROUTE = ("POST", "/partners-in-health/{slug}/manage-link")
# Manage-link emails per partner per hour, whoever asks: enough for a partner who lost one, too
# few to flood its inbox.
PER_PARTNER_PER_HOUR = 3
# Manage-link requests per client address per minute (any slug, so it reveals nothing).
PER_ADDRESS_PER_MINUTE = 5
NO_STORE = {"Cache-Control": "no-store"}

REFUSALS = {
    "invalid": (
        403,
        "This link is not valid",
        "The link may have been copied incompletely. Use the link in the email exactly as it was sent, "
        "or ask for a new one with “Update this listing” on your public listing page.",
    ),
    "expired": (
        410,
        "This link has expired",
        "Manage links work for two weeks. Ask for a new one with “Update this listing” on your public "
        "listing page; it is emailed to your referral address. Nothing was changed.",
    ),
    "used": (
        409,
        "This form was already sent",
        "What it said was recorded once; sending it again changed nothing. Open the link in your email "
        "again to see your listing as it is now and make another change.",
    ),
    "gone": (
        410,
        "This listing is no longer with the clinic",
        "The clinic no longer lists this partner, so there is nothing to update. Nothing was changed.",
    ),
}
DONE = {
    "confirmed": "Thank you: your listing is confirmed as correct today.",
    "saved": "Your changes are saved and on the public page now.",
    "queued": "Thank you: the changes marked “checked by the clinic” wait for its review; you will get an "
    "email when it decides.",
    "saved_queued": "Your changes are saved and on the public page now; the ones marked “checked by the clinic” "
    "wait for its review, and you will get an email when it decides.",
    "nothing": "Nothing differed from your listing, so nothing changed.",
}


def per_address() -> ratelimit.Rule:
    """The client-address limit of manage-link requests (429 over it: it says nothing of the
    partner asked about)."""

    async def buckets(request: Request) -> list[ratelimit.Bucket]:
        return [ratelimit.Bucket(f"manage-link:{ratelimit.client_address(request)}", PER_ADDRESS_PER_MINUTE)]

    return buckets


def _partner_allowance(redis: Redis, slug: str) -> bool:
    """Count one request for the partner at ``slug``; False when it had its emails this hour.
    Closed when Redis is away: no email then, rather than no limit."""
    key = f"handoff:manage-link:{slug}"
    try:
        count = int(redis.incr(key))
        if count == 1:
            redis.expire(key, 3600)
    except (RedisError, OSError) as exc:
        log.warning("manage-link request not sent: Redis did not answer (%s)", type(exc).__name__)
        return False
    return count <= PER_PARTNER_PER_HOUR


@post(MANAGE_LINK_ROUTE[1].replace("{slug}", "{slug:str}"), status_code=202, include_in_schema=False)
async def request_manage_link(request: Request, slug: FromPath[str]) -> Template:
    """Email the partner a manage link; the same neutral answer for every slug."""
    listings: Listings = request.app.state.listings
    if await anyio.to_thread.run_sync(_partner_allowance, request.app.state.redis, slug):
        await listings.request_link(slug=slug)
    return Template(
        "manage/requested.html",
        context=_base(request),
        status_code=202,
        headers={"Cache-Control": "no-store"},
    )


class ManageController(Controller):
    path = "/manage"
    include_in_schema = False

    @get("/{token:str}")
    async def show(self, request: Request, token: FromPath[str]) -> Response:
        listings: Listings = request.app.state.listings
        try:
            page = await listings.open(token)
        except LinkRefused as refused:
            return _refused(request, refused)
        notice = DONE.get(request.query_params.get("done", ""))
        return _page(request, page, notice=notice)

    @post("/{token:str}", status_code=200)
    async def act(self, request: Request, token: FromPath[str], data: FormData) -> Response:
        listings: Listings = request.app.state.listings
        action = data.get("action", "")
        try:
            if action == "confirm":
                page = await listings.confirm(token)
                done = "confirmed"
            elif action == "update":
                updated = await listings.update(token, data)
                page = updated.page
                done = (
                    "saved_queued"
                    if updated.applied and updated.queued
                    else "queued"
                    if updated.queued
                    else "saved"
                    if updated.applied
                    else "nothing"
                )
            else:
                page = await listings.open(token)
                return _page(request, page, problem="Choose “Confirm” or “Save changes”.", status_code=422)
        except LinkRefused as refused:
            return _refused(request, refused)
        except ListingInvalid as invalid:
            page = await listings.open(token)
            return _page(request, page, record=dict(data), errors=invalid.errors, status_code=422)
        return Redirect(f"/manage/{page.token}?done={done}", status_code=303, headers=NO_STORE)


def _page(
    request: Request,
    page: ManagePage,
    *,
    record: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Template:
    listings: Listings = request.app.state.listings
    shown = record_from_partner(page.partner)
    if record is not None:
        # What the partner typed is kept, the rest as stored.
        shown |= {column: record[column] for column in (*SELF_SERVICE_COLUMNS, *REVIEWED_COLUMNS) if column in record}
    errors = errors or {}
    return Template(
        "manage/page.html",
        context=_base(request)
        | {
            "page": page,
            "partner": page.partner,
            "record": shown,
            "errors": errors,
            "problem": problem
            or (f"Nothing was saved: {len(errors)} field(s) to fix, shown below." if errors else None),
            "notice": notice,
            "action": f"/manage/{page.token}",
            "expires": page.expires_at,
            "tomorrow": date.fromordinal(listings.today().toordinal() + 1).isoformat(),
            "category_options": [(slug, c.label) for slug, c in categories.load().items()],
            "labels": FIELD_LABELS,
            "day_columns": DAY_COLUMNS,
        },
        status_code=status_code,
        headers=NO_STORE,
    )


def _refused(request: Request, refused: LinkRefused) -> Template:
    status, title, explanation = REFUSALS[refused.why]
    return Template(
        "manage/refused.html",
        context=_base(request) | {"title": title, "explanation": explanation},
        status_code=status,
        headers=NO_STORE,
    )


def _base(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "clinic_name": settings.clinic_name,
        "label_of": label_of,
        "accepting_text": ACCEPTING_TEXT,
    }


FIELD_LABELS = {
    "accepting_new_clients": "Taking new clients",
    "accepting_until": "Until (optional)",
    "hours": "Hours",
    "telehealth": "Telehealth",
    "languages": "Languages",
    "phone": "Phone",
    "website": "Website",
    "bio": "Short bio",
    "specialties": "Specialties",
    "insurance_notes": "Insurance notes",
    "accessibility_notes": "Accessibility notes",
    "response_window_days": "Usually answers a referral within (days)",
    "name": "Name",
    "category": "Kind of practice",
    "credentials": "Credentials",
    "license_number": "Licence number",
    "license_state": "Licence state",
    "licence_expires_on": "Licence expires on",
    "npi": "NPI",
    "address_line1": "Address",
    "address_line2": "Address, line 2",
    "city": "City",
    "state": "State",
    "postal_code": "ZIP code",
}
