"""The one list of routers: everything under /api/v1, plus the health probes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from backend import health

API_PREFIX = "/api/v1"


def mount_routers(app: FastAPI) -> None:
    api = APIRouter(prefix=API_PREFIX)
    app.include_router(api)
    app.include_router(health.router)
