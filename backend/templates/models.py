"""Tables of the templates domain: query_templates."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, TimestampMixin, new_uuid


class QueryTemplate(TimestampMixin, Base):
    __tablename__ = "query_templates"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    question_template: Mapped[str] = mapped_column(Text)
    sql_template: Mapped[str] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100), default=None)
    is_public: Mapped[bool] = mapped_column(Boolean, default=False)
    is_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    usage_count: Mapped[int] = mapped_column(Integer, default=0)
    parameters: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    """Named, typed parameters: `[{"name", "type", "default"?, "description"?}]`."""
    connection_id: Mapped[str | None] = mapped_column(
        ForeignKey("database_connections.id", ondelete="SET NULL"), default=None
    )
