"""Review shapes: analytics rows and summaries, audit rows and chain checks, events, metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import ConfigDict, Field

from backend.core.schemas import AppSchema

GroupBy = Literal["day", "user", "model", "connection"]


class QueryAnalyticsRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 7,
                    "query_id": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                    "user_id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "chat_session_id": "c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f",
                    "source": "ask",
                    "question": "What is the revenue per category?",
                    "sql_query": "SELECT category, SUM(amount) AS revenue FROM sales GROUP BY 1",
                    "success": True,
                    "error_message": None,
                    "error_code": None,
                    "execution_time_ms": 3.2,
                    "row_count": 2,
                    "chart_type": "bar",
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "total_tokens": 0,
                    "llm_model": None,
                    "llm_cost_estimate": None,
                    "generator": "builtin",
                    "timestamp": "2024-05-01T12:00:00Z",
                }
            ]
        }
    )

    id: int
    query_id: str
    user_id: str | None
    connection_id: str | None
    chat_session_id: str | None
    source: str
    question: str | None
    sql_query: str | None
    success: bool
    error_message: str | None
    error_code: str | None
    execution_time_ms: float | None = Field(validation_alias="execution_time")
    row_count: int | None
    chart_type: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    llm_model: str | None
    llm_cost_estimate: float | None
    generator: str | None
    timestamp: datetime


class SummaryGroup(AppSchema):
    key: str | None
    """The day (YYYY-MM-DD), user id, model or connection id; null for rows without one."""
    count: int
    success_count: int
    failure_count: int
    success_rate: float | None
    p50_execution_time_ms: float | None
    p95_execution_time_ms: float | None
    avg_execution_time_ms: float | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class AnalyticsSummary(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_by": "day",
                    "since": "2024-04-01T00:00:00Z",
                    "until": "2024-05-01T12:00:00Z",
                    "totals": {
                        "key": None,
                        "count": 12,
                        "success_count": 11,
                        "failure_count": 1,
                        "success_rate": 0.9167,
                        "p50_execution_time_ms": 4.2,
                        "p95_execution_time_ms": 31.0,
                        "avg_execution_time_ms": 7.9,
                        "prompt_tokens": 0,
                        "completion_tokens": 0,
                        "total_tokens": 0,
                        "cost_usd": 0.0,
                    },
                    "groups": [
                        {
                            "key": "2024-05-01",
                            "count": 12,
                            "success_count": 11,
                            "failure_count": 1,
                            "success_rate": 0.9167,
                            "p50_execution_time_ms": 4.2,
                            "p95_execution_time_ms": 31.0,
                            "avg_execution_time_ms": 7.9,
                            "prompt_tokens": 0,
                            "completion_tokens": 0,
                            "total_tokens": 0,
                            "cost_usd": 0.0,
                        }
                    ],
                }
            ]
        }
    )

    group_by: GroupBy
    since: datetime
    until: datetime
    totals: SummaryGroup
    groups: list[SummaryGroup]


class AuditLogRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 3,
                    "user_id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "action": "auth.login",
                    "resource_type": "user",
                    "resource_id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "old_values": None,
                    "new_values": None,
                    "ip_address": "203.0.113.7",
                    "user_agent": "Mozilla/5.0",
                    "timestamp": "2024-05-01T12:00:00Z",
                    "success": True,
                    "error_message": None,
                    "request_id": "5b2e0c1f9a7d4e3b",
                    "prev_hash": "9f2c000000000000000000000000000000000000000000000000000000000000",
                    "row_hash": "a41b000000000000000000000000000000000000000000000000000000000000",
                }
            ]
        }
    )

    id: int
    user_id: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    old_values: dict[str, Any] | None
    new_values: dict[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    timestamp: datetime
    success: bool
    error_message: str | None
    request_id: str | None
    prev_hash: str | None
    row_hash: str | None


class AuditChainReport(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "intact": True,
                    "checked_rows": 1520,
                    "first_broken_id": None,
                    "reason": None,
                    "last_hash": "a41b000000000000000000000000000000000000000000000000000000000000",
                }
            ]
        }
    )

    intact: bool
    checked_rows: int
    first_broken_id: int | None = None
    """The first row whose content or link to its predecessor does not match."""
    reason: Literal["row_modified", "link_broken", "unhashed_row", "anchor_missing"] | None = None
    """row_modified: its hash does not match its content; link_broken: a row before it was
    deleted or changed; unhashed_row: a row was written without the recorder; anchor_missing:
    the row whose hash was given as `anchor` is gone (the newest rows were deleted)."""
    last_hash: str | None = None
    """The newest row's hash: keep it, and pass it as `anchor` to the next check."""


class EventRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 11,
                    "event_type": "asked",
                    "user_id": "3f0c9a2e-8b1d-4c57-9e2a-6d4b1f7a0c11",
                    "session_id": "c2d3e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e6f",
                    "event_data": {
                        "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                        "success": True,
                    },
                    "ip_address": "203.0.113.7",
                    "user_agent": "Mozilla/5.0",
                    "timestamp": "2024-05-01T12:00:00Z",
                }
            ]
        }
    )

    id: int
    event_type: str
    user_id: str | None
    session_id: str | None
    event_data: dict[str, Any] | None
    ip_address: str | None
    user_agent: str | None
    timestamp: datetime


class MetricStat(AppSchema):
    metric_name: str
    labels: dict[str, str]
    unit: str | None
    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float


class MetricsReport(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "since": "2024-05-01T11:00:00Z",
                    "until": "2024-05-01T12:00:00Z",
                    "metrics": [
                        {
                            "metric_name": "http_request_duration",
                            "labels": {
                                "route": "/api/v1/chat/sessions/{session_id}/ask",
                                "status": "200",
                            },
                            "unit": "ms",
                            "count": 40,
                            "p50": 12.5,
                            "p95": 48.0,
                            "p99": 80.1,
                            "mean": 17.3,
                            "max": 95.2,
                        }
                    ],
                }
            ]
        }
    )

    since: datetime
    until: datetime
    metrics: list[MetricStat]
