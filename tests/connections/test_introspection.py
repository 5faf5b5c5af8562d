"""Introspection of real databases: what it finds, and that 300 tables take seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.connections.executor import snapshot_for_connection
from backend.connections.models import DatabaseConnection, DatabaseSchema
from backend.connections.schema_cache import read_snapshot
from backend.core.config import Settings
from tests.connections.conftest import Caller, ServerTarget, build_sqlite, connection_for

LARGE_SCHEMA_TABLES = 300
LARGE_SCHEMA_BOUND_SECONDS = 15.0
"""Generous for a shared 2-core machine; the benchmark reports the real figure."""


def test_each_dialect_finds_keys_counts_and_samples(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    snapshot = read_snapshot(target_connection, settings=plain_settings)
    assert snapshot.db_type == target_connection.db_type
    assert snapshot.table_names == ["customers", "orders"]
    customers = snapshot.table("customers")
    orders = snapshot.table("orders")
    assert customers is not None and orders is not None
    id_column = customers.column("id")
    assert id_column is not None and id_column.primary_key and not id_column.nullable
    name = customers.column("name")
    assert name is not None and not name.nullable
    country = customers.column("country")
    assert country is not None and country.sample_values == ["France", "Spain"]
    password_hash = customers.column("password_hash")
    assert password_hash is not None and password_hash.sample_values is None
    assert orders.foreign_keys[0].columns == ["customer_id"]
    assert orders.foreign_keys[0].referred_table == "customers"
    assert orders.foreign_keys[0].referred_columns == ["id"]
    status = orders.column("status")
    assert status is not None and status.default is not None and "open" in status.default
    if target_connection.db_type != "mysql":  # InnoDB's table_rows is a loose estimate
        assert orders.row_count == 3


def _timed(read: Callable[[], object]) -> float:
    started = time.perf_counter()
    read()
    return time.perf_counter() - started


def test_a_300_table_sqlite_database_introspects_within_the_bound(
    plain_settings: Settings, db_dir: Path
) -> None:
    path = build_sqlite(db_dir / "large.sqlite", extra_tables=LARGE_SCHEMA_TABLES)
    connection = connection_for(plain_settings, "sqlite", path=path)
    snapshot = None

    def _read() -> None:
        nonlocal snapshot
        snapshot = read_snapshot(connection, settings=plain_settings)

    elapsed = _timed(_read)
    assert snapshot is not None and len(snapshot.tables) == LARGE_SCHEMA_TABLES + 2
    table = snapshot.table("t0299")
    assert table is not None and table.foreign_keys[0].referred_table == "customers"
    assert elapsed < LARGE_SCHEMA_BOUND_SECONDS, f"{elapsed:.2f}s"


def test_a_300_table_postgresql_database_introspects_within_the_bound(
    plain_settings: Settings, pg_target_factory: Callable[..., ServerTarget]
) -> None:
    server = pg_target_factory(extra_tables=LARGE_SCHEMA_TABLES)
    connection = connection_for(plain_settings, "postgresql", server=server)
    snapshot = None

    def _read() -> None:
        nonlocal snapshot
        snapshot = read_snapshot(connection, settings=plain_settings)

    elapsed = _timed(_read)
    assert snapshot is not None and len(snapshot.tables) == LARGE_SCHEMA_TABLES + 2
    table = snapshot.table("t0150")
    assert table is not None and [c.name for c in table.columns] == [
        "id",
        "parent_id",
        "label",
        "value",
    ]
    assert table.foreign_keys[0].referred_table == "customers"
    assert table.size_bytes is not None and table.size_bytes > 0
    assert elapsed < LARGE_SCHEMA_BOUND_SECONDS, f"{elapsed:.2f}s"


def test_snapshot_for_connection_caches_in_database_schemas(
    caller: Caller, session: Session, sqlite_target: Path, settings: Settings
) -> None:
    connection = DatabaseConnection(
        user_id=caller.user.id, connection_name="s", db_type="sqlite", db_name=str(sqlite_target)
    )
    session.add(connection)
    session.flush()
    first = snapshot_for_connection(session, connection, settings)
    session.commit()
    count = session.scalar(
        select(func.count()).where(DatabaseSchema.connection_id == connection.id)
    )
    assert count == 2
    sqlite_target.unlink()  # the second call must not touch the database
    second = snapshot_for_connection(session, connection, settings)
    assert second == first
