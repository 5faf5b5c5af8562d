"""Tables of the connections domain: database_connections, database_schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.core.db import Base, TimestampMixin, new_uuid, utcnow

DB_TYPES = ("sqlite", "postgresql", "mysql", "duckdb")


class DatabaseConnection(TimestampMixin, Base):
    __tablename__ = "database_connections"
    __table_args__ = (UniqueConstraint("user_id", "connection_name"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    connection_name: Mapped[str] = mapped_column(String(100))
    db_type: Mapped[str] = mapped_column(String(20))
    db_host: Mapped[str | None] = mapped_column(String(255), default=None)
    db_port: Mapped[int | None] = mapped_column(Integer, default=None)
    db_user: Mapped[str | None] = mapped_column(String(255), default=None)
    encrypted_db_password: Mapped[str | None] = mapped_column(Text, default=None)
    db_name: Mapped[str] = mapped_column(String(1024))
    """Database name, or the file path for SQLite and DuckDB."""
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """Driver options such as `sslmode`; never secrets."""
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class DatabaseSchema(Base):
    """One introspected table of a connection: the cached schema snapshot."""

    __tablename__ = "database_schemas"
    __table_args__ = (UniqueConstraint("connection_id", "table_name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    connection_id: Mapped[str] = mapped_column(
        ForeignKey("database_connections.id", ondelete="CASCADE"), index=True
    )
    database_name: Mapped[str] = mapped_column(String(1024))
    table_name: Mapped[str] = mapped_column(String(255))
    schema_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_updated: Mapped[datetime] = mapped_column(default=utcnow)
    row_count: Mapped[int | None] = mapped_column(BigInteger, default=None)
    table_size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """Bytes on disk where the database reports it."""
