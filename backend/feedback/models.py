"""Tables of the feedback domain: answer_feedback, verified_examples."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, TimestampMixin, new_uuid

EXAMPLE_SOURCES = ("feedback", "correction", "template", "manual")


class AnswerFeedback(TimestampMixin, Base):
    """One user's rating of one answer (a second rating replaces the first)."""

    __tablename__ = "answer_feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "user_id"),
        Index("ix_answer_feedback_connection_id_created_at", "connection_id", "created_at"),
        Index("ix_answer_feedback_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    message_id: Mapped[int] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    query_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    """The ask the message answered (its `query_analytics` row)."""
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("database_connections.id", ondelete="SET NULL"), default=None
    )
    generator: Mapped[str | None] = mapped_column(String(50), default=None)
    llm_model: Mapped[str | None] = mapped_column(String(100), default=None)
    rating: Mapped[int] = mapped_column(Integer)
    """1 (wrong) to 5 (right)."""
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    corrected_sql: Mapped[str | None] = mapped_column(Text, default=None)
    """SQL the user says answers the question, checked by the guard on the connection."""


class VerifiedExample(TimestampMixin, Base):
    """A question and the SQL that answers it on one connection; approved ones are shown to
    LLM generators as few-shot examples."""

    __tablename__ = "verified_examples"
    __table_args__ = (
        Index("ix_verified_examples_connection_id_created_at", "connection_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("database_connections.id", ondelete="CASCADE")
    )
    question: Mapped[str] = mapped_column(Text)
    sql: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))
    """`feedback` (a well-rated answer), `correction`, `template` or `manual`."""
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    """Who contributed it."""
    approved: Mapped[bool] = mapped_column(Boolean, default=False)
    approved_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    approved_at: Mapped[datetime | None] = mapped_column(default=None)
    feedback_id: Mapped[str | None] = mapped_column(
        ForeignKey("answer_feedback.id", ondelete="SET NULL"), default=None, unique=True
    )
    """The feedback it came from (its replacement updates or withdraws the example)."""
    template_id: Mapped[str | None] = mapped_column(
        ForeignKey("query_templates.id", ondelete="SET NULL"), default=None
    )
