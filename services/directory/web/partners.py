"""``/api/v1/partners``: public search and read; admin create, change, archive, CSV import and
export."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.response.base import ASGIResponse
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from services.directory import csv_io
from services.directory.fields import Accepting, InvalidPartner
from services.directory.search import MAX_RADIUS_KM
from services.directory.service import MAX_PAGE_SIZE, PartnerService
from services.directory.web.filters import partner_query
from services.directory.web.page_cache import cached, raw_query
from services.directory.web.schemas import ArchiveIn, ImportOut, PartnerIn, PartnerList, PartnerOut, PartnerPatch
from shared.errors import InvalidInput
from shared.openapi import STAFF, STAFF_OPTIONAL, RateLimited, errors
from shared.web import StaffCheckUnavailable, authenticate, requires

admin_only = requires("admin")
_json = msgspec.json.Encoder()


async def viewer_is_admin(request: Request) -> bool:
    """Whether an admin is asking. Anonymous callers are welcome on public routes, but a token
    that was sent must be valid (401 otherwise), so a typo never silently hides data. While
    tokens cannot be checked (Redis away), everyone gets the public answer."""
    if "authorization" not in request.headers:
        return False
    try:
        return (await authenticate(request)).role == "admin"
    except StaffCheckUnavailable:
        return False


@dataclass
class CsvUpload(Operation):
    """The import's request body, which the handler reads itself (see :func:`uploaded_text`)."""

    def __post_init__(self) -> None:
        text = Schema(type=OpenAPIType.STRING, description="CSV with the export's header row")
        form = Schema(
            type=OpenAPIType.OBJECT,
            required=["file"],
            properties={
                "file": Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY, description="the CSV file"),
            },
        )
        self.request_body = RequestBody(
            required=True,
            content={
                "text/csv": OpenAPIMediaType(schema=text),
                "multipart/form-data": OpenAPIMediaType(schema=form),
            },
        )


