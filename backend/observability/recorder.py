"""The one writer of analytics, audit rows, events and metrics.

Takes plain values, redacts secrets in one place, imports no other domain. Writes go into the
caller's session (flushed, never committed), so a recorded row commits or rolls back with the
work it describes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from backend.core.context import ClientContext
from backend.observability.models import AuditLog, Event, PerformanceMetric, QueryAnalytics

REDACTED = "***"
_SECRET_MARKERS = ("password", "secret", "token", "api_key", "apikey", "key_hash", "credential")


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(values: Any) -> Any:
    """A copy of `values` with every secret-looking key's value replaced, at any depth."""
    if isinstance(values, Mapping):
        return {
            str(k): (REDACTED if is_secret_key(str(k)) and v is not None else redact(v))
            for k, v in values.items()
        }
    if isinstance(values, list | tuple):
        return [redact(v) for v in values]
    return values


def audit(
    session: Session,
    *,
    action: str,
    user_id: str | None,
    context: ClientContext | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    old_values: Mapping[str, Any] | None = None,
    new_values: Mapping[str, Any] | None = None,
    success: bool = True,
    error_message: str | None = None,
) -> AuditLog:
    context = context or ClientContext()
    row = AuditLog(
        user_id=user_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        old_values=redact(dict(old_values)) if old_values is not None else None,
        new_values=redact(dict(new_values)) if new_values is not None else None,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        request_id=context.request_id,
        success=success,
        error_message=error_message,
    )
    session.add(row)
    session.flush()
    return row


def event(
    session: Session,
    *,
    event_type: str,
    user_id: str | None,
    context: ClientContext | None = None,
    data: Mapping[str, Any] | None = None,
    user_session_id: str | None = None,
) -> Event:
    context = context or ClientContext()
    row = Event(
        event_type=event_type,
        user_id=user_id,
        event_data=redact(dict(data)) if data is not None else None,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        session_id=user_session_id,
    )
    session.add(row)
    session.flush()
    return row


def query(
    session: Session,
    *,
    query_id: str,
    user_id: str | None,
    source: str,
    success: bool,
    question: str | None = None,
    sql_query: str | None = None,
    execution_time_ms: float | None = None,
    row_count: int | None = None,
    error_message: str | None = None,
    error_code: str | None = None,
    chart_type: str | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    llm_model: str | None = None,
    llm_cost_estimate: float | None = None,
    generator: str | None = None,
    connection_id: str | None = None,
    chat_session_id: str | None = None,
) -> QueryAnalytics:
    """One `query_analytics` row for an ask, a SQL run or a template run."""
    row = QueryAnalytics(
        query_id=query_id,
        user_id=user_id,
        source=source,
        success=success,
        question=question,
        sql_query=sql_query,
        execution_time=execution_time_ms,
        row_count=row_count,
        error_message=error_message,
        error_code=error_code,
        chart_type=chart_type,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        total_tokens=prompt_tokens + completion_tokens,
        llm_model=llm_model,
        llm_cost_estimate=llm_cost_estimate,
        generator=generator,
        connection_id=connection_id,
        chat_session_id=chat_session_id,
    )
    session.add(row)
    session.flush()
    return row


def metric(
    session: Session,
    *,
    name: str,
    value: float,
    unit: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> PerformanceMetric:
    row = PerformanceMetric(
        metric_name=name,
        metric_value=value,
        metric_unit=unit,
        additional_data=dict(data) if data is not None else None,
    )
    session.add(row)
    session.flush()
    return row
