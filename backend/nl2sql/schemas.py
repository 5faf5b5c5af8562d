"""Request and response shapes of the SQL endpoint and the result every query answers with."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from backend.core.schemas import AppSchema


class ResultColumnRead(AppSchema):
    name: str
    type: str | None = None


QUERY_RESULT_EXAMPLE: dict[str, Any] = {
    "query_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "sql": "SELECT category, SUM(amount) AS revenue FROM sales GROUP BY 1",
    "columns": [
        {"name": "category", "type": "TEXT"},
        {"name": "revenue", "type": "REAL"},
    ],
    "rows": [["Books", 1520.5], ["Toys", 980.0]],
    "row_count": 2,
    "truncated": False,
    "truncated_reason": None,
    "execution_time_ms": 3.2,
    "chart": {
        "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
        "data": {"name": "rows"},
        "usermeta": {"row_fields": ["category", "revenue"]},
        "mark": "bar",
        "encoding": {
            "x": {"field": "category", "type": "nominal"},
            "y": {"field": "revenue", "type": "quantitative"},
        },
    },
    "chart_type": "bar",
}
"""The example answer shown in the API contract (also the base of the ask's example)."""


class QueryResultRead(AppSchema):
    """What a query answered: the SQL that ran, its rows (capped) and a chart."""

    model_config = ConfigDict(json_schema_extra={"examples": [QUERY_RESULT_EXAMPLE]})

    query_id: str
    sql: str
    columns: list[ResultColumnRead]
    rows: list[list[Any]]
    row_count: int
    truncated: bool
    truncated_reason: Literal["row_limit", "byte_limit", "cell_limit"] | None = None
    """Why `rows` holds less than the query answered: `row_limit` (the row cap), `byte_limit`
    (the byte budget of a result: fetching stopped), `cell_limit` (all rows, but a value was
    cut at the byte cap of one value)."""
    execution_time_ms: float
    chart: dict[str, Any] | None = None
    """A Vega-Lite v5 spec whose data is the named data set `rows` (`{"data": {"name":
    "rows"}}`): fill it with one object per row of `rows`, keyed by the names in
    `usermeta.row_fields` (see the contract README)."""
    chart_type: str | None = None


class SqlRunRequest(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "sql": "SELECT name, city FROM customers ORDER BY name LIMIT 10",
                }
            ]
        }
    )

    connection_id: str = Field(min_length=1, max_length=36)
    sql: str = Field(min_length=1, max_length=100_000)
    message_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    """A draft answer of yours (asked with `execute: false` on this connection) that this run
    carries out: its chat thread then shows the result instead of the draft."""