class PartnerController(Controller):
    path = "/api/v1/partners"
    tags = ["partners"]

    @get(
        "/",
        summary="Search listed, active partners",
        description="Anonymous answers carry an ETag and are cached until a partner changes. Anonymous "
        "searches are rate-limited per client.",
        responses={
            200: ResponseSpec(data_container=PartnerList, description="A page of partners", generate_examples=False),
            304: ResponseSpec(
                data_container=None,
                description="Unchanged since the ETag sent in If-None-Match",
                generate_examples=False,
            ),
            **errors(400, 401, 429, 503),
        },
        operation_class=RateLimited,
        security=STAFF_OPTIONAL,
    )
    async def search(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        category: Annotated[str | None, QueryParameter(description="a category slug")] = None,
        q: Annotated[
            str | None, QueryParameter(description="words in the name, practice, specialties or city", max_length=200)
        ] = None,
        near: Annotated[str | None, QueryParameter(description="`lat,lon`: nearest first, with `distance_km`")] = None,
        zip: Annotated[str | None, QueryParameter(description="a US ZIP code, instead of `near`")] = None,
        radius_km: Annotated[
            float | None, QueryParameter(gt=0, le=MAX_RADIUS_KM, description="with `near`/`zip`; default 50")
        ] = None,
        accepting: Annotated[Accepting | None, QueryParameter(description="accepting new clients")] = None,
        language: Annotated[str | None, QueryParameter(description="a language spoken", max_length=40)] = None,
        telehealth: Annotated[bool | None, QueryParameter(description="offers telehealth")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = 20,
        cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page")] = None,
    ) -> ASGIResponse:
        query = partner_query(
            category=category,
            q=q,
            near=near,
            zip=zip,
            radius_km=radius_km,
            accepting=accepting,
            language=language,
            telehealth=telehealth,
        )
        show_email = await viewer_is_admin(request)

        async def found() -> PartnerList:
            page = await directory.search(query, limit=limit, cursor=cursor)
            return PartnerList(
                items=[
                    PartnerOut.from_domain(hit.partner, show_email=show_email, distance_km=hit.distance_km)
                    for hit in page.hits
                ],
                next_cursor=page.next_cursor,
            )

        if show_email:  # an admin's answer holds referral emails: never cached
            return ASGIResponse(body=_json.encode(await found()), media_type="application/json")

        async def render() -> tuple[bytes, int]:
            return _json.encode(await found()), 200

        key = f"/api/v1/partners?{raw_query(request)}"
        # Searches are kept apart from the pages: thousands of them must not push the pages out.
        cache = request.app.state.search_cache
        return await cached(request, directory.catalogue_revision, key, render, "application/json", cache=cache)

    @get(
        "/export",
        guards=[admin_only],
        security=STAFF,
        summary="Every partner as CSV (the import's columns)",
        media_type="text/csv",
        responses=errors(401, 403, 503),
    )
    async def export(self, directory: NamedDependency[PartnerService]) -> Stream:
        return Stream(
            csv_io.write_csv(directory.every_partner()),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="partners.csv"'},
        )

    @post(
        "/import",
        guards=[admin_only],
        security=STAFF,
        status_code=HTTP_200_OK,
        summary="Create or update partners from a CSV file (the body, or a multipart `file` field)",
        description="Rows are matched on NPI, else name + postal code, so importing a file twice "
        "stores it once. A file with any bad row imports nothing (422 listing every bad row by "
        "line, column and reason: the first 100, and how many more) unless `skip_invalid=true`.",
        responses=errors(400, 401, 403, 413, 422, 503),
        operation_class=CsvUpload,
        request_max_body_size=csv_io.MAX_FILE_BYTES,
    )
    async def import_csv(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        skip_invalid: Annotated[bool, QueryParameter(description="import the good rows anyway")] = False,
    ) -> Response[ImportOut]:
        text = await uploaded_text(request)
        report = await directory.import_rows(csv_io.read_rows(text), skip_invalid=skip_invalid)
        body = ImportOut.from_report(report)
        if report.rejected:
            # The shared error body (422, naming the file), carrying the whole report.
            raise InvalidInput(
                f"{report.error_count} row(s) cannot be imported; nothing was imported",
                field="file",
                extra=msgspec.to_builtins(body),
            )
        return Response(body)

    @get(
        "/{partner_id:str}",
        summary="One partner (admins also see unlisted and inactive ones)",
        description="Anonymous reads are rate-limited per client, as searches are.",
        responses=errors(400, 401, 404, 429, 503),
        operation_class=RateLimited,
        security=STAFF_OPTIONAL,
    )
    async def read(
        self, request: Request, directory: NamedDependency[PartnerService], partner_id: FromPath[str]
    ) -> PartnerOut:
        admin = await viewer_is_admin(request)
        partner = await directory.get(partner_id=partner_id, include_hidden=admin)
        return PartnerOut.from_domain(partner, show_email=admin)

    @post(
        "/",
        guards=[admin_only],
        security=STAFF,
        status_code=HTTP_201_CREATED,
        summary="Add a partner",
        responses=errors(400, 401, 403, 409, 422, 503),
    )
    async def create(
        self, request: Request, directory: NamedDependency[PartnerService], data: JSONBody[PartnerIn]
    ) -> PartnerOut:
        partner = await directory.create(details=data.to_domain(), status=data.status, actor=_actor(request))
        return PartnerOut.from_domain(partner, show_email=True)

    @patch(
        "/{partner_id:str}",
        guards=[admin_only],
        security=STAFF,
        summary="Change a partner seen at `version`",
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    async def update(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        partner_id: FromPath[str],
        data: JSONBody[PartnerPatch],
    ) -> PartnerOut:
        partner = await directory.update(
            partner_id=partner_id,
            version=data.version,
            changes=data.changes(),
            status=data.new_status(),
            actor=_actor(request),
        )
        return PartnerOut.from_domain(partner, show_email=True)

    @post(
        "/{partner_id:str}/archive",
        guards=[admin_only],
        security=STAFF,
        status_code=HTTP_200_OK,
        summary="Archive a partner",
        responses=errors(400, 401, 403, 404, 409, 422, 503),
    )
    async def archive(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        partner_id: FromPath[str],
        data: JSONBody[ArchiveIn | None] = None,
    ) -> PartnerOut:
        partner = await directory.archive(
            partner_id=partner_id, version=data.version if data else None, actor=_actor(request)
        )
        return PartnerOut.from_domain(partner, show_email=True)


def _actor(request: Request) -> str:
    """Who is making a change, as the partner's history records it (the guard authenticated them)."""
    return f"admin:{getattr(request.scope.get('user'), 'email', '') or 'unknown'}"


async def uploaded_text(request: Request) -> str:
    """The CSV text of an import request: a multipart ``file`` field, or the whole body."""
    if request.content_type[0] == "multipart/form-data":
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidPartner("send the CSV file in a form field named file", field="file")
        raw = await upload.read()
    else:
        raw = await request.body()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidPartner(f"the file is not UTF-8 text (byte {exc.start})", field="file") from None
