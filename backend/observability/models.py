"""Tables of observability: query_analytics, audit_logs, events, performance_metrics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, CreatedAtMixin, utcnow


class QueryAnalytics(CreatedAtMixin, Base):
    __tablename__ = "query_analytics"
    __table_args__ = (
        Index("ix_query_analytics_user_id_timestamp", "user_id", "timestamp"),
        Index("ix_query_analytics_timestamp", "timestamp"),
        Index("ix_query_analytics_connection_id_timestamp", "connection_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    query_id: Mapped[str] = mapped_column(String(36), unique=True)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    question: Mapped[str | None] = mapped_column(Text, default=None)
    sql_query: Mapped[str | None] = mapped_column(Text, default=None)
    execution_time: Mapped[float | None] = mapped_column(Float, default=None)
    """Milliseconds spent executing the SQL on the user's database."""
    row_count: Mapped[int | None] = mapped_column(Integer, default=None)
    success: Mapped[bool] = mapped_column(Boolean, default=False)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    chart_type: Mapped[str | None] = mapped_column(String(20), default=None)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    total_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    llm_model: Mapped[str | None] = mapped_column(String(100), default=None)
    llm_cost_estimate: Mapped[float | None] = mapped_column(
        Numeric(12, 6, asdecimal=False), default=None
    )
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("database_connections.id", ondelete="SET NULL"), default=None
    )
    chat_session_id: Mapped[str | None] = mapped_column(
        ForeignKey("chat_sessions.id", ondelete="SET NULL"), default=None
    )
    source: Mapped[str] = mapped_column(String(20), default="ask")
    """What ran the query: `ask`, `sql` or `template`."""
    generator: Mapped[str | None] = mapped_column(String(50), default=None)
    error_code: Mapped[str | None] = mapped_column(String(50), default=None)


class AuditLog(Base):
    __tablename__ = "audit_logs"
    __table_args__ = (
        Index("ix_audit_logs_timestamp", "timestamp"),
        Index("ix_audit_logs_user_id_timestamp", "user_id", "timestamp"),
        Index("ix_audit_logs_action_timestamp", "action", "timestamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    action: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str | None] = mapped_column(String(50), default=None)
    resource_id: Mapped[str | None] = mapped_column(String(100), default=None)
    old_values: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    new_values: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    ip_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    success: Mapped[bool] = mapped_column(Boolean, default=True)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    prev_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    """The previous row's `row_hash`: the chain that makes edits and deletions visible."""
    row_hash: Mapped[str | None] = mapped_column(String(64), default=None, unique=True)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_event_type_timestamp", "event_type", "timestamp"),
        Index("ix_events_timestamp", "timestamp"),
        Index("ix_events_user_id_timestamp", "user_id", "timestamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    event_type: Mapped[str] = mapped_column(String(50))
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    event_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    ip_address: Mapped[str | None] = mapped_column(String(45), default=None)
    user_agent: Mapped[str | None] = mapped_column(String(500), default=None)
    session_id: Mapped[str | None] = mapped_column(String(36), default=None)
    """The user session (`user_sessions.id`) the event happened in, when known."""


class PerformanceMetric(Base):
    __tablename__ = "performance_metrics"
    __table_args__ = (
        Index("ix_performance_metrics_metric_name_timestamp", "metric_name", "timestamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    metric_name: Mapped[str] = mapped_column(String(100))
    metric_value: Mapped[float] = mapped_column(Float)
    metric_unit: Mapped[str | None] = mapped_column(String(20), default=None)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    additional_data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
