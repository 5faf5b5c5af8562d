"""Tables of the chat domain: chat_sessions, chat_messages."""

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

from backend.core.db import Base, TimestampMixin, new_uuid, utcnow

MESSAGE_TYPES = ("user", "assistant", "error")


class ChatSession(TimestampMixin, Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (
        Index("ix_chat_sessions_user_id_last_message_at", "user_id", "last_message_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_message_at: Mapped[datetime | None] = mapped_column(default=None)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("database_connections.id", ondelete="SET NULL"), default=None, index=True
    )


class ChatMessage(Base):
    __tablename__ = "chat_messages"
    __table_args__ = (UniqueConstraint("session_id", "sequence_number"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"))
    message_type: Mapped[str] = mapped_column(String(20))
    content: Mapped[str] = mapped_column(Text)
    query_id: Mapped[str | None] = mapped_column(String(36), default=None, index=True)
    sql_query: Mapped[str | None] = mapped_column(Text, default=None)
    query_result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    execution_time: Mapped[float | None] = mapped_column(Float, default=None)
    """Milliseconds."""
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    timestamp: Mapped[datetime] = mapped_column(default=utcnow)
    sequence_number: Mapped[int] = mapped_column(Integer)
