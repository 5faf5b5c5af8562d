"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from backend import __version__
from backend.core.errors import ErrorResponse, ServiceUnavailable
from backend.core.migrations import current_revision, head_revision
from backend.core.schemas import AppSchema

router = APIRouter(tags=["health"])


class Health(AppSchema):
    status: str
    version: str


class Readiness(Health):
    database: str
    revision: str | None


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> Health:
    return Health(status="ok", version=__version__)


@router.get(
    "/readyz",
    summary="Readiness: the platform database answers and is at the head revision",
    responses={503: {"model": ErrorResponse}},
)
def readyz(request: Request) -> Readiness:
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
