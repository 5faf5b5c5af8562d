"""The one list of routers: everything under /api/v1, plus the health probes."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from backend import health
from backend.admin import router as admin_router
from backend.admin import users_router as admin_users_router
from backend.auth import router as auth_router
from backend.chat import router as chat_router
from backend.connections import router as connections_router
from backend.evaluations import router as evaluations_router
from backend.feedback import router as feedback_router
from backend.jobs import router as jobs_router
from backend.nl2sql import router as nl2sql_router
from backend.observability import router as observability_router
from backend.semantic import router as semantic_router
from backend.templates import router as templates_router

API_PREFIX = "/api/v1"


def mount_routers(app: FastAPI) -> None:
    api = APIRouter(prefix=API_PREFIX)
    api.include_router(auth_router.router)
    api.include_router(auth_router.api_keys_router)
    api.include_router(admin_users_router.router)
    api.include_router(observability_router.router)
    api.include_router(feedback_router.review_router)
    api.include_router(admin_router.router)
    api.include_router(chat_router.router)
    api.include_router(feedback_router.messages_router)
    api.include_router(nl2sql_router.router)
    api.include_router(connections_router.router)
    api.include_router(feedback_router.examples_router)
    api.include_router(evaluations_router.router)
    api.include_router(semantic_router.router)
    api.include_router(templates_router.router)
    api.include_router(jobs_router.router)
    app.include_router(api)
    app.include_router(health.router)
