"""The schema snapshot cache in `database_schemas`: one row per table of a connection, and an
in-process copy of the parsed snapshots in front of it.

The in-process copy is keyed by the snapshot's version as the shared database has it (how many
table rows, and the newest `last_updated`: a store replaces every row with a new time, a clear
leaves none), read with every use, so a refresh made by any process on any host is seen by
the next read here: never stale. An ask reads the version in its one read statement
(`snapshot_version_columns`); `load_snapshot` reads it with a small statement of its own when
not given. The introspection of a first use runs outside any platform transaction and the
result is stored in a short transaction of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ScalarSelect, SQLColumnExpression, delete, func, insert, select
from sqlalchemy.orm import Session

from backend.connections.dialects import database_label
from backend.connections.introspection import introspect_connection
from backend.connections.models import DatabaseConnection, DatabaseSchema
from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.connections.target import read_only_connection
from backend.core.config import Settings
from backend.core.db import utcnow
from backend.core.lru import LockedLru

INTROSPECTION_TIMEOUT_SECONDS = 120
"""Longest reading a database's catalog may take (a bound, not a target: see the benchmark)."""


SNAPSHOT_CACHE_MAX_ENTRIES = 1024
"""Parsed snapshots kept in-process (one per connection, least recently used dropped first)."""

SnapshotVersion = tuple[int, datetime | None]
"""A connection's snapshot as `database_schemas` has it now: its number of table rows and
their newest `last_updated` ((0, None): none stored)."""


@dataclass(frozen=True, slots=True)
class _Cached:
    snapshot: SchemaSnapshot
    taken_at: datetime
    version: SnapshotVersion


_parsed: LockedLru[str, _Cached] = LockedLru(SNAPSHOT_CACHE_MAX_ENTRIES)


def _remember(
    connection_id: str, snapshot: SchemaSnapshot, taken_at: datetime, version: SnapshotVersion
) -> None:
    _parsed.put(connection_id, _Cached(snapshot, taken_at, version))


def snapshot_version_columns(
    connection_id: SQLColumnExpression[str],
) -> tuple[ScalarSelect[Any], ScalarSelect[Any]]:
    """The two parts of `SnapshotVersion` as scalar subqueries on `connection_id` (a column of
    an enclosing statement, or a value), to read with other things in one statement."""
    where = DatabaseSchema.connection_id == connection_id
    return (
        select(func.count()).where(where).scalar_subquery(),
        select(func.max(DatabaseSchema.last_updated)).where(where).scalar_subquery(),
    )


def snapshot_version(session: Session, connection_id: str) -> SnapshotVersion:
    """The connection's `SnapshotVersion`, read now (one small statement)."""
    where = DatabaseSchema.connection_id == connection_id
    count, newest = session.execute(
        select(func.count(), func.max(DatabaseSchema.last_updated)).where(where)
    ).one()
    return int(count), newest


def forget_snapshot(connection_id: str) -> None:
    """Drop this process's parsed copy (after a store or clear, or in tests)."""
    _parsed.pop(connection_id)


def load_snapshot(
    session: Session,
    connection: DatabaseConnection,
    *,
    version: SnapshotVersion | None = None,
) -> tuple[SchemaSnapshot, datetime] | None:
    """The cached snapshot and when it was taken, or None if there is none.

    Served from the in-process copy when its version is the one stored now (`version`, read
    here when not given); otherwise read and parsed again.
    """
    if version is None:
        version = snapshot_version(session, connection.id)
    if version[0] == 0:
        return None
    cached = _parsed.get(connection.id)
    if cached is not None and cached.version == version:
        return cached.snapshot, cached.taken_at
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
    taken_at = min(row.last_updated for row in rows)
    _remember(connection.id, snapshot, taken_at, (len(rows), max(row.last_updated for row in rows)))
    return snapshot, taken_at


def store_snapshot(
    session: Session, connection: DatabaseConnection, snapshot: SchemaSnapshot
) -> datetime:
    """Replace the connection's cached snapshot. Flushes, does not commit."""
    # Concurrent refreshes of one connection take turns on its row (PostgreSQL; SQLite has
    # one writer anyway), so the second replaces the first instead of hitting the unique key.
    # FOR NO KEY UPDATE, not FOR UPDATE: rows that merely reference the connection (an ask's
    # analytics row, its chat session) take KEY SHARE locks on it, and a full FOR UPDATE held
    # across an ask would deadlock two concurrent first asks on the same chat session.
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
    forget_snapshot(connection.id)
    return taken_at


def clear_snapshot(session: Session, connection_id: str) -> None:
    session.execute(delete(DatabaseSchema).where(DatabaseSchema.connection_id == connection_id))
    forget_snapshot(connection_id)


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


def store_snapshot_in_own_transaction(
    session_factory: Callable[[], Session],
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
) -> datetime:
    """Store a snapshot in a short transaction of its own, committed before this returns, so
    no lock it takes outlives the store."""
    with session_factory() as session, session.begin():
        taken_at = store_snapshot(session, connection, snapshot)
    # The version the next read will find, unless another process stores one meanwhile.
    _remember(connection.id, snapshot, taken_at, (len(snapshot.tables), taken_at))
    return taken_at


def introspect_and_store(
    session_factory: Callable[[], Session],
    connection: DatabaseConnection,
    *,
    settings: Settings,
) -> SchemaSnapshot:
    """Introspect the connection with no platform connection open, then store the snapshot in
    its own short transaction. Concurrent first uses in this process introspect once: the
    others wait for it (holding nothing of the platform's) and take its result."""
    with _introspection_lock(connection.id):
        cached = _parsed.get(connection.id)
        if cached is not None:
            return cached.snapshot
        snapshot = read_snapshot(connection, settings=settings)
        store_snapshot_in_own_transaction(session_factory, connection, snapshot)
        return snapshot


_introspecting: dict[str, threading.Lock] = {}
_introspecting_lock = threading.Lock()


def _introspection_lock(connection_id: str) -> threading.Lock:
    with _introspecting_lock:
        if len(_introspecting) >= SNAPSHOT_CACHE_MAX_ENTRIES:
            _introspecting.clear()
        return _introspecting.setdefault(connection_id, threading.Lock())
