"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ConfigDict
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend import __version__
from backend.core.errors import ErrorResponse, ServiceUnavailable
from backend.core.migrations import current_revision, head_revision
from backend.core.schemas import AppSchema

router = APIRouter(tags=["health"])


class Health(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"status": "ok", "version": "0.1.0"}]}
    )

    status: str
    version: str


class Readiness(Health):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "ok", "version": "0.1.0", "database": "ok", "revision": "b4187cff43f1"}
            ]
        }
    )

    database: str
    revision: str | None


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
def readyz(request: Request) -> Readiness:
    """Answers 200 when the platform database answers and its schema is at the newest migration, 503
    otherwise. For readiness probes.
    """
    engine = request.app.state.engine
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        raise ServiceUnavailable(
            "The platform database is not reachable.", details={"reason": type(exc).__name__}
        ) from exc
    if revision != head_revision():
        raise ServiceUnavailable(
            "The platform database is not at the head revision; run `nlsql migrate`.",
            details={"revision": revision, "head": head_revision()},
        )
    return Readiness(status="ok", version=__version__, database="ok", revision=revision)
