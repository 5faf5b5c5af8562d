"""A database file swapped for a symlink after the connection was saved is not followed: the
path is confined again at every open, not only when the connection was created."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.connections.engines import engine_cache
from backend.connections.errors import ConnectionPathNotAllowed, TargetDatabaseError
from backend.connections.executor import run_on_connection
from backend.connections.models import DatabaseConnection
from backend.connections.paths import (
    PathConfinement,
    file_identity,
    open_confined_locking,
    whole_file_locks,
)
from backend.core.config import Settings
from tests.connections.conftest import build_duckdb, build_sqlite, connection_for

SQL = "SELECT name FROM customers ORDER BY id LIMIT 1"


def _outside(tmp_path: Path, db_type: str) -> Path:
    outside_dir = tmp_path / "outside"
    outside_dir.mkdir()
    path = outside_dir / f"secret.{db_type}"
    if db_type == "sqlite":
        build_sqlite(path)
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE customers SET name = 'OUTSIDE'")
    else:
        import duckdb

        build_duckdb(path)
        conn = duckdb.connect(str(path))
        conn.execute("UPDATE customers SET name = 'OUTSIDE'")
        conn.close()
    return path


def _inside(db_dir: Path, db_type: str) -> Path:
    path = db_dir / f"shop.{db_type}"
    return build_sqlite(path) if db_type == "sqlite" else build_duckdb(path)


def _first_name(connection: DatabaseConnection, settings: Settings) -> object:
    # Closing the pooled connections makes the next query open the file again.
    engine_cache.get(connection, settings).dispose()
    return run_on_connection(
        connection, SQL, settings=settings, row_cap=1, timeout_seconds=10
    ).rows[0][0]


@pytest.mark.parametrize("db_type", ["sqlite", "duckdb"])
def test_a_file_replaced_by_a_symlink_is_refused_at_the_next_open(
    plain_settings: Settings, db_dir: Path, tmp_path: Path, db_type: str
) -> None:
    inside = _inside(db_dir, db_type)
    outside = _outside(tmp_path, db_type)
    connection = connection_for(plain_settings, db_type, path=inside)
    assert _first_name(connection, plain_settings) == "Ann"

    inside.rename(inside.with_suffix(".bak"))
    inside.symlink_to(outside)
    with pytest.raises(ConnectionPathNotAllowed):
        _first_name(connection, plain_settings)


@pytest.mark.parametrize("db_type", ["sqlite", "duckdb"])
def test_concurrent_queries_while_the_file_is_swapped_never_read_the_outside_file(
    plain_settings: Settings, db_dir: Path, tmp_path: Path, db_type: str
) -> None:
    inside = _inside(db_dir, db_type)
    backup = inside.with_suffix(".bak")
    outside = _outside(tmp_path, db_type)
    connection = connection_for(plain_settings, db_type, path=inside)
    assert _first_name(connection, plain_settings) == "Ann"

    stop = threading.Event()
    seen: list[object] = []
    refused: list[BaseException] = []
    lock = threading.Lock()

    def swap() -> None:
        while not stop.is_set():
            os.rename(inside, backup)
            os.symlink(outside, inside)
            os.unlink(inside)
            os.rename(backup, inside)

    def query() -> None:
        for _ in range(15):
            try:
                name = _first_name(connection, plain_settings)
            except (ConnectionPathNotAllowed, TargetDatabaseError) as exc:
                with lock:
                    refused.append(exc)
            else:
                with lock:
                    seen.append(name)

    swapper = threading.Thread(target=swap)
    workers = [threading.Thread(target=query) for _ in range(12)]
    swapper.start()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    stop.set()
    swapper.join()
    assert "OUTSIDE" not in seen, (seen.count("OUTSIDE"), len(seen))
    assert set(seen) <= {"Ann"}
    assert len(seen) + len(refused) == 12 * 15


def _duckdb_open(path: Path) -> Callable[[], Any]:
    import duckdb

    return lambda: duckdb.connect(str(path), read_only=True)


def test_a_duckdb_open_that_reached_another_file_through_a_swap_and_back_is_refused(
    plain_settings: Settings, db_dir: Path, tmp_path: Path
) -> None:
    # The worst schedule of the race above, made certain: the file is a link to the outside
    # file exactly while DuckDB opens it, and the same regular file again before and after.
    inside = _inside(db_dir, "duckdb")
    backup = inside.with_suffix(".bak")
    outside = _outside(tmp_path, "duckdb")
    confinement = PathConfinement.from_settings(plain_settings)
    open_plain = _duckdb_open(inside)

    def open_during_a_swap() -> Any:
        os.rename(inside, backup)
        os.symlink(outside, inside)
        try:
            return open_plain()
        finally:
            os.unlink(inside)
            os.rename(backup, inside)

    closed: list[Any] = []
    with pytest.raises(ConnectionPathNotAllowed, match="replaced while opening"):
        open_confined_locking(confinement, str(inside), open_during_a_swap, closed.append)
    assert len(closed) == 1  # the engine's handle on the outside file was closed

    connection = open_confined_locking(confinement, str(inside), open_plain, lambda c: c.close())
    try:
        assert connection.execute(SQL).fetchone() == ("Ann",)
    finally:
        connection.close()


def test_the_locks_of_an_open_duckdb_file_name_that_file(db_dir: Path) -> None:
    path = _inside(db_dir, "duckdb")
    identity = file_identity(os.stat(path))
    before = whole_file_locks()
    if before is None:
        pytest.skip("this system does not list its file locks")
    assert identity not in before
    connection = _duckdb_open(path)()
    try:
        during = whole_file_locks()
        assert during is not None and identity in during
        # A second connection reuses the open database: no second lock, nothing new.
        again = _duckdb_open(path)()
        assert whole_file_locks() == during
        again.close()
    finally:
        connection.close()
    after = whole_file_locks()
    assert after is not None and identity not in after
