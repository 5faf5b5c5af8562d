"""Analytics API: a user's own query analytics (admins: anyone's), summaries and CSV export."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import ColumnElement

from backend.auth.deps import Principal, require_scopes
from backend.auth.scopes import Scope
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep, utcnow
from backend.core.errors import ErrorResponse
from backend.core.pagination import CursorParam
from backend.core.schemas import Page
from backend.observability import service as observability_service
from backend.observability import summaries
from backend.observability.schemas import AnalyticsSummary, GroupBy, QueryAnalyticsRead

router = APIRouter(prefix="/analytics", tags=["analytics"])

AnalyticsReader = Annotated[Principal, Depends(require_scopes(Scope.ANALYTICS_READ))]
DEFAULT_SUMMARY_DAYS = 30
Source = Literal["ask", "sql", "template", "draft"]
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}


def _conditions(
    principal: Principal,
    *,
    user_id: str | None,
    connection_id: str | None,
    success: bool | None,
    source: str | None,
    model: str | None,
    since: datetime | None,
    until: datetime | None,
    q: str | None,
) -> list[ColumnElement[bool]]:
    return observability_service.analytics_conditions(
        user_id=observability_service.visible_user_id(principal, user_id),
        connection_id=connection_id,
        success=success,
        source=source,
        model=model,
        since=since,
        until=until,
        text=q,
    )


@router.get("/queries", responses=ERRORS, summary="Query analytics, newest first")
def list_queries(
    session: SessionDep,
    principal: AnalyticsReader,
    user_id: str | None = None,
    connection_id: str | None = None,
    success: bool | None = None,
    source: Source | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Text in question/SQL")] = None,
    limit: Annotated[int, Query(ge=1, le=observability_service.MAX_PAGE_SIZE)] = 50,
    cursor: CursorParam = None,
) -> Page[QueryAnalyticsRead]:
    """One row per asked question or SQL run: question, SQL, status, timings, tokens, error code.
    Users see their own rows; admins may filter by `user_id`. Page with `cursor`.
    """
    conditions = _conditions(
        principal,
        user_id=user_id,
        connection_id=connection_id,
        success=success,
        source=source,
        model=model,
        since=since,
        until=until,
        q=q,
    )
    rows, next_cursor = observability_service.list_queries(
        session, conditions=conditions, limit=limit, cursor=cursor
    )
    return Page(items=[QueryAnalyticsRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/queries/export",
    responses={
        **ERRORS,
        200: {
            "description": "CSV with a header row",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
    response_class=StreamingResponse,
    summary="Query analytics as CSV (same filters as the list, no paging)",
)
def export_queries(
    request: Request,
    session: SessionDep,
    principal: AnalyticsReader,
    context: ClientContextDep,
    user_id: str | None = None,
    connection_id: str | None = None,
    success: bool | None = None,
    source: Source | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
) -> StreamingResponse:
    """Streams the same rows as `GET /analytics/queries` as CSV (UTF-8, with a header row)."""
    conditions = _conditions(
        principal,
        user_id=user_id,
        connection_id=connection_id,
        success=success,
        source=source,
        model=model,
        since=since,
        until=until,
        q=q,
    )
    filters = {
        "user_id": observability_service.visible_user_id(principal, user_id),
        "connection_id": connection_id,
        "success": success,
        "source": source,
        "model": model,
        "since": since,
        "until": until,
        "q": q,
    }
    observability_service.record_export(
        session,
        user_id=principal.user.id,
        user_session_id=principal.user_session_id,
        context=context,
        resource="query_analytics",
        filters=filters,
    )
    return StreamingResponse(
        observability_service.stream_csv(
            request.app.state.session_factory,
            observability_service.queries_export_statement(conditions),
            observability_service.ANALYTICS_CSV_COLUMNS,
        ),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="query_analytics.csv"'},
    )


@router.get("/summary", responses=ERRORS, summary="Counts, success rate, latency, tokens, cost")
def summary(
    session: SessionDep,
    principal: AnalyticsReader,
    group_by: GroupBy = "day",
    since: Annotated[datetime | None, Query(description="Default: 30 days before until")] = None,
    until: Annotated[datetime | None, Query(description="Default: now")] = None,
    user_id: str | None = None,
    connection_id: str | None = None,
    source: Source | None = None,
    model: str | None = None,
) -> AnalyticsSummary:
    """Counts, success rate, latency percentiles, tokens and estimated cost over a window (default:
    the last 30 days), optionally grouped by day, connection or generator.
    """
    until = until or utcnow()
    since = since or until - timedelta(days=DEFAULT_SUMMARY_DAYS)
    conditions = _conditions(
        principal,
        user_id=user_id,
        connection_id=connection_id,
        success=None,
        source=source,
        model=model,
        since=since,
        until=until,
        q=None,
    )
    return summaries.summarize_queries(
        session, group_by=group_by, since=since, until=until, conditions=conditions
    )
