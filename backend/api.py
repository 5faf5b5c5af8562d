"""The one list of routers: everything under /api/v1, plus the health probes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from backend import health
from backend.connections.router import router as connections_router

API_PREFIX = "/api/v1"


def mount_routers(app: FastAPI) -> None:
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(connections_router)
    app.include_router(api)
    app.include_router(health.router)
