"""What both services' Jinja environments share, so their staff pages are one product: the
shared templates (``shared/web_templates``: the staff layout, the error page) behind each
service's own, the navigation (:mod:`shared.navigation`), the clinic's name, logo and colour,
the clinic-time filters (:mod:`shared.clinic_time`), and the routes serving the shared stylesheet
(``/assets/handoff.css``) and the favicon (``/favicon.ico``)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from jinja2 import BaseLoader, ChoiceLoader, Environment, FileSystemLoader
from litestar import get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from shared import clinic_time
from shared.config import Settings
from shared.navigation import Service, staff_links

TEMPLATES = Path(__file__).with_name("web_templates")
STATIC = Path(__file__).with_name("web_static")
ASSETS_PATH = "/assets"
# Handoff's blue: white text on it has a contrast of 6.6:1.
DEFAULT_ACCENT = "#0b5cad"


@dataclass(frozen=True)
class Clinic:
    """The clinic as pages show it (``HANDOFF_CLINIC_NAME``, ``_LOGO_URL``, ``_ACCENT_COLOR``)."""

    name: str
    logo_url: str
    accent: str


def clinic(settings: Settings) -> Clinic:
    return Clinic(settings.clinic_name, settings.clinic_logo_url, settings.clinic_accent_color or DEFAULT_ACCENT)


def configure(environment: Environment, settings: Settings, *, service: Service) -> None:
    """Set up one web service's environment: its own templates first, then the shared ones; the
    globals every page may use (``clinic``, ``staff_nav``, ``logout_url``) and the filters."""
    own: BaseLoader | None = environment.loader
    shared = FileSystemLoader(TEMPLATES)
    environment.loader = ChoiceLoader([own, shared]) if own is not None else shared
    environment.globals.update(
        clinic=clinic(settings),
        staff_nav=functools.partial(staff_links, settings, here=service),
        # Staff log in and out on referrals, which holds the accounts.
        logout_url=f"{settings.public_url('referrals')}/logout",
    )
    environment.filters.update(clinic_time.jinja_filters(settings.clinic_timezone))


@get("/favicon.ico", include_in_schema=False, sync_to_thread=False, cache_control=CacheControlHeader(max_age=86400))
def favicon() -> File:
    """The clinic's tab icon, for browsers that ask for it whatever the page says."""
    return File(STATIC / "favicon.ico", content_disposition_type="inline", media_type="image/x-icon")


def routes() -> list[ControllerRouterHandler]:
    """The shared stylesheet and icons under ``/assets``, and ``/favicon.ico``."""
    return [
        create_static_files_router(path=ASSETS_PATH, directories=[STATIC], include_in_schema=False),
        favicon,
    ]
