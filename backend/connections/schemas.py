"""Request and response shapes of the connections API; the password goes in, never out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StringConstraints

from backend.connections.snapshot import TableInfo
from backend.core.schemas import AppSchema

DbType = Literal["sqlite", "postgresql", "mysql", "duckdb"]
ConnectionName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]
OptionValue = str | int | bool


class ConnectionCreate(AppSchema):
    connection_name: ConnectionName
    db_type: DbType
    db_host: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None
    db_port: int | None = Field(default=None, ge=1, le=65535)
    db_user: Annotated[str, StringConstraints(max_length=255)] | None = None
    db_password: SecretStr | None = Field(default=None, max_length=1024)
    """Write-only: stored encrypted, never returned."""
    db_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
    """The database name, or for SQLite and DuckDB the file's path."""
    options: dict[str, OptionValue] | None = None
    """Driver options such as `sslmode` (PostgreSQL); never secrets."""


class ConnectionUpdate(AppSchema):
    """Every field optional; a `db_password` of null removes the stored password."""

    connection_name: ConnectionName | None = None
    db_type: DbType | None = None
    db_host: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None
    db_port: int | None = Field(default=None, ge=1, le=65535)
    db_user: Annotated[str, StringConstraints(max_length=255)] | None = None
    db_password: SecretStr | None = Field(default=None, max_length=1024)
    db_name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024)]
        | None
    ) = None
    options: dict[str, OptionValue] | None = None
    is_active: bool | None = None


class ConnectionRead(AppSchema):
    id: str
    connection_name: str
    db_type: str
    db_host: str | None
    db_port: int | None
    db_user: str | None
    db_name: str
    options: dict[str, Any] | None
    is_active: bool
    has_password: bool
    created_at: datetime
    updated_at: datetime | None


class ConnectionTestResult(AppSchema):
    ok: bool
    server_version: str | None
    latency_ms: float


class ConnectionSchemaRead(AppSchema):
    connection_id: str
    db_type: str
    database_name: str
    last_updated: datetime
    table_count: int
    tables: list[TableInfo]
