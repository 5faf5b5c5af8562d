"""The schema snapshot cache in `database_schemas`: one row per table of a connection."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from backend.connections.dialects import database_label
from backend.connections.introspection import introspect_connection
from backend.connections.models import DatabaseConnection, DatabaseSchema
from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.connections.target import read_only_connection
from backend.core.config import Settings
from backend.core.db import utcnow

INTROSPECTION_TIMEOUT_SECONDS = 120
"""Longest reading a database's catalog may take (a bound, not a target: see the benchmark)."""


def load_snapshot(
    session: Session, connection: DatabaseConnection
) -> tuple[SchemaSnapshot, datetime] | None:
    """The cached snapshot and when it was taken, or None if there is none."""
    rows = list(
        session.scalars(
            select(DatabaseSchema)
            .where(DatabaseSchema.connection_id == connection.id)
            .order_by(DatabaseSchema.table_name)
        )
    )
    if not rows:
        return None
    snapshot = SchemaSnapshot(
        db_type=connection.db_type,
        database_name=rows[0].database_name,
        tables=[TableInfo.model_validate(row.schema_info) for row in rows],
    )
    return snapshot, min(row.last_updated for row in rows)


def store_snapshot(
    session: Session, connection: DatabaseConnection, snapshot: SchemaSnapshot
) -> datetime:
    """Replace the connection's cached snapshot. Flushes, does not commit."""
    # Concurrent refreshes of one connection take turns on its row (PostgreSQL; SQLite has
    # one writer anyway), so the second replaces the first instead of hitting the unique key.
    # FOR NO KEY UPDATE, not FOR UPDATE: the lock lasts until the ask's transaction ends, and
    # must not block the foreign-key checks (FOR KEY SHARE) of concurrent asks that already hold
    # their chat session's row, or the two deadlock.
    session.execute(
        select(DatabaseConnection.id)
        .where(DatabaseConnection.id == connection.id)
        .with_for_update(key_share=True)
    )
    taken_at = utcnow()
    clear_snapshot(session, connection.id)
    if snapshot.tables:
        session.execute(
            insert(DatabaseSchema),
            [
                {
                    "connection_id": connection.id,
                    "database_name": snapshot.database_name,
                    "table_name": table.name,
                    "schema_info": table.model_dump(mode="json"),
                    "last_updated": taken_at,
                    "row_count": table.row_count,
                    "table_size": table.size_bytes,
                }
                for table in snapshot.tables
            ],
        )
    session.flush()
    return taken_at


def clear_snapshot(session: Session, connection_id: str) -> None:
    session.execute(delete(DatabaseSchema).where(DatabaseSchema.connection_id == connection_id))


def read_snapshot(connection: DatabaseConnection, *, settings: Settings) -> SchemaSnapshot:
    """Introspect the connection's database now; raises 502/504 errors as the executor."""
    with read_only_connection(
        connection, settings=settings, timeout_seconds=INTROSPECTION_TIMEOUT_SECONDS
    ) as (conn, _dialect):
        return introspect_connection(
            conn,
            db_type=connection.db_type,
            database_name=database_label(connection.db_type, connection.db_name),
        )


def refresh_schema_snapshot(
    session: Session, connection: DatabaseConnection, *, settings: Settings
) -> tuple[SchemaSnapshot, datetime]:
    snapshot = read_snapshot(connection, settings=settings)
    return snapshot, store_snapshot(session, connection, snapshot)


def snapshot_for_connection(
    session: Session, connection: DatabaseConnection, settings: Settings
) -> SchemaSnapshot:
    """The cached snapshot, introspected and stored on first use. Flushes, does not commit."""
    cached = load_snapshot(session, connection)
    if cached is not None:
        return cached[0]
    return refresh_schema_snapshot(session, connection, settings=settings)[0]
