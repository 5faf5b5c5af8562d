"""Request and response shapes of the connections API; the password goes in, never out."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, SecretStr, StringConstraints

from backend.connections.network import normalize_host
from backend.connections.snapshot import ColumnInfo, TableInfo
from backend.core.schemas import AppSchema, Omitted

DbType = Literal["sqlite", "postgresql", "mysql", "duckdb"]
ConnectionName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)
]
OptionValue = str | int | bool


def _driver_safe(value: str) -> str:
    """Text a database driver can carry: UTF-8 encodable (no lone surrogates), no NUL."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (no lone surrogates)") from None
    return value


def _host(value: str) -> str:
    return normalize_host(value) if value else value


def _secret_driver_safe(value: SecretStr) -> SecretStr:
    _driver_safe(value.get_secret_value())
    return value


# What the contract promises to accept: ASCII host names (an IPv4 address is one too). The
# server also takes IPv6 literals and internationalized names (stored in their IDNA form).
_HOST_PATTERN = (
    r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)
DbHost = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=255),
    AfterValidator(_host),
    Field(json_schema_extra={"pattern": _HOST_PATTERN, "maxLength": 253}),
]
"""A host name (IDNA-valid, at most 253 characters) or an IP literal; stored in ASCII form."""
DbUser = Annotated[str, StringConstraints(max_length=255), AfterValidator(_driver_safe)]
DbPassword = Annotated[SecretStr, Field(max_length=1024), AfterValidator(_secret_driver_safe)]
DbName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=1024),
    AfterValidator(_driver_safe),
]


class ConnectionCreate(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "connection_name": "warehouse",
                    "db_type": "postgresql",
                    "db_host": "db.internal",
                    "db_port": 5432,
                    "db_user": "analyst",
                    "db_password": "s3cret",
                    "db_name": "sales",
                    "options": {"sslmode": "require"},
                }
            ]
        }
    )

    connection_name: ConnectionName
    db_type: DbType
    db_host: DbHost | None = None
    db_port: int | None = Field(default=None, ge=1, le=65535)
    db_user: DbUser | None = None
    db_password: DbPassword | None = None
    """Write-only: stored encrypted, never returned."""
    db_name: DbName
    """The database name, or for SQLite and DuckDB the file's path."""
    options: dict[str, OptionValue] | None = None
    """Driver options such as `sslmode` (PostgreSQL); never secrets."""


class ConnectionUpdate(AppSchema):
    """Every field optional; a `db_password` of null removes the stored password."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"db_password": "n3w-s3cret", "is_active": True}]}
    )

    connection_name: ConnectionName | Omitted = None
    db_type: DbType | Omitted = None
    db_host: DbHost | None = None
    db_port: int | None = Field(default=None, ge=1, le=65535)
    db_user: DbUser | None = None
    db_password: DbPassword | None = None
    db_name: DbName | Omitted = None
    options: dict[str, OptionValue] | None = None
    is_active: bool | Omitted = None


class ConnectionRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "connection_name": "warehouse",
                    "db_type": "postgresql",
                    "db_host": "db.internal",
                    "db_port": 5432,
                    "db_user": "analyst",
                    "db_name": "sales",
                    "options": {"sslmode": "require"},
                    "is_active": True,
                    "has_password": True,
                    "created_at": "2024-05-01T12:00:00Z",
                    "updated_at": None,
                }
            ]
        }
    )

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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"ok": True, "server_version": "PostgreSQL 15.6", "latency_ms": 4.1}]
        }
    )

    ok: bool
    server_version: str | None
    latency_ms: float


class SchemaColumnRead(ColumnInfo):
    indexed_values: list[str] | None = Field(default=None, exclude=True)
    """(The value index is the engine's, up to a few hundred KB a schema: not shown.)"""
    hidden: bool = False
    """Hidden by the connection's semantic layer (shown only to whoever manages the layer)."""


class SchemaTableRead(TableInfo):
    columns: list[SchemaColumnRead]  # type: ignore[assignment]
    hidden: bool = False
    """The whole table is hidden by the connection's semantic layer (shown only to whoever
    manages the layer)."""


class ConnectionSchemaRead(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "connection_id": "7a1e5c3b-2d4f-4a8e-b9c6-0e1f2a3b4c5d",
                    "db_type": "sqlite",
                    "database_name": "shop",
                    "last_updated": "2024-05-01T12:00:00Z",
                    "table_count": 1,
                    "includes_hidden": True,
                    "tables": [
                        {
                            "name": "customers",
                            "schema_name": None,
                            "columns": [
                                {
                                    "name": "id",
                                    "type": "INTEGER",
                                    "nullable": False,
                                    "primary_key": True,
                                },
                                {
                                    "name": "country",
                                    "type": "TEXT",
                                    "sample_values": ["France", "Japan"],
                                },
                                {"name": "tax_id", "type": "TEXT", "hidden": True},
                            ],
                            "foreign_keys": [],
                            "row_count": 500,
                        }
                    ],
                }
            ]
        }
    )

    connection_id: str
    db_type: str
    database_name: str
    last_updated: datetime
    table_count: int
    tables: list[SchemaTableRead]
    includes_hidden: bool = False
    """Whether the tables and columns the semantic layer hides are listed (marked `hidden`):
    only for a caller who may write the layer (`connections:write`) and did not ask for
    `include_hidden=false`. Otherwise they are left out, as every generator and agent sees
    the schema."""
