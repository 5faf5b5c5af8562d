"""Tables of the evaluations domain: golden_questions, evaluation_runs, evaluation_results."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, CreatedAtMixin, new_uuid

GOLDEN_SOURCES = ("manual", "upload", "template", "answer", "verified")
RUN_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_RUN_STATUSES = frozenset({"succeeded", "failed", "cancelled"})
OUTCOMES = ("right", "wrong", "declined", "error")


class GoldenQuestion(CreatedAtMixin, Base):
    """One question of a connection's golden set and the SQL whose result is the right answer."""

    __tablename__ = "golden_questions"
    __table_args__ = (
        Index("ix_golden_questions_connection_id_created_at", "connection_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("database_connections.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    question: Mapped[str] = mapped_column(Text)
    gold_sql: Mapped[str] = mapped_column(Text)
    ordered: Mapped[bool] = mapped_column(Boolean, default=False)
    """Rows must come in the gold's order (else they compare as multisets)."""
    source: Mapped[str] = mapped_column(String(16), default="manual")
    """`manual`, `upload`, `template`, `answer` (an earlier answer) or `verified`."""
    source_ref: Mapped[str | None] = mapped_column(String(64), default=None)
    """The template id or query id it was imported from."""


class EvaluationRun(CreatedAtMixin, Base):
    """One run of a golden set through a generator: its settings, progress and tallies."""

    __tablename__ = "evaluation_runs"
    __table_args__ = (
        Index("ix_evaluation_runs_connection_id_created_at", "connection_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("database_connections.id", ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    job_id: Mapped[str | None] = mapped_column(
        ForeignKey("background_jobs.id", ondelete="SET NULL"), default=None
    )
    """The background job that runs it (None for a run of `nlsql eval --connection`)."""
    generator: Mapped[str] = mapped_column(String(32))
    """The generator requested; `used_generator` is the one that ran (an LLM without a key
    falls back to builtin)."""
    used_generator: Mapped[str | None] = mapped_column(String(32), default=None)
    model: Mapped[str | None] = mapped_column(String(120), default=None)
    semantic_layer_version: Mapped[int | None] = mapped_column(Integer, default=None)
    golden_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    """The golden questions of this run, in the order they run."""
    status: Mapped[str] = mapped_column(String(16), default="queued")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    total_count: Mapped[int] = mapped_column(Integer, default=0)
    done_count: Mapped[int] = mapped_column(Integer, default=0)
    right_count: Mapped[int] = mapped_column(Integer, default=0)
    wrong_count: Mapped[int] = mapped_column(Integer, default=0)
    declined_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    p50_ms: Mapped[float | None] = mapped_column(Float, default=None)
    p95_ms: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """`{code, message, details}` when the run as a whole failed."""
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class EvaluationResult(Base):
    """What one golden question got in one run."""

    __tablename__ = "evaluation_results"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("evaluation_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    golden_id: Mapped[str] = mapped_column(String(36))
    """Kept when the golden question is deleted later, so runs still compare."""
    question: Mapped[str] = mapped_column(Text)
    gold_sql: Mapped[str] = mapped_column(Text)
    ordered: Mapped[bool] = mapped_column(Boolean, default=False)
    predicted_sql: Mapped[str | None] = mapped_column(Text, default=None)
    outcome: Mapped[str] = mapped_column(String(16))
    """`right`, `wrong` (answered, another result), `declined` or `error`."""
    ms: Mapped[float] = mapped_column(Float, default=0.0)
    """Generate + guard + execute of the predicted SQL, in milliseconds."""
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
