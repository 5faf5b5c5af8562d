"""The pipeline's one door to users' databases: the connection, its schema snapshot, a query run.

Until the connections domain ships `snapshot_for_connection` and `run_on_connection`, this
adapter does the work for SQLite connections itself (introspection, the cached snapshot rows in
`database_schemas`, the read-only executor). At merge these functions delegate to the
connections service and nothing else in nl2sql changes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.connections.errors import (
    ConnectionNotFound,
    ConnectionPathNotAllowed,
    TargetDatabaseError,
    TargetDatabaseTimeout,
)
from backend.connections.executor import QueryResult, execute_query, open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.models import DatabaseConnection, DatabaseSchema
from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.core.config import Settings
from backend.core.db import utcnow
from backend.nl2sql.errors import UnsupportedConnection

SUPPORTED_DB_TYPES = ("sqlite",)
_PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between two deadline checks."""


def get_owned_connection(
    session: Session, *, user_id: str, connection_id: str
) -> DatabaseConnection:
    """The caller's active connection; `ConnectionNotFound` (404) for anyone else's."""
    connection = session.get(DatabaseConnection, connection_id)
    if connection is None or connection.user_id != user_id or not connection.is_active:
        raise ConnectionNotFound(details={"connection_id": connection_id})
    return connection


def ensure_allowed_sqlite_path(raw_path: str, settings: Settings) -> Path:
    """The resolved path; `ConnectionPathNotAllowed` outside the allowed directories.

    The platform's own database is never allowed, wherever it lives.
    """
    path = Path(raw_path).expanduser().resolve()
    allowed = any(path.is_relative_to(d) for d in settings.sqlite_allowed_dirs)
    if not allowed or path == settings.app_database_path:
        raise ConnectionPathNotAllowed()
    return path


def _sqlite_path(connection: DatabaseConnection, settings: Settings) -> Path:
    if connection.db_type not in SUPPORTED_DB_TYPES:
        raise UnsupportedConnection(details={"db_type": connection.db_type})
    path = ensure_allowed_sqlite_path(connection.db_name, settings)
    if not path.is_file():
        raise TargetDatabaseError(details={"reason": "the database file does not exist"})
    return path


def snapshot_for_connection(
    session: Session, connection: DatabaseConnection, *, settings: Settings
) -> SchemaSnapshot:
    """The cached snapshot from `database_schemas`, introspecting (and caching) on first use."""
    rows = session.scalars(
        select(DatabaseSchema)
        .where(DatabaseSchema.connection_id == connection.id)
        .order_by(DatabaseSchema.table_name)
    ).all()
    if rows:
        return SchemaSnapshot(
            db_type=connection.db_type,
            database_name=rows[0].database_name,
            tables=[TableInfo.model_validate(r.schema_info) for r in rows],
        )
    return refresh_snapshot(session, connection, settings=settings)


def refresh_snapshot(
    session: Session, connection: DatabaseConnection, *, settings: Settings
) -> SchemaSnapshot:
    path = _sqlite_path(connection, settings)
    engine = open_sqlite_read_only(path)
    try:
        snapshot = introspect(engine, db_type=connection.db_type, database_name=path.stem)
    except Exception as exc:
        raise TargetDatabaseError(details={"reason": str(exc).splitlines()[0][:300]}) from exc
    finally:
        engine.dispose()
    now = utcnow()
    try:
        # A savepoint: when a concurrent request caches the same connection first, its rows
        # win and this request goes on with the snapshot it just read.
        with session.begin_nested():
            session.execute(
                delete(DatabaseSchema).where(DatabaseSchema.connection_id == connection.id)
            )
            session.add_all(
                DatabaseSchema(
                    connection_id=connection.id,
                    database_name=snapshot.database_name,
                    table_name=table.name,
                    schema_info=table.model_dump(mode="json"),
                    last_updated=now,
                    row_count=table.row_count,
                    table_size=table.size_bytes,
                )
                for table in snapshot.tables
            )
    except IntegrityError:
        pass
    return snapshot


def run_on_connection(
    connection: DatabaseConnection,
    sql: str,
    *,
    row_cap: int,
    timeout_seconds: float,
    settings: Settings,
) -> QueryResult:
    """Run guarded SQL read-only; `TargetDatabaseError` (502) or `TargetDatabaseTimeout` (504)."""
    path = _sqlite_path(connection, settings)
    engine = open_sqlite_read_only(path)
    deadline = time.monotonic() + timeout_seconds

    @event.listens_for(engine, "connect")
    def _interrupt_after_deadline(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_progress_handler(
            lambda: 1 if time.monotonic() > deadline else 0, _PROGRESS_STEPS
        )

    # The executor hands SQL to SQLAlchemy's text(), which reads ":name" as a bind parameter
    # even inside string literals; the guard already refused real parameters, so every colon
    # left is literal and is escaped.
    escaped = sql.replace(":", "\\:")
    try:
        return execute_query(engine, escaped, row_cap=row_cap)
    except TargetDatabaseError as exc:
        if "interrupted" in str(exc.details.get("reason", "")):
            raise TargetDatabaseTimeout(details={"timeout_seconds": timeout_seconds}) from exc
        raise
    finally:
        engine.dispose()
