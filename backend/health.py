"""Liveness and readiness probes."""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from pydantic import ConfigDict
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.exc import SQLAlchemyError

from backend import __version__
from backend.core.errors import ErrorResponse, ServiceUnavailable
from backend.core.migrations import head_revision, stored_revision
from backend.core.schemas import AppSchema
from backend.jobs import queue
from backend.jobs.models import BackgroundJob

router = APIRouter(tags=["health"])


class Health(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "version": "0.1.0"}]}
    )

    status: str
    version: str


class QueueState(AppSchema):
    backend: str
    """`postgres` (procrastinate's tables, run by `nlsql worker`) or `memory` (in-process)."""
    queued: int
    """Jobs waiting for a worker."""
    workers: int | None = None
    """Workers that sent a heartbeat recently (PostgreSQL queue only)."""


class Readiness(Health):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ok",
                    "version": "0.1.0",
                    "database": "ok",
                    "revision": "hops0001jobs",
                    "queue": {"backend": "postgres", "queued": 0, "workers": 2},
                }
            ]
        }
    )

    database: str
    revision: str | None
    queue: QueueState | None = None


@router.get(
    "/healthz",
    summary="Liveness: the process answers",
    responses={500: {"model": ErrorResponse, "description": "The process is broken"}},
)
def healthz() -> Health:
    """Answers 200 while the process runs; it does not touch the database. For liveness probes."""
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    summary="Readiness: the platform database answers and is at the head revision",
    responses={503: {"model": ErrorResponse}},
)
async def readyz(request: Request) -> Readiness:
    """Answers 200 when the platform database answers and its schema is at the newest migration, 503
    otherwise; reports the job queue (jobs waiting, live workers). For readiness probes. It uses a
    connection of its own, not the request pool, and a thread of its own, not the pool that sync
    endpoints share, so a process busy with slow work is not "not ready".
    """
    engine = request.app.state.health_engine
    in_memory = queue.is_in_memory(request.app.state.queue)
    stalled_seconds = request.app.state.settings.jobs_stalled_seconds
    head = app_head_revision(request)
    try:
        revision, queue_state = await anyio.to_thread.run_sync(
            _probe, engine, head, in_memory, stalled_seconds, limiter=_probe_limiter(request)
        )
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            "The platform database is not reachable.", details={"reason": type(exc).__name__}
        ) from exc
    if revision != head:
        raise ServiceUnavailable(
            "The platform database is not at the head revision; run `nlsql migrate`.",
            details={"revision": revision, "head": head},
        )
    return Readiness(
        status="ok", version=__version__, database="ok", revision=revision, queue=queue_state
    )


def app_head_revision(request: Request) -> str:
    """The code's newest migration, read from the Alembic script directory once per process
    (the scripts ship with the code and do not change while it runs)."""
    head: str | None = getattr(request.app.state, "head_revision", None)
    if head is None:
        head = request.app.state.head_revision = head_revision()
    return head


def _probe_limiter(request: Request) -> anyio.CapacityLimiter:
    """The probes' own thread allowance, apart from the one sync endpoints share."""
    limiter = getattr(request.app.state, "probe_limiter", None)
    if limiter is None:
        limiter = request.app.state.probe_limiter = anyio.CapacityLimiter(4)
    return limiter


def _probe(
    engine: Engine, head: str, in_memory: bool, stalled_seconds: float
) -> tuple[str | None, QueueState | None]:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        revision = stored_revision(conn)
        if revision != head:
            return revision, None
        return revision, _queue_state(conn, in_memory, stalled_seconds)


def _queue_state(conn: Connection, in_memory: bool, stalled_seconds: float) -> QueueState:
    if in_memory:
        waiting = conn.scalar(
            select(func.count())
            .select_from(BackgroundJob)
            .where(BackgroundJob.status == "queued", BackgroundJob.queue == "memory")
        )
        return QueueState(backend="memory", queued=int(waiting or 0))
    schema = queue.QUEUE_SCHEMA
    waiting = conn.scalar(
        text(f"SELECT count(*) FROM {schema}.procrastinate_jobs WHERE status = 'todo'")  # noqa: S608
    )
    alive = conn.scalar(
        text(
            f"SELECT count(*) FROM {schema}.procrastinate_workers "  # noqa: S608
            "WHERE last_heartbeat > now() - make_interval(secs => :stalled)"
        ),
        {"stalled": stalled_seconds},
    )
    return QueueState(backend="postgres", queued=int(waiting or 0), workers=int(alive or 0))
