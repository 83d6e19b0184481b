"""Staff JSON API for clients: add one, find one by name, date of birth or phone, read one with
their referrals and current clearance. Every view is audited (see :mod:`services.referrals.clients`)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter

from services.referrals.intake import NewClient
from services.referrals.records import ClientDetail, ClientRecord
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from shared.openapi import STAFF, errors


class ClientController(Controller):
    path = "/api/v1/clients"
    guards = [staff("admin", "therapist")]
    security = STAFF
    tags = ["clients"]

    @post(
        "/",
        status_code=201,
        summary="Add a client (always a new record: clients are never matched by name)",
        responses=errors(400, 401, 403, 422, 503),
    )
    async def create(
        self, request: Request, referrals: NamedDependency[Referrals], data: JSONBody[NewClient]
    ) -> ClientRecord:
        return await referrals.add_client(staff=request.user, details=data)

    @get("/", summary="Find clients by name, date of birth or phone", responses=errors(400, 401, 403, 422, 503))
    async def search(
        self,
        request: Request,
        referrals: NamedDependency[Referrals],
        q: Annotated[
            str,
            QueryParameter(
                description="every word of a name, a date of birth (1961-03-14 or 03/14/1961) or part of a phone number"
            ),
        ],
    ) -> list[ClientRecord]:
        return await referrals.find_clients(staff=request.user, q=q)

    @get(
        "/{client_id:str}",
        summary="One client with their referrals and current massage clearance",
        responses=errors(400, 401, 403, 404, 503),
    )
    async def get_client(
        self, request: Request, referrals: NamedDependency[Referrals], client_id: FromPath[str]
    ) -> ClientDetail:
        return await referrals.client(staff=request.user, client_id=client_id)
