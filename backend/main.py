"""The application factory: settings, database, middleware, the error handler, routers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.exc import SQLAlchemyError

from backend import __version__
from backend.admin.secrets import seal_sensitive_config
from backend.api import mount_routers, operation_id
from backend.auth.deps import credentials_refusal
from backend.core.config import Settings, get_settings
from backend.core.db import (
    SqliteCheckpointer,
    create_app_engine,
    create_health_engine,
    create_session_factory,
    sqlite_file_path,
)
from backend.core.errors import install_error_handlers
from backend.core.hygiene import InputHygieneMiddleware
from backend.core.middleware import RequestIdMiddleware
from backend.core.migrations import ensure_at_head, head_revision, upgrade_to_head
from backend.jobs.queue import JobRuntime
from backend.jobs.service import build_app_for
from backend.jobs.worker import run_jobs
from backend.mcp_server import mount_mcp
from backend.nl2sql.engines.http import close_clients as close_llm_clients
from backend.nl2sql.engines.http import warm_clients as warm_llm_clients
from backend.observability.metric_writer import MetricWriter, register_metric_writer
from backend.observability.middleware import RequestMetricsMiddleware
from backend.openapi import install_openapi
from backend.web import mount_web

logger = logging.getLogger("nlsql")


def _seal_sensitive_config(app: FastAPI, settings: Settings) -> None:
    """Seal sensitive config values written in clear (before sealing existed)."""
    try:
        with app.state.session_factory() as session:
            report = seal_sensitive_config(session, settings)
            session.commit()
    except SQLAlchemyError as exc:  # not migrated yet: `nlsql migrate` then a restart seals
        logger.warning("could not seal sensitive system config: %s", exc)
        return
    if report.sealed:
        logger.info("sealed %d sensitive system config values", report.sealed)
    if report.unreadable:
        logger.error(
            "system config %s cannot be decrypted with the configured Fernet keys",
            ", ".join(report.unreadable),
        )


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    database_url = str(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.run_migrations_on_start:
            upgrade_to_head(database_url)
        elif settings.production:
            ensure_at_head(app.state.engine)
        _seal_sensitive_config(app, settings)
        app.state.metric_writer.start()
        if checkpointer is not None:
            checkpointer.start()
        await warm_llm_clients()
        async with mcp_lifespan(), run_jobs(app.state.queue, app.state.job_runtime):
            yield
        app.state.metric_writer.stop()
        if checkpointer is not None:
            checkpointer.stop()
        await close_llm_clients()
        app.state.engine.dispose()
        app.state.health_engine.dispose()

    app = FastAPI(
        title="nlsql",
        version=__version__,
        summary="Ask questions of your own databases in plain language.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # Served by backend.web.docs from vendored assets instead of FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = create_app_engine(
        database_url, lock_timeout_seconds=settings.platform_lock_timeout_seconds
    )
    app.state.session_factory = create_session_factory(app.state.engine)
    # An SQLite file's write-ahead log is checkpointed off the requests' write transactions.
    checkpointer = SqliteCheckpointer(app.state.engine) if sqlite_file_path(database_url) else None
    app.state.sqlite_checkpointer = checkpointer
    # Readiness probes get connections of their own: a pool busy with slow asks is alive.
    in_memory = ":memory:" in database_url or database_url in ("sqlite://", "sqlite:///")
    app.state.health_engine = app.state.engine if in_memory else create_health_engine(database_url)
    # Read once: `/readyz` compares the database's revision with it on every probe.
    app.state.head_revision = head_revision()
    app.state.metric_writer = MetricWriter(app.state.session_factory)
    app.state.job_runtime = JobRuntime(settings, app.state.engine, app.state.session_factory)
    app.state.queue = build_app_for(app.state.job_runtime)
    register_metric_writer(app.state.engine, app.state.metric_writer)

    install_error_handlers(app)
    app.state.credentials_check = credentials_refusal
    app.add_middleware(InputHygieneMiddleware, max_body_bytes=settings.max_request_body_bytes)
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
