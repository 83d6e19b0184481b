"""The directory's composition root: ``create_app(settings)`` wires the web app (its state starts
with the settings and the staff-token key); its lifespan opens the database engine and Redis
client and runs the outbox relay. Nothing connects at import time,
and the app never migrates its database (``handoff db upgrade`` does)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template import TemplateConfig
from redis import Redis

from services.directory import storage
from services.directory.service import PartnerService
from services.directory.web.categories import list_categories
from services.directory.web.pages import PartnersInHealthController
from services.directory.web.partners import PartnerController
from shared import database, web
from shared.config import Settings
from shared.outbox import Relay

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def create_app(settings: Settings) -> Litestar:
    metrics_config, metrics_controller = web.metrics("directory")
    return Litestar(
        route_handlers=[
            *web.ops_handlers,
            metrics_controller,
            PartnerController,
            list_categories,
            PartnersInHealthController,
        ],
        lifespan=[_resources(settings)],
        dependencies={"directory": Provide(_directory, sync_to_thread=False)},
        middleware=[metrics_config.middleware],
        exception_handlers=web.exception_handlers,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        openapi_config=OpenAPIConfig(title="Handoff directory", version="1.0.0", path="/schema"),
        state=web.initial_state(settings),
        debug=False,
    )


def _resources(settings: Settings) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = database.create_engine(settings.db_url("directory"))
        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2, health_check_interval=10)
        sessions = database.sessions(engine)
        relay = Relay(
            sessions=sessions, table=storage.outbox, redis=redis, interval=settings.relay_interval_seconds
        )
        app.state.engine = engine
        app.state.redis = redis
        app.state.relay = relay
        app.state.directory = PartnerService(sessions=sessions, nudge=relay.nudge)
        relay_task = asyncio.create_task(relay.run(), name="directory-outbox-relay")
        try:
            yield
        finally:
            relay_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay_task
            redis.close()
            await engine.dispose()

    return lifespan


def _directory(state: State) -> PartnerService:
    return state.directory
