"""HTTP routes of query templates: `/templates` CRUD, and running one through the pipeline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import ErrorResponse
from backend.core.pagination import CursorParam
from backend.core.schemas import Page
from backend.nl2sql import pipeline
from backend.nl2sql.router import query_result_read
from backend.nl2sql.schemas import QueryResultRead
from backend.templates import service
from backend.templates.deps import ReleasedTemplatesReader, TemplatesReader, TemplatesWriter
from backend.templates.models import QueryTemplate
from backend.templates.schemas import (
    TemplateCreate,
    TemplateRead,
    TemplateRunRequest,
    TemplateUpdate,
)

router = APIRouter(prefix="/templates", tags=["templates"])

_AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No or bad credentials."},
    403: {"model": ErrorResponse, "description": "Missing scope, or not the owner."},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such template, or not visible to you."}
}
_INVALID: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "The template is not valid."}
}


@router.post(
    "",
    summary="Create a query template",
    status_code=201,
    response_model=TemplateRead,
    responses={**_AUTH_ERRORS, **_INVALID, **_NOT_FOUND},
)
def create_template(
    data: TemplateCreate,
    session: SessionDep,
    principal: TemplatesWriter,
    context: ClientContextDep,
) -> QueryTemplate:
    """Stores a parameterised SQL query with its natural-language pattern; the SQL must pass the
    read-only guard.
    """
    return service.create_template(session, principal, data, context=context)


@router.get(
    "",
    summary="Query templates",
    response_model=Page[TemplateRead],
    responses={**_AUTH_ERRORS, **_INVALID},
)
def list_templates(
    session: SessionDep,
    principal: TemplatesReader,
    category: str | None = None,
    connection_id: str | None = None,
    mine: Annotated[bool, Query(description="Only the caller's own templates.")] = False,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 50,
    cursor: CursorParam = None,
) -> Page[TemplateRead]:
    """Public templates and the caller's own, filtered by category or connection; page with `limit`
    and `next_cursor`.
    """
    items, next_cursor = service.list_templates(
        session,
        principal,
        category=category,
        connection_id=connection_id,
        mine=mine,
        limit=limit,
        cursor=cursor,
    )
    return Page[TemplateRead](
        items=[TemplateRead.model_validate(t) for t in items], next_cursor=next_cursor
    )


@router.get(
    "/{template_id}",
    summary="One query template",
    response_model=TemplateRead,
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
def get_template(
    template_id: str, session: SessionDep, principal: TemplatesReader
) -> QueryTemplate:
    """One template visible to the caller (public or their own)."""
    return service.get_template(session, principal, template_id)


@router.patch(
    "/{template_id}",
    summary="Change a query template",
    response_model=TemplateRead,
    responses={**_AUTH_ERRORS, **_NOT_FOUND, **_INVALID},
)
def update_template(
    template_id: str,
    data: TemplateUpdate,
    session: SessionDep,
    principal: TemplatesWriter,
    context: ClientContextDep,
) -> QueryTemplate:
    """Changes a template the caller owns; fields left out stay as they are."""
    return service.update_template(session, principal, template_id, data, context=context)


@router.delete(
    "/{template_id}",
    summary="Delete a query template",
    status_code=204,
    responses={**_AUTH_ERRORS, **_NOT_FOUND},
)
def delete_template(
    template_id: str,
    session: SessionDep,
    principal: TemplatesWriter,
    context: ClientContextDep,
) -> Response:
    """Deletes a template the caller owns."""
    service.delete_template(session, principal, template_id, context=context)
    return Response(status_code=204)


@router.post(
    "/{template_id}/run",
    summary="Run a template with bound parameters",
    response_model=QueryResultRead,
    responses={
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        400: {"model": ErrorResponse, "description": "The guard refused the template's SQL."},
        409: {
            "model": ErrorResponse,
            "description": "The template is bound to another connection than the one given.",
        },
        422: {"model": ErrorResponse, "description": "Parameters or connection not valid."},
        502: {"model": ErrorResponse, "description": "The database failed."},
        504: {"model": ErrorResponse, "description": "The database timed out."},
    },
)
def run_template(
    template_id: str,
    data: TemplateRunRequest,
    request: Request,
    principal: ReleasedTemplatesReader,
    context: ClientContextDep,
) -> QueryResultRead:
    """Run the template with its parameters bound by the database driver; recorded like an ask
    (`source="template"`) and counted in `usage_count`."""
    answer = pipeline.run_template(
        request.app.state.session_factory,
        principal=principal,
        template_id=template_id,
        parameters=data.parameters,
        connection_id=data.connection_id,
        settings=request.app.state.settings,
        context=context,
    )
    return query_result_read(answer)
