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
from services.directory.columns import COLUMNS, DAY_COLUMNS, details_from_record, record_from_partner
from services.directory.domain import STATUSES, TRANSITIONS, Partner, PartnerDetails, StaleVersion, Status
from services.directory.fields import InvalidPartner
from services.directory.history import Entry
from services.directory.importing import column_of
from services.directory.listings import Listings, ReviewClosed
from services.directory.search import InvalidSearch, PartnerQuery
from services.directory.service import PartnerService
from services.directory.web.manage import FIELD_LABELS
from services.directory.web.pages import label_of
from services.directory.web.partner_form import LABELS, LIMITS, field_names
from services.directory.web.partners import uploaded_text
from shared import categories
from shared.errors import DomainError
from shared.web import requires

FormData = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
PAGE_SIZE = 50
ACTIONS: dict[Status, str] = {"active": "Activate", "paused": "Pause", "archived": "Archive (final)"}
# A new partner's category is chosen, never assumed: the form starts on "Choose…".
NEW_RECORD = {"accepting_new_clients": "yes", "telehealth": "no", "listed": "yes", "status": "active"}
# What stands in for a refused value while the rest of the form is checked (see _check_record).
_STAND_INS = {"name": "Partner", "email": "partner@example.org", "accepting_new_clients": "yes", "telehealth": "no"}


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
            request,
            "admin/reviews.html",
            {"rows": rows, "notice": notice, "problem": problem, "labels": FIELD_LABELS, "day_columns": DAY_COLUMNS},
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
        errors = _check_record(record)
        if errors:
            return _form_page(request, record=record, errors=errors, status_code=422)
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
        errors = _check_record(record)
        if errors:
            return _form_page(
                request, partner=current, record=record, errors=errors, status_code=422, version=_version(data)
            )
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
        if target == "archived" and data.get("confirm") != "yes":
            # Archiving is final: a page of its own asks first (a form, so no JavaScript is needed).
            partner = await directory.get(partner_id=partner_id, include_hidden=True)
            return _page(request, "admin/confirm_archive.html", {"partner": partner, "version": _version(data)})
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


def _check_record(record: dict[str, str]) -> dict[str, str]:
    """Every field the form got wrong, at once: column → a message naming the field by its
    label. The record is read as the CSV import reads a row; each refused value is set aside
    (a stand-in takes its place) and the rest read again, until nothing more is refused."""
    errors: dict[str, str] = {}
    probe = dict(record)
    for _ in range(len(COLUMNS) + 1):
        try:
            details, _ = details_from_record(probe)
            details.validated(categories=tuple(categories.load()))
        except InvalidPartner as exc:
            column = column_of(exc.field) or "name"
            if column in ("lat", "lon") and column in errors:
                # A position is a pair: with one half set aside, the other is set aside too.
                probe["lat"] = probe["lon"] = ""
                continue
            if column in errors:  # its stand-in was refused too: stop rather than loop
                break
            errors[column] = _worded(exc.detail, column)
            probe[column] = _STAND_INS.get(column, _first_category() if column == "category" else "")
        else:
            break
    # In the form's order (LABELS lists the fields as the form shows them).
    order = list(LABELS)
    return dict(sorted(errors.items(), key=lambda item: order.index(item[0]) if item[0] in order else len(order)))


def _first_category() -> str:
    return next(iter(categories.load()))


def _worded(detail: str, column: str) -> str:
    """The domain's message with the field named by its label: "ZIP code must be a known…"."""
    label = LABELS.get(column, column)
    for key in (column, column.removeprefix("address_"), column.replace("_", " ")):
        if detail.startswith(key + " "):
            return label + detail[len(key) :]
    if detail.startswith(("give ", "at most ", "unknown ")):
        return f"{label}: {detail}"
    return f"{label}: {detail[:1].lower()}{detail[1:]}" if not detail.startswith(label) else detail


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
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
    version: int | None = None,
    history: list[Entry] | None = None,
) -> Template:
    if errors is None:
        column = column_of(error.field) or "name" if error is not None else ""
        errors = {column: _worded(error.detail, column)} if error is not None and error.field else {}
    problem = None
    if isinstance(error, StaleVersion):
        problem = "Someone else changed this partner meanwhile; their version is shown below. Apply your change again."
    elif errors:
        count = len(errors)
        problem = f"The partner was not saved: fix the {count} field{'s' if count != 1 else ''} below."
    elif error is not None:
        problem = f"The partner was not saved: {error.detail}"
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
        "today": request.app.state.listings.today(),
        "labels": LABELS,
        "limits": LIMITS,
        "field_names": field_names,
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
