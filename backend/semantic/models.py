"""Tables of the semantic domain: each connection's layer, one immutable row per version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, CreatedAtMixin, utcnow

VERSION_SOURCES = ("put", "patch", "import", "revert")
"""How a version was written: a whole document, a partial edit, an upload, a revert."""


class SemanticLayerHead(Base):
    """The current-version pointer of one connection's layer (absent: the connection has none).

    Writers take turns on this row, so two writes never get the same version number."""

    __tablename__ = "semantic_layers"

    connection_id: Mapped[str] = mapped_column(
        ForeignKey("database_connections.id", ondelete="CASCADE"), primary_key=True
    )
    current_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SemanticLayerVersion(CreatedAtMixin, Base):
    """One written version of a layer; never changed after it is written."""

    __tablename__ = "semantic_layer_versions"
    __table_args__ = (UniqueConstraint("connection_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("database_connections.id", ondelete="CASCADE")
    )
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    """The `SemanticLayer` document as JSON."""
    author_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    note: Mapped[str | None] = mapped_column(String(500), default=None)
    source: Mapped[str] = mapped_column(String(16))
    """One of `VERSION_SOURCES`."""
    reverted_from: Mapped[int | None] = mapped_column(Integer, default=None)
    """The version a revert copied."""
