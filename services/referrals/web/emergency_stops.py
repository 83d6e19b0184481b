"""The admins' list of emergency stops (``/admin/emergency-stops``): each time the rules stopped a
referral for an emergency and the therapist was told to call now. Viewing it is audited."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.response import Template

from services.referrals.scoping import STOPS_SHOWN
from services.referrals.service import Referrals
from services.referrals.web.guards import staff
from services.referrals.web.rendering import page


class EmergencyStops(Controller):
    path = "/admin/emergency-stops"
    guards = [staff("admin")]
    include_in_schema = False

    @get("/")
    async def stops(self, request: Request, referrals: NamedDependency[Referrals]) -> Template:
        stops = await referrals.emergency_stops(staff=request.user)
        return page(request, "staff/emergency_stops.html", stops=stops, limit=STOPS_SHOWN)
