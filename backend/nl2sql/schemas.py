"""Request and response shapes of the SQL endpoint and the result every query answers with."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from backend.core.schemas import AppSchema


class ResultColumnRead(AppSchema):
    name: str
    type: str | None = None


class QueryResultRead(AppSchema):
    """What a query answered: the SQL that ran, its rows (capped) and a chart."""

    query_id: str
    sql: str
    columns: list[ResultColumnRead]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    execution_time_ms: float
    chart: dict[str, Any] | None = None
    """A Vega-Lite v5 spec with the rows inline."""
    chart_type: str | None = None


class SqlRunRequest(AppSchema):
    connection_id: str = Field(min_length=1, max_length=36)
    sql: str = Field(min_length=1, max_length=100_000)
