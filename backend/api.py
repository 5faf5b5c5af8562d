"""The one list of routers: everything under /api/v1, plus the health probes."""

from __future__ import annotations

from functools import cache

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

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


def operation_id(route: APIRoute) -> str:
    """An operation's id in the OpenAPI document: its first tag, then its function's name."""
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


@cache
def api_routes() -> tuple[BaseRoute, ...]:
    """The API's routes, built once per process and shared by every app it makes.

    FastAPI analyses an included route's dependencies, body and response models for each
    inclusion: for these ~90 routes that was ~0.5 s of every `create_app` (most of the test
    suite's time, where each test makes its own app). The routes hold no state of an app:
    handlers reach theirs through `request.app`. The one thing this gives up is
    `app.dependency_overrides` for these routes (built outside any app, they have no overrides
    provider); the project does not use overrides.
    """
    holder = APIRouter(generate_unique_id_function=operation_id)
    # Each router is included under the prefix directly, not in an `/api/v1` router of its
    # own, and chat (the ask) first: FastAPI matches every level of nested routers again on
    # each request (once to find the route, once more to handle it), which cost an offline
    # ask about a tenth of its CPU. No two routers' paths overlap, so the order only changes
    # how soon a route is found (the OpenAPI document is the same).
    for router in (
        chat_router.router,
        auth_router.router,
        auth_router.api_keys_router,
        admin_users_router.router,
        observability_router.router,
        feedback_router.review_router,
        admin_router.router,
        feedback_router.messages_router,
        nl2sql_router.router,
        connections_router.router,
        feedback_router.examples_router,
        evaluations_router.router,
        semantic_router.router,
        templates_router.router,
        jobs_router.router,
    ):
        holder.include_router(router, prefix=API_PREFIX)
    holder.include_router(health.router)
    return tuple(holder.routes)


def mount_routers(app: FastAPI) -> None:
    app.router.routes.extend(api_routes())
