"""The public Partners in Health pages (HTML). They show listed, active partners only and never a
partner's referral email: referrals go through Handoff, not a public address."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Template
from litestar.status_codes import HTTP_404_NOT_FOUND

from services.directory.domain import Partner, PartnerNotFound
from services.directory.service import PartnerService
from shared import categories


class PartnersInHealthController(Controller):
    path = "/partners-in-health"
    include_in_schema = False

    @get("/")
    async def index(self, request: Request, directory: NamedDependency[PartnerService]) -> Template:
        page = await directory.list(limit=None)
        return Template(
            "partners_in_health/index.html",
            context={"clinic_name": request.app.state.settings.clinic_name, "groups": by_category(page.partners)},
        )

    @get("/{slug:str}")
    async def detail(
        self, request: Request, directory: NamedDependency[PartnerService], slug: FromPath[str]
    ) -> Template:
        clinic_name = request.app.state.settings.clinic_name
        try:
            partner = await directory.get_by_slug(slug=slug)
        except PartnerNotFound:
            return Template(
                "partners_in_health/not_found.html",
                context={"clinic_name": clinic_name},
                status_code=HTTP_404_NOT_FOUND,
            )
        return Template(
            "partners_in_health/detail.html",
            context={
                "clinic_name": clinic_name,
                "partner": partner,
                "category_label": label_of(partner.details.category),
            },
        )


def by_category(partners: list[Partner]) -> list[tuple[str, list[Partner]]]:
    """``(category label, partners)`` in the vocabulary's order, empty categories left out."""
    vocabulary = categories.load()
    groups: dict[str, list[Partner]] = {slug: [] for slug in vocabulary}
    for partner in partners:
        groups.setdefault(partner.details.category, []).append(partner)
    return [(label_of(slug), members) for slug, members in groups.items() if members]


def label_of(slug: str) -> str:
    category = categories.load().get(slug)
    # A category dropped from the vocabulary still shows, under its slug, until edited.
    return category.label if category else slug
