"""The referrals web app factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path

from jinja2 import Environment
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig

from services.referrals import bootstrap
from services.referrals.service import Clock, Referrals, system_clock
from services.referrals.storage import MIGRATIONS, outbox
from services.referrals.web import (
    admin,
    auth,
    client_pages,
    clients,
    emergency_stops,
    fhir,
    inbox,
    login,
    new_referral,
    pages,
    referrals,
    respond,
    scope,
)
from shared import access, bodies, geo, metrics, openapi, ops_metrics, phones, ratelimit, telemetry, templating, web
from shared.config import Settings
from shared.csrf import csrf

TEMPLATES = Path(__file__).parent.parent / "templates"
STATIC = Path(__file__).parent.parent / "static"
SIGN_IN_ROUTES = [("POST", "/login"), ("POST", "/api/v1/auth/token")]
# Every body this service takes (JSON referrals, the staff and partner forms) is a few KB; the
# new-referral form has a tighter limit of its own (referral_form.MAX_FORM_BYTES).
MAX_BODY_BYTES = 256 * 1024


def create_app(settings: Settings, *, clock: Clock = system_clock) -> Litestar:
    """Build the app; connections open in its lifespan, not here."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        runtime = bootstrap.build(settings, clock=clock)
        geo.warm()
        app.state.runtime = runtime
        app.state.engine = runtime.engine
        app.state.redis = runtime.redis
        app.state.revocations = runtime.revocations
        app.state.migrations = MIGRATIONS  # /ready answers 503 while the schema is behind
        app.state.ops_metrics = ops_metrics.OpsMetrics(
            service="referrals",
            engine=runtime.engine,
            outbox=outbox,
            redis=runtime.redis,
            installation=True,
            sweep_interval=settings.sweep_interval_seconds,
        ).register()
        relay = asyncio.create_task(runtime.relay.run(), name="outbox-relay")
        # What the process has made so far (modules, the app, the runtime) lives as long as it
        # does: kept out of the collector's way, a full collection walks what requests made
        # rather than some 300,000 objects (a 200 ms pause in the middle of a request).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            app.state.ops_metrics.unregister()
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await runtime.close()

    metrics_config, metrics_controller = metrics.endpoint("referrals", settings)
    sign_in = ratelimit.sign_in(settings.login_rate_limit)
    limits = ratelimit.RateLimits(settings.redis_url, dict.fromkeys(SIGN_IN_ROUTES, sign_in))
    state = web.initial_state(settings)
    # CSRF on every form (staff pages, partner pages, login). The API uses bearer tokens that
    # browsers never attach by themselves, so it needs no CSRF token.
    forms = csrf(state.keyring, exclude=["/api/", "/health", "/ready", "/metrics"])
    return Litestar(
        route_handlers=[
            *web.ops_handlers,
            ops_metrics.refreshing(metrics_controller),
            auth.issue_token,
            scope.list_reasons,
            referrals.ReferralController,
            clients.ClientController,
            fhir.FhirController,
            respond.RespondController,
            respond.ReportController,
            inbox.InboxController,
            login.LoginController,
            new_referral.NewReferralFlow,
            pages.StaffPages,
            client_pages.ClientPages,
            admin.StaffAdmin,
            inbox.InboxAdmin,
            emergency_stops.EmergencyStops,
            # Scripts are files, never inline, so the Content-Security-Policy can forbid inline ones.
            create_static_files_router(path="/static", directories=[STATIC], include_in_schema=False),
            *templating.routes(),
        ],
        lifespan=[lifespan, limits.lifespan],
        guards=[limits.guard, web.whole_numbers],
        dependencies={"referrals": Provide(_referrals, sync_to_thread=False)},
        state=state,
        before_send=[web.security_headers(settings)],
        # Traces outermost, so that the access log line carries the request's trace id.
        middleware=[*telemetry.middleware(), access.middleware, metrics_config.middleware, forms],
        exception_handlers=web.exception_handlers,
        # Bodies that cannot be read are the caller's 400, never a 500 (see shared.bodies).
        request_class=bodies.Request,
        request_max_body_size=MAX_BODY_BYTES,
        template_config=TemplateConfig(
            directory=TEMPLATES,
            engine=JinjaTemplateEngine,
            engine_callback=lambda engine: _templates(engine.engine, settings),
        ),
        openapi_config=openapi.config("Handoff referrals"),
        debug=False,
        # Logging stays as the process set it up (HANDOFF_LOG_LEVEL); Litestar's default would
        # put the root logger back to INFO.
        logging_config=LoggingConfig(configure_root_logger=False),
    )


def _referrals(state: State) -> Referrals:
    return state.runtime.referrals


def _templates(environment: Environment, settings: Settings) -> None:
    """The shared staff layout, navigation and clinic-time filters, and phone numbers as people
    read them (``| phone``)."""
    templating.configure(environment, settings, service="referrals")
    environment.filters.update(phone=phones.for_people)
