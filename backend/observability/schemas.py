"""Review shapes: analytics rows and summaries, audit rows and chain checks, events, metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from backend.core.schemas import AppSchema

GroupBy = Literal["day", "user", "model", "connection"]


class QueryAnalyticsRead(AppSchema):
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
    group_by: GroupBy
    since: datetime
    until: datetime
    totals: SummaryGroup
    groups: list[SummaryGroup]


class AuditLogRead(AppSchema):
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
    since: datetime
    until: datetime
    metrics: list[MetricStat]
