"""Staff HTML pages for clients: find a client by name, date of birth or phone, and one client's
page (contact details, their referrals, their current massage clearance), from which a new
referral for them starts. Every view is audited (see :mod:`services.referrals.clients`)."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from services.referrals.contact import LANGUAGES, NEXT_STEPS, PREFERRED_CONTACT, display_phone
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page
from shared.errors import InvalidInput


class ClientPages(Controller):
    path = "/clients"
    guards = [staff("admin", "therapist")]
    include_in_schema = False

    @get("/")
    async def search(self, request: Request, referrals: NamedDependency[Referrals], q: FromQuery[str] = "") -> Template:
        q = " ".join(q.split())[:100]
        if not q:
            return page(request, "staff/clients.html", q=q, found=None, error="", **_words())
        try:
            found = await referrals.find_clients(staff=request.user, q=q)
        except InvalidInput as error:
            return page(request, "staff/clients.html", status_code=422, q=q, found=None, error=error.detail, **_words())
        return page(request, "staff/clients.html", q=q, found=found, error="", **_words())

    @get("/{client_id:str}")
    async def client(
        self, request: Request, referrals: NamedDependency[Referrals], client_id: FromPath[str]
    ) -> Template:
        detail = await referrals.client(staff=request.user, client_id=client_id)
        return page(request, "staff/client.html", client=detail, **_words())


def _words() -> dict:
    return {
        "languages": LANGUAGES,
        "preferred_contact": PREFERRED_CONTACT,
        "next_steps": NEXT_STEPS,
        "display_phone": display_phone,
    }
