"""The directory's web app factory: ``create_app(settings)`` wires the web app (its state starts
with the settings and the staff-token key); its lifespan builds the runtime
(:mod:`services.directory.bootstrap`: database engines, the Redis client, which also tells which
staff tokens the referrals service revoked, and the partner service) and runs the outbox relay.
Nothing connects at import time, and the app never migrates its database (``handoff db
upgrade`` does)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import cast

from litestar import Litestar, Request
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig
from litestar.types import HTTPScope, LifeSpanReceive, LifeSpanScope, LifeSpanSend, Receive, Scope, Send

from services.directory import bootstrap, storage
from services.directory.fields import display_phone
from services.directory.search import InvalidSearch
from services.directory.service import PartnerService
from services.directory.web.admin import AdminController
from services.directory.web.categories import list_categories
from services.directory.web.fhir import ROUTES as FHIR_ROUTES
from services.directory.web.fhir import FhirController
from services.directory.web.filters import bad_search
from services.directory.web.hsds import ROUTES as HSDS_ROUTES
from services.directory.web.hsds import HsdsController
from services.directory.web.manage import MANAGE_LINK_ROUTE, ManageController, per_address, request_manage_link
from services.directory.web.page_cache import Front, PageCache, front
from services.directory.web.pages import PartnersInHealthController, early_key
from services.directory.web.partners import PartnerController
from shared import access, bodies, geo, metrics, openapi, ops_metrics, ratelimit, telemetry, templating, web
from shared.config import Settings
from shared.csrf import csrf

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


# Anonymous public search: the API, the standards APIs (HSDS, FHIR) and the public page when it is
# searched or filtered. The plain page and each partner's page are cached and cheaper to serve than
# to count (see shared.ratelimit.with_query).
SEARCH_ROUTES = [
    ("GET", "/api/v1/partners"),
    ("GET", "/api/v1/partners/{partner_id}"),
    *HSDS_ROUTES,
    *FHIR_ROUTES,
]
SEARCH_PAGE = ("GET", "/partners-in-health")
# A partner (as JSON or the admin's form) is a few KB; only the CSV imports take more (their
# routes say how much: csv_io.MAX_FILE_BYTES).
MAX_BODY_BYTES = 256 * 1024


def create_app(settings: Settings) -> Litestar:
    metrics_config, metrics_controller = metrics.endpoint("directory", settings)
    search = ratelimit.anonymous_search(settings.search_rate_limit)
    limits = ratelimit.RateLimits(
        settings.redis_url,
        {
            **dict.fromkeys(SEARCH_ROUTES, search),
            SEARCH_PAGE: ratelimit.with_query(search),
            MANAGE_LINK_ROUTE: per_address(),
        },
    )
    state = _initial_state(settings, count_miss=functools.partial(limits.enforce, rule=search))
    # Admin forms ride on the staff cookie: CSRF on every form. The API takes bearer tokens
    # (never sent by a browser on its own) and the public pages only GET, so both are left
    # out; a CSRF cookie on public pages would also keep shared caches from storing them.
    forms = csrf(state.keyring, exclude=["/api/", "/partners-in-health", "/health", "/ready", "/metrics", "/schema"])
    app = DirectoryApp(
        route_handlers=[
            *web.ops_handlers,
            ops_metrics.refreshing(metrics_controller),
            PartnerController,
            list_categories,
            PartnersInHealthController,
            request_manage_link,
            ManageController,
            AdminController,
            HsdsController,
            FhirController,
            *templating.routes(),
        ],
        lifespan=[_resources(settings), limits.lifespan],
        guards=[limits.guard, web.whole_numbers],
        dependencies={"directory": Provide(_directory, sync_to_thread=False)},
        # Traces outermost, so that the access log line carries the request's trace id.
        middleware=[*telemetry.middleware(), access.middleware, metrics_config.middleware, forms],
        exception_handlers={**web.exception_handlers, InvalidSearch: bad_search},
        # Bodies that cannot be read are the caller's 400, never a 500 (see shared.bodies).
        request_class=bodies.Request,
        request_max_body_size=MAX_BODY_BYTES,
        template_config=TemplateConfig(
            directory=TEMPLATES,
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: _configure_templates(engine, settings),
        ),
        openapi_config=openapi.config("Handoff directory"),
        state=state,
        before_send=[web.security_headers(settings)],
        debug=False,
        # Logging stays as the process set it up (HANDOFF_LOG_LEVEL); Litestar's default would
        # put the root logger back to INFO.
        logging_config=LoggingConfig(configure_root_logger=False),
    )
    # With traces on, every request goes through the app, to be traced whole.
    if not telemetry.active():
        app.front = front(
            state.page_cache,
            key_of=early_key,
            trailer=web.encoded_security_headers(settings),
            count=metrics.counter(metrics_config),
        )
    return app


class DirectoryApp(Litestar):
    """The directory's app, which answers a kept public page before routing and middleware
    (``front``, see :func:`services.directory.web.page_cache.front`): the hottest requests of
    the service, at the cost of a static file."""

    front: Front | None = None

    async def __call__(
        self,
        scope: Scope | LifeSpanScope,
        receive: Receive | LifeSpanReceive,
        send: Send | LifeSpanSend,
    ) -> None:
        if (
            scope["type"] == "http"
            and self.front is not None
            and await self.front(cast(HTTPScope, scope), cast(Send, send))
        ):
            return
        await super().__call__(scope, receive, send)


def _configure_templates(engine: JinjaTemplateEngine, settings: Settings) -> None:
    templating.configure(engine.engine, settings, service="directory")
    engine.engine.filters.update(phone=display_phone)


def _resources(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        caches: tuple[PageCache, ...] = (app.state.page_cache, app.state.search_cache)

        def invalidate() -> None:
            for cache in caches:
                cache.invalidate()

        runtime = bootstrap.build(settings, on_commit=invalidate)
        geo.warm()
        app.state.engine = runtime.engine
        app.state.redis = runtime.redis
        app.state.migrations = storage.MIGRATIONS  # /ready answers 503 while the schema is behind
        app.state.revocations = runtime.revocations
        app.state.directory = runtime.directory
        app.state.listings = runtime.listings
        app.state.ops_metrics = ops_metrics.OpsMetrics(
            service="directory",
            engine=runtime.reads,
            outbox=storage.outbox,
            redis=runtime.redis,
            installation=False,
            sweep_interval=settings.sweep_interval_seconds,
        ).register()
        relay_task = asyncio.create_task(runtime.relay.run(), name="directory-outbox-relay")
        # As in referrals (services.referrals.web.app): what start-up made lives as long as the
        # process, so the collector's full passes leave it alone (the ZIP table alone is 42,000
        # entries) instead of pausing a request to walk it.
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            app.state.ops_metrics.unregister()
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            await runtime.close()

    return lifespan


def _initial_state(settings: Settings, *, count_miss: Callable[[Request], Awaitable[None]]) -> State:
    state = web.initial_state(settings)
    state.page_cache = PageCache()  # the public pages
    state.search_cache = PageCache()  # anonymous searches of the API
    # Counts a request for a partner page that does not exist as an anonymous search.
    state.count_miss = count_miss
    return state


def _directory(state: State) -> PartnerService:
    return state.directory
