"""``/api/v1/partners``: public search and read; admin create, change and archive."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from litestar import Controller, Request, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from services.directory.domain import InvalidPartner
from services.directory.service import MAX_PAGE_SIZE, PartnerService
from services.directory.web.schemas import ArchiveIn, PartnerIn, PartnerList, PartnerOut, PartnerPatch
from shared.web import authenticate, requires

admin_only = requires("admin")


def viewer_is_admin(request: Request) -> bool:
    """Whether an admin is asking. Anonymous callers are welcome on public routes, but a token
    that was sent must be valid (401 otherwise), so a typo never silently hides data."""
    if "authorization" not in request.headers:
        return False
    return authenticate(request).role == "admin"


class PartnerController(Controller):
    path = "/api/v1/partners"
    tags = ["partners"]

    @get("/", summary="Search listed, active partners")
    async def search(
        self,
        request: Request,
        directory: NamedDependency[PartnerService],
        category: Annotated[str | None, QueryParameter(description="a category slug")] = None,
        q: Annotated[str | None, QueryParameter(description="part of the partner's name", max_length=200)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE_SIZE)] = 20,
        cursor: Annotated[str | None, QueryParameter(description="`next_cursor` of the previous page")] = None,
    ) -> PartnerList:
        page = await directory.list(category=category, q=q, limit=limit, offset=decode_cursor(cursor))
        show_email = viewer_is_admin(request)
        return PartnerList(
            items=[PartnerOut.from_domain(p, show_email=show_email) for p in page.partners],
            next_cursor=None if page.next_offset is None else encode_cursor(page.next_offset),
        )

    @get("/{partner_id:str}", summary="One partner (admins also see unlisted and inactive ones)")
    async def read(
        self, request: Request, directory: NamedDependency[PartnerService], partner_id: FromPath[str]
    ) -> PartnerOut:
        admin = viewer_is_admin(request)
        partner = await directory.get(partner_id=partner_id, include_hidden=admin)
        return PartnerOut.from_domain(partner, show_email=admin)

    @post("/", guards=[admin_only], status_code=HTTP_201_CREATED, summary="Add a partner")
    async def create(self, directory: NamedDependency[PartnerService], data: JSONBody[PartnerIn]) -> PartnerOut:
        partner = await directory.create(details=data.to_domain(), status=data.status)
        return PartnerOut.from_domain(partner, show_email=True)

    @patch("/{partner_id:str}", guards=[admin_only], summary="Change a partner seen at `version`")
    async def update(
        self, directory: NamedDependency[PartnerService], partner_id: FromPath[str], data: JSONBody[PartnerPatch]
    ) -> PartnerOut:
        partner = await directory.update(
            partner_id=partner_id, version=data.version, changes=data.changes(), status=data.new_status()
        )
        return PartnerOut.from_domain(partner, show_email=True)

    @post("/{partner_id:str}/archive", guards=[admin_only], status_code=HTTP_200_OK, summary="Archive a partner")
    async def archive(
        self,
        directory: NamedDependency[PartnerService],
        partner_id: FromPath[str],
        data: JSONBody[ArchiveIn | None] = None,
    ) -> PartnerOut:
        partner = await directory.archive(partner_id=partner_id, version=data.version if data else None)
        return PartnerOut.from_domain(partner, show_email=True)


# The cursor is opaque to clients so that it can become a keyset cursor without an API change.
def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().partition(":")
        if kind == "o" and value.isdigit():
            return int(value)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        pass
    raise InvalidPartner("cursor is not one this service handed out", field="cursor")
