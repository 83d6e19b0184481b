"""The admin's HTML pages under ``/admin/partners``: list with search and filters, create, edit,
pause / activate / archive, CSV import and export. Staff log in on the referrals service (it
holds the accounts); its cookie is accepted here, and every form carries a CSRF token."""

from __future__ import annotations

from dataclasses import fields
from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Redirect, Stream, Template

from services.directory import csv_io
from services.directory.columns import COLUMNS, details_from_record, record_from_partner
from services.directory.domain import STATUSES, TRANSITIONS, Partner, PartnerDetails, StaleVersion, Status
from services.directory.history import Entry
from services.directory.importing import column_of
from services.directory.listings import Listings, ReviewClosed
from services.directory.search import InvalidSearch, PartnerQuery
from services.directory.service import PartnerService
from services.directory.web.manage import FIELD_LABELS
from services.directory.web.pages import label_of
from services.directory.web.partners import uploaded_text
from shared import categories
from shared.errors import DomainError
from shared.web import requires

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE_SIZE = 50
ACTIONS: dict[Status, str] = {"active": "Activate", "paused": "Pause", "archived": "Archive (final)"}
NEW_RECORD = {"accepting_new_clients": "yes", "telehealth": "no", "listed": "yes", "status": "active"}


class AdminController(Controller):
    path = "/admin/partners"
    guards = [requires("admin")]
    include_in_schema = False

    @get("/")
    async def index(self, request: Request, directory: NamedDependency[PartnerService]) -> Template:
        form = {
            name: request.query_params.get(name, "").strip()
            for name in ("q", "category", "status", "needs_review", "cursor")
        }
        context: dict[str, Any] = {"form": form, "statuses": STATUSES, "error": None, "partners": [], "next_url": None}
        try:
            status = form["status"] if form["status"] in STATUSES else None
            query = PartnerQuery(
                public_only=False,
                q=form["q"] or None,
                category=form["category"] or None,
                status=status,
                needs_review=form["needs_review"] == "yes",
            )
            page = await directory.search(query, limit=PAGE_SIZE, cursor=form["cursor"] or None)
            context["partners"] = page.partners
            if page.next_cursor:
                context["next_url"] = "/admin/partners?" + urlencode({**form, "cursor": page.next_cursor})
        except InvalidSearch as exc:
            context["error"] = exc.detail
        notice = request.query_params.get("notice")
        listings: Listings = request.app.state.listings
        context["today"] = listings.today()
        return _page(request, "admin/list.html", context | {"notice": notice})

    @get("/reviews")
    async def reviews(self, request: Request) -> Template:
        """Changes partners asked for that wait for the admin: approve or reject, with a note."""
        listings: Listings = request.app.state.listings
        pending = await listings.reviews(status="pending")
        rows = [(review, partner, record_from_partner(partner) if partner else {}) for review, partner in pending]
        notice = {"approved": "Approved: the listing is changed.", "rejected": "Rejected: the partner is told."}.get(
            request.query_params.get("notice", "")
        )
        problem = {"closed": "That review was decided already."}.get(request.query_params.get("problem", ""))
        return _page(
            request, "admin/reviews.html", {"rows": rows, "notice": notice, "problem": problem, "labels": FIELD_LABELS}
        )

    @post("/reviews/{review_id:str}")
    async def decide(self, request: Request, review_id: FromPath[str], data: FormData) -> Response:
        listings: Listings = request.app.state.listings
        decision = data.get("decision", "")
        if decision not in ("approve", "reject"):
            return Redirect("/admin/partners/reviews", status_code=303)
        staff = request.scope.get("user")
        try:
            await listings.decide(
                review_id=review_id,
                approve=decision == "approve",
                note=str(data.get("note", "")),
                admin=getattr(staff, "email", "") or "unknown",
            )
        except ReviewClosed:
            return Redirect("/admin/partners/reviews?problem=closed", status_code=303)
        return Redirect(f"/admin/partners/reviews?notice={decision}d", status_code=303)

    @get("/new")
    async def new(self, request: Request) -> Template:
        return _form_page(request, record=NEW_RECORD)

    @post("/new")
    async def create(self, request: Request, directory: NamedDependency[PartnerService], data: FormData) -> Response:
        record = _record(data)
        try:
            details, status = details_from_record(record)
            partner = await directory.create(details=details, status=status or "active", actor=actor_of(request))
        except DomainError as exc:
            return _form_page(request, record=record, error=exc, status_code=422)
        return Redirect(f"/admin/partners/{partner.id}?notice=created", status_code=303)

    @get("/import")
    async def import_form(self, request: Request) -> Template:
        return _page(request, "admin/import.html", {"columns": COLUMNS, "report": None, "problem": None})

    @post("/import", request_max_body_size=csv_io.MAX_FILE_BYTES)
    async def import_file(self, request: Request, directory: NamedDependency[PartnerService]) -> Template:
        form = await request.form()
        context: dict[str, Any] = {"columns": COLUMNS, "report": None, "problem": None}
        try:
            text = await uploaded_text(request)
            report = await directory.import_rows(csv_io.read_rows(text), skip_invalid=form.get("skip_invalid") == "yes")
        except DomainError as exc:
            return _page(request, "admin/import.html", context | {"problem": exc.detail}, status_code=422)
        return _page(
            request, "admin/import.html", context | {"report": report}, status_code=422 if report.rejected else 200
        )

    @get("/export.csv")
    async def export(self, directory: NamedDependency[PartnerService]) -> Stream:
        return Stream(
            csv_io.write_csv(directory.every_partner()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="partners.csv"'},
        )

    @get("/{partner_id:str}")
    async def edit(
        self, request: Request, directory: NamedDependency[PartnerService], partner_id: FromPath[str]
    ) -> Template:
        partner = await directory.get(partner_id=partner_id, include_hidden=True)
        notice = {"created": "Partner added.", "saved": "Changes saved.", "status": "Status changed."}.get(
            request.query_params.get("notice", "")
        )
        history = await directory.history(partner_id=partner.id, limit=20)
        return _form_page(request, partner=partner, record=record_from_partner(partner), notice=notice, history=history)

    @post("/{partner_id:str}")
    async def update(
        self, request: Request, directory: NamedDependency[PartnerService], partner_id: FromPath[str], data: FormData
    ) -> Response:
        record = _record(data)
        current = await directory.get(partner_id=partner_id, include_hidden=True)
        try:
            details, _ = details_from_record(record)
            await directory.update(
                partner_id=partner_id, version=_version(data), changes=_all_fields(details), actor=actor_of(request)
            )
        except StaleVersion as exc:
            # Show what is stored now rather than overwrite someone else's change unseen.
            latest = await directory.get(partner_id=partner_id, include_hidden=True)
            return _form_page(request, partner=latest, record=record_from_partner(latest), error=exc, status_code=409)
        except DomainError as exc:
            return _form_page(
                request, partner=current, record=record, error=exc, status_code=422, version=_version(data)
            )
        return Redirect(f"/admin/partners/{partner_id}?notice=saved", status_code=303)

    @post("/{partner_id:str}/status")
    async def change_status(
        self, request: Request, directory: NamedDependency[PartnerService], partner_id: FromPath[str], data: FormData
    ) -> Response:
        target = data.get("status", "")
        try:
            if target == "archived":
                await directory.archive(partner_id=partner_id, version=_version(data), actor=actor_of(request))
            else:
                await directory.update(
                    partner_id=partner_id,
                    version=_version(data),
                    status=target,  # type: ignore[arg-type]  # the domain refuses an unknown status, naming it
                    actor=actor_of(request),
                )
        except DomainError as exc:
            latest = await directory.get(partner_id=partner_id, include_hidden=True)
            return _form_page(
                request,
                partner=latest,
                record=record_from_partner(latest),
                error=exc,
                status_code=409 if isinstance(exc, StaleVersion) else 422,
            )
        return Redirect(f"/admin/partners/{partner_id}?notice=status", status_code=303)


def actor_of(request: Request) -> str:
    """Who is making a change, as the partner's history records it."""
    return f"admin:{getattr(request.scope.get('user'), 'email', '') or 'unknown'}"


def _record(data: dict[str, str]) -> dict[str, str]:
    return {name: str(data.get(name, "")) for name in COLUMNS}


def _version(data: dict[str, str]) -> int:
    try:
        return int(data.get("version", ""))
    except ValueError:
        return 0


def _all_fields(details: PartnerDetails) -> dict[str, Any]:
    """Every detail, as a change: the form states the whole partner."""
    return {f.name: getattr(details, f.name) for f in fields(PartnerDetails)}


def _form_page(
    request: Request,
    *,
    record: dict[str, str],
    partner: Partner | None = None,
    error: DomainError | None = None,
    notice: str | None = None,
    status_code: int = 200,
    version: int | None = None,
    history: list[Entry] | None = None,
) -> Template:
    errors = {column_of(error.field) or "name": error.detail} if error is not None and error.field else {}
    problem = None
    if error is not None:
        problem = (
            "Someone else changed this partner meanwhile; their version is shown below. Apply your change again."
            if isinstance(error, StaleVersion)
            else "The partner was not saved: fix the field below."
        )
    context = {
        "heading": f"Edit {partner.details.name}" if partner else "Add a partner",
        "action": f"/admin/partners/{partner.id}" if partner else "/admin/partners/new",
        "submit": "Save changes" if partner else "Add partner",
        "partner": partner,
        "version": version if version is not None else (partner.version if partner else None),
        "record": record,
        "errors": errors if not isinstance(error, StaleVersion) else {},
        "problem": problem,
        "notice": notice,
        "categories": [(slug, c.label) for slug, c in categories.load().items()],
        "transitions": [(t, ACTIONS[t]) for t in ACTIONS if partner and t in TRANSITIONS[partner.status]],
        "history": history or [],
    }
    return _page(request, "admin/form.html", context, status_code=status_code)


def _page(request: Request, template: str, context: dict, *, status_code: int = 200) -> Template:
    settings = request.app.state.settings
    return Template(
        template,
        context={
            "clinic_name": settings.clinic_name,
            "staff": request.scope.get("user"),
            "logout_url": f"{settings.public_url('referrals')}/logout",
            "categories": [(slug, c.label) for slug, c in categories.load().items()],
            "label_of": label_of,
            **context,
        },
        status_code=status_code,
    )
