"""HTTP endpoint of user-written SQL: the same guard, executor and recording as an ask."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from backend.auth.deps import Principal, require_scopes
from backend.auth.scopes import Scope
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import ErrorResponse
from backend.nl2sql import pipeline
from backend.nl2sql.schemas import QueryResultRead, ResultColumnRead, SqlRunRequest

router = APIRouter(prefix="/query", tags=["query"])

SqlRunner = Annotated[Principal, Depends(require_scopes(Scope.QUERY_SQL))]


@router.post(
    "/sql",
    summary="Run your own read-only SQL",
    response_model=QueryResultRead,
    responses={
        400: {"model": ErrorResponse, "description": "The guard refused the SQL."},
        401: {"model": ErrorResponse},
        403: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
        502: {"model": ErrorResponse, "description": "The database failed."},
        504: {"model": ErrorResponse, "description": "The database timed out."},
    },
)
def run_sql(
    data: SqlRunRequest,
    request: Request,
    session: SessionDep,
    principal: SqlRunner,
    context: ClientContextDep,
) -> QueryResultRead:
    """Runs SQL written by the caller through the same guard (one read-only statement), row cap,
    timeout and recording as an ask; answers with the rows and a suggested chart.
    """
    answer = pipeline.run_sql(
        session,
        principal=principal,
        connection_id=data.connection_id,
        sql=data.sql,
        settings=request.app.state.settings,
        context=context,
    )
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
        execution_time_ms=answer.result.execution_time_ms,
        chart=answer.chart.spec,
        chart_type=answer.chart.chart_type,
    )
