"""The staff navigation both services' pages share: one list of links, built from the services'
public URLs (``HANDOFF_REFERRALS_URL``, ``HANDOFF_DIRECTORY_URL``) and the signed-in staff
member's role, so that the two services read as one product.

Plain Python (no web framework): :mod:`shared.templating` hands it to the templates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.auth import Role
from shared.config import Settings

Service = Literal["directory", "referrals"]


@dataclass(frozen=True)
class NavLink:
    label: str
    service: Service
    path: str
    # Roles that see the link; empty: every staff member.
    roles: tuple[Role, ...] = ()


# In the order the header shows them.
LINKS: tuple[NavLink, ...] = (
    NavLink("Referrals", "referrals", "/"),
    NavLink("New referral", "referrals", "/referrals/new"),
    NavLink("Clients", "referrals", "/clients"),
    NavLink("Partners", "directory", "/admin/partners", roles=("admin",)),
    NavLink("Import/Export", "directory", "/admin/partners/import", roles=("admin",)),
    NavLink("Staff", "referrals", "/admin/staff", roles=("admin",)),
    NavLink("Partner inboxes", "referrals", "/admin/inbox", roles=("admin",)),
    NavLink("Public page", "directory", "/partners-in-health"),
)


@dataclass(frozen=True)
class ShownLink:
    label: str
    url: str
    # This page is the link's page (aria-current="page").
    current: bool


def staff_links(settings: Settings, *, role: Role | None, here: Service, path: str) -> list[ShownLink]:
    """The links ``role`` sees, as absolute URLs (the two services may be on different hosts),
    the one for the page at ``path`` of service ``here`` marked current. No role (nobody signed
    in): no links."""
    if role is None:
        return []
    visible = [link for link in LINKS if not link.roles or role in link.roles]
    matching = [link for link in visible if link.service == here and _is_under(path, link.path)]
    # The longest matching path is the page's own link ("/admin/partners/import", not "/admin/partners").
    own = max(matching, key=lambda link: len(link.path), default=None)
    return [ShownLink(link.label, f"{settings.public_url(link.service)}{link.path}", link is own) for link in visible]


def _is_under(path: str, prefix: str) -> bool:
    if prefix == "/":
        return path == "/"
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")
