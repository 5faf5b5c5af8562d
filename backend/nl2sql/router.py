"""HTTP endpoint of user-written SQL: the same guard, executor and recording as an ask."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from backend.auth.deps import Principal, require_scopes, require_scopes_released
from backend.auth.scopes import Scope
from backend.core.context import ClientContextDep
from backend.core.errors import ErrorResponse
from backend.nl2sql import export, pipeline
from backend.nl2sql.schemas import QueryResultRead, ResultColumnRead, SqlRunRequest

router = APIRouter(prefix="/query", tags=["query"])

SqlRunner = Annotated[Principal, Depends(require_scopes(Scope.QUERY_SQL))]
ReleasedSqlRunner = Annotated[Principal, Depends(require_scopes_released(Scope.QUERY_SQL))]
"""The caller, read in a short session closed before the query runs."""


@router.post(
    "/sql",
    summary="Run your own read-only SQL",
    response_model=QueryResultRead,
    responses={
        400: {"model": ErrorResponse, "description": "The guard refused the SQL."},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {
            "model": ErrorResponse,
            "description": "`message_id` names an answer that is not a draft waiting to be run.",
        },
        422: {"model": ErrorResponse},
        502: {"model": ErrorResponse, "description": "The database failed."},
        504: {"model": ErrorResponse, "description": "The database timed out."},
    },
)
def run_sql(
    data: SqlRunRequest,
    request: Request,
    principal: ReleasedSqlRunner,
    context: ClientContextDep,
) -> QueryResultRead:
    """Runs SQL written by the caller through the same guard (one read-only statement), row cap,
    timeout and recording as an ask; answers with the rows and a suggested chart.
    """
    answer = pipeline.run_sql(
        request.app.state.session_factory,
        principal=principal,
        connection_id=data.connection_id,
        sql=data.sql,
        settings=request.app.state.settings,
        context=context,
        message_id=data.message_id,
    )
    return query_result_read(answer)


def query_result_read(answer: pipeline.QueryAnswer) -> QueryResultRead:
    """The response of a query that ran (SQL, template run)."""
    return QueryResultRead(
        query_id=answer.query_id,
        sql=answer.sql,
        columns=[
            ResultColumnRead(name=c.name, type=t)
            for c, t in zip(answer.result.columns, answer.column_types, strict=True)
        ],
        rows=answer.result.rows,
        row_count=answer.result.row_count,
        truncated=answer.result.truncated,
        truncated_reason=answer.result.truncated_reason,
        execution_time_ms=answer.result.execution_time_ms,
        chart=answer.chart.spec,
        chart_type=answer.chart.chart_type,
    )


@router.get(
    "/{query_id}/export",
    summary="Export every row of a recorded query as CSV",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "Every row of the query, as CSV with a header row.",
        },
        400: {"model": ErrorResponse, "description": "The guard refused the recorded SQL."},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse, "description": "No such query of yours."},
        409: {"model": ErrorResponse, "description": "The query failed; nothing to export."},
        422: {"model": ErrorResponse, "description": "Unknown format."},
        502: {"model": ErrorResponse, "description": "The database failed."},
        504: {"model": ErrorResponse, "description": "The database timed out."},
    },
)
def export_query(
    query_id: str,
    request: Request,
    principal: ReleasedSqlRunner,
    context: ClientContextDep,
    format: Annotated[Literal["csv"], Query(description="Only `csv` for now.")] = "csv",  # noqa: A002
) -> StreamingResponse:
    """Re-run a query you recorded and stream every row (not only the capped preview).

    Only the query's owner may export it; the recorded SQL goes through the guard again, the
    preview's row cap is lifted (the query's own LIMIT is kept), and the export is audited.
    """
    prepared = export.prepare_csv_export(
        request.app.state.session_factory,
        principal=principal,
        query_id=query_id,
        settings=request.app.state.settings,
        context=context,
    )
    return StreamingResponse(
        prepared.rows(),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{prepared.filename}"',
            "X-Export-Max-Rows": str(prepared.max_rows),
        },
    )
