"""The application factory: settings, database, middleware, the error handler, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute

from backend import __version__
from backend.api import mount_routers
from backend.auth.api_keys import ApiKeyUsageBuffer
from backend.core.config import Settings, get_settings
from backend.core.db import create_app_engine, create_session_factory
from backend.core.errors import install_error_handlers
from backend.core.middleware import RequestIdMiddleware
from backend.core.migrations import upgrade_to_head
from backend.mcp_server import mount_mcp
from backend.observability.metric_writer import MetricWriter, register_metric_writer
from backend.observability.middleware import RequestMetricsMiddleware
from backend.openapi import install_openapi
from backend.web import mount_web

logger = logging.getLogger("nlsql")


def _operation_id(route: APIRoute) -> str:
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database_url = str(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.run_migrations_on_start:
            upgrade_to_head(database_url)
        app.state.metric_writer.start()
        async with mcp_lifespan():
            yield
        app.state.api_key_usage.flush(app.state.engine)
        app.state.metric_writer.stop()
        app.state.engine.dispose()

    app = FastAPI(
        title="nlsql",
        version=__version__,
        summary="Ask questions of your own databases in plain language.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
        # Served by backend.web.docs from vendored assets instead of FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = create_app_engine(database_url)
    app.state.session_factory = create_session_factory(app.state.engine)
    app.state.api_key_usage = ApiKeyUsageBuffer()
    app.state.metric_writer = MetricWriter(app.state.session_factory)
    register_metric_writer(app.state.engine, app.state.metric_writer)

    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "Retry-After"],
        )
    app.add_middleware(RequestIdMiddleware)
    if settings.record_request_metrics:
        app.add_middleware(RequestMetricsMiddleware, writer=app.state.metric_writer)
    mount_routers(app)
    mcp_lifespan = mount_mcp(app)
    mount_web(app)
    install_openapi(app)
    return app
