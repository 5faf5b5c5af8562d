"""The one list of routers: everything under /api/v1, plus the health probes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from backend import health
from backend.templates import router as templates_router

API_PREFIX = "/api/v1"


def mount_routers(app: FastAPI) -> None:
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(templates_router.router)
    app.include_router(api)
    app.include_router(health.router)
