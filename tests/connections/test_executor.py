"""The executor on real SQLite, DuckDB, PostgreSQL and MariaDB targets: read-only at the
connection level, row cap, timeout, JSON-safe values, streaming."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from backend.connections.errors import TargetDatabaseError, TargetDatabaseTimeout
from backend.connections.executor import (
    execute_query,
    json_safe,
    open_sqlite_read_only,
    run_on_connection,
    stream_on_connection,
)
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from tests.connections.conftest import build_duckdb, build_sqlite, connection_for

WRITES = [
    "INSERT INTO customers (id, name, country) VALUES (99, 'Eve', 'Italy')",
    "UPDATE customers SET country = 'Peru'",
    "DELETE FROM orders",
    "CREATE TABLE sneaky (id INTEGER)",
]

ESCAPES = [
    # Each tries to leave the read-only transaction before writing, in one call.
    "SET TRANSACTION READ WRITE; INSERT INTO customers (id, name) VALUES (98, 'Mal')",
    "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; COMMIT; "
    "INSERT INTO customers (id, name) VALUES (97, 'Mal')",
    "SET SESSION TRANSACTION READ WRITE; INSERT INTO customers (id, name) VALUES (96, 'Mal')",
    "PRAGMA query_only = OFF; INSERT INTO customers (id, name) VALUES (95, 'Mal')",
]

SLOW = {
    "sqlite": "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
    "SELECT count(*) FROM n",
    "duckdb": "SELECT count(*) FROM range(100000000000) a",
    "postgresql": "SELECT pg_sleep(30)",
    "mysql": "SELECT SLEEP(30)",
}


def _run(connection: DatabaseConnection, settings: Settings, sql: str, **kw: float) -> object:
    return run_on_connection(
        connection,
        sql,
        settings=settings,
        row_cap=int(kw.get("row_cap", 100)),
        timeout_seconds=kw.get("timeout_seconds", 10),
    )


@pytest.mark.parametrize("statement", WRITES)
def test_a_write_is_refused_by_the_database_itself(
    target_connection: DatabaseConnection, plain_settings: Settings, statement: str
) -> None:
    with pytest.raises(TargetDatabaseError) as caught:
        _run(target_connection, plain_settings, statement)
    assert caught.value.status_code == 502
    assert caught.value.details["kind"] == "read_only", caught.value.details
    # Nothing changed: the rows and the tables are as the fixture made them.
    result = run_on_connection(
        target_connection,
        "SELECT count(*) AS n, min(country) AS c FROM customers",
        settings=plain_settings,
        row_cap=10,
        timeout_seconds=10,
    )
    assert result.rows == [[3, "France"]]
    tables = run_on_connection(
        target_connection,
        "SELECT count(*) FROM orders",
        settings=plain_settings,
        row_cap=1,
        timeout_seconds=10,
    )
    assert tables.rows == [[3]]


@pytest.mark.parametrize("statement", ESCAPES)
def test_several_statements_cannot_escape_read_only(
    target_connection: DatabaseConnection, plain_settings: Settings, statement: str
) -> None:
    with pytest.raises(TargetDatabaseError):
        _run(target_connection, plain_settings, statement)
    for follow_up in ("INSERT INTO customers (id, name) VALUES (94, 'Mal')", "SELECT 1"):
        try:  # whatever the failed call left on the pooled connection, writes stay refused
            _run(target_connection, plain_settings, follow_up)
        except TargetDatabaseError as exc:
            assert follow_up.startswith("INSERT") and exc.details["kind"] == "read_only"
    count = run_on_connection(
        target_connection,
        "SELECT count(*) FROM customers",
        settings=plain_settings,
        row_cap=1,
        timeout_seconds=10,
    )
    assert count.rows == [[3]]


@pytest.mark.parametrize(
    "db_type, statement",
    [
        ("sqlite", "ATTACH DATABASE '{outside}' AS other"),
        ("duckdb", "SELECT * FROM read_csv('/etc/passwd')"),
        ("duckdb", "ATTACH '{outside}' AS other"),
        ("duckdb", "COPY customers TO '/tmp/leak.csv'"),
        ("duckdb", "SET enable_external_access = true"),
    ],
)
def test_a_file_database_cannot_reach_other_files(
    plain_settings: Settings, db_dir: Path, tmp_path: Path, db_type: str, statement: str
) -> None:
    build = build_sqlite if db_type == "sqlite" else build_duckdb
    connection = connection_for(plain_settings, db_type, path=build(db_dir / f"f.{db_type}"))
    outside = build(tmp_path / f"outside.{db_type}")  # exists, readable, not allowed
    with pytest.raises(TargetDatabaseError):
        _run(connection, plain_settings, statement.format(outside=outside))
    assert not Path("/tmp/leak.csv").exists()


def test_execute_query_on_an_engine_keeps_working_for_the_demo_database() -> None:
    from backend.demo import DEMO_DB_PATH

    engine = open_sqlite_read_only(DEMO_DB_PATH)
    try:
        result = execute_query(
            engine, "SELECT name FROM categories WHERE name LIKE '%o%' ORDER BY name", row_cap=2
        )
    finally:
        engine.dispose()
    assert result.row_count == 2 and result.truncated is True
    assert [c.name for c in result.columns] == ["name"]


def test_json_safe_values() -> None:
    import datetime as dt
    import decimal
    import uuid

    cases = [
        (decimal.Decimal("2.50"), 2.5),
        (decimal.Decimal("3"), 3),
        (dt.date(2024, 2, 29), "2024-02-29"),
        (dt.time(10, 30), "10:30:00"),
        (dt.timedelta(minutes=1), 60.0),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (b"\x01\x02", "AQI="),
        (float("nan"), None),
        (None, None),
    ]
    for value, expected in cases:
        assert json_safe(value) == expected, value


def test_a_slow_query_is_stopped_by_the_timeout(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    started = time.monotonic()
    with pytest.raises(TargetDatabaseTimeout) as caught:
        run_on_connection(
            target_connection,
            SLOW[target_connection.db_type],
            settings=plain_settings,
            row_cap=10,
            timeout_seconds=1,
        )
    elapsed = time.monotonic() - started
    assert caught.value.status_code == 504
    assert caught.value.details["kind"] == "timeout"
    assert elapsed < 6, f"took {elapsed:.1f}s"
    # The pooled connection is usable again afterwards.
    after = run_on_connection(
        target_connection, "SELECT 1", settings=plain_settings, row_cap=1, timeout_seconds=5
    )
    assert after.rows == [[1]]


def test_rows_are_capped_and_values_json_safe(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    result = run_on_connection(
        target_connection,
        "SELECT customers.id, name, amount FROM customers "
        "JOIN orders ON orders.customer_id = customers.id "
        "ORDER BY orders.id",
        settings=plain_settings,
        row_cap=2,
        timeout_seconds=10,
    )
    assert result.truncated is True
    assert result.row_count == 2
    assert [c.name for c in result.columns] == ["id", "name", "amount"]
    assert all(c.type for c in result.columns), result.columns
    assert result.rows[0][1] == "Ann"
    assert result.rows[0][2] == pytest.approx(10.5)
    assert result.execution_time_ms >= 0


def test_a_query_error_is_a_502_with_the_database_reason(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    with pytest.raises(TargetDatabaseError) as caught:
        _run(target_connection, plain_settings, "SELECT no_such_column FROM customers")
    assert caught.value.details["kind"] == "query_failed"
    assert "no_such_column" in caught.value.details["reason"]


def test_streaming_yields_bounded_chunks(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    chunks = list(
        stream_on_connection(
            target_connection,
            "SELECT id, name FROM customers ORDER BY id",
            settings=plain_settings,
            timeout_seconds=10,
            chunk_size=2,
        )
    )
    assert [len(c.rows) for c in chunks] == [2, 1]
    assert [c.name for c in chunks[0].columns] == ["id", "name"]
    assert [r[1] for c in chunks for r in c.rows] == ["Ann", "Bob", "Cid"]


def test_postgresql_values_of_many_types_are_json_safe(
    plain_settings: Settings, request: pytest.FixtureRequest
) -> None:
    from tests.connections.conftest import connection_for

    connection = connection_for(
        plain_settings, "postgresql", server=request.getfixturevalue("pg_target")
    )
    result = run_on_connection(
        connection,
        "SELECT 1.25::numeric AS d, DATE '2024-02-29' AS day, TIME '10:30' AS t, "
        "'00000000-0000-0000-0000-000000000001'::uuid AS u, '\\x0102'::bytea AS b, "
        "TIMESTAMPTZ '2024-01-01 12:00+00' AS ts, 'a:b %s' AS s",
        settings=plain_settings,
        row_cap=1,
        timeout_seconds=10,
    )
    assert result.rows == [
        [
            1.25,
            "2024-02-29",
            "10:30:00",
            "00000000-0000-0000-0000-000000000001",
            "AQI=",
            "2024-01-01T12:00:00+00:00",
            "a:b %s",
        ]
    ]
    types = {c.name: c.type for c in result.columns}
    assert types["d"] == "numeric" and types["day"] == "date" and types["u"] == "uuid"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT role FROM customers",  # PostgreSQL: column "role" does not exist
        "SELECT missing_database FROM customers",
        "SELECT role_of(1) FROM customers",  # DuckDB: function with name role_of does not exist
        "SELECT * FROM customers WHERE name = 1 / 0 + role",
    ],
)
def test_a_query_error_is_the_querys_whatever_its_text_says(
    target_connection: DatabaseConnection, plain_settings: Settings, statement: str
) -> None:
    # An error of the SQL mentioning roles, databases or passwords is still the SQL's error
    # (repairable), never a refused login or a missing database.
    with pytest.raises(TargetDatabaseError) as caught:
        _run(target_connection, plain_settings, statement)
    assert caught.value.status_code == 502
    assert caught.value.details["kind"] == "query_failed", caught.value.details


def test_a_duckdb_target_runs_under_its_memory_limit_without_spilling_which_no_query_can_lift(
    plain_settings: Settings, db_dir: Path
) -> None:
    # DuckDB runs inside the platform's process; its own default is 80 % of the machine's memory.
    connection = connection_for(plain_settings, "duckdb", path=build_duckdb(db_dir / "m.duckdb"))
    shown = _run(connection, plain_settings, "SELECT current_setting('memory_limit') AS m")
    assert shown.rows[0][0] == "1.8 GiB"  # type: ignore[attr-defined]  # DUCKDB_MEMORY_LIMIT, 2 GB
    with pytest.raises(TargetDatabaseError):
        _run(connection, plain_settings, "SET memory_limit = '20GB'")
    # Nor does it spill to disk: by default a big sort writes `<database>.tmp` beside the file.
    spill = _run(connection, plain_settings, "SELECT current_setting('temp_directory') AS d")
    assert spill.rows == [[""]]  # type: ignore[attr-defined]
    with pytest.raises(TargetDatabaseError):
        _run(connection, plain_settings, "SET temp_directory = '/tmp'")


def test_a_query_past_the_databases_memory_or_size_limits_says_so_and_may_be_rewritten(
    plain_settings: Settings, request: pytest.FixtureRequest
) -> None:
    """Out of memory, of temporary space or of a size limit is its own kind (was `query_failed`,
    read as the SQL's own error text): the user is told to ask for less, and a model that wrote
    the SQL is given it to write a smaller query."""
    from backend.connections.dialects import get_dialect
    from backend.connections.target import target_error
    from backend.nl2sql.errors import is_repairable

    connection = connection_for(
        plain_settings, "postgresql", server=request.getfixturevalue("pg_target")
    )
    with pytest.raises(TargetDatabaseError) as caught:
        # PostgreSQL: 54000 program_limit_exceeded ("requested length too large").
        _run(connection, plain_settings, "SELECT repeat('x', 1073741824) AS big")
    assert caught.value.status_code == 502
    assert caught.value.details == {"kind": "out_of_resources"}
    assert "fewer rows" in caught.value.message and is_repairable(caught.value)

    # DuckDB past its memory limit, with nowhere to spill (a small limit here; targets get 2 GB).
    import duckdb

    duck = duckdb.connect()
    duck.execute("SET memory_limit = '32MB'")
    duck.execute("SET temp_directory = ''")
    with pytest.raises(duckdb.Error) as raised:
        duck.execute(
            "SELECT count(*) FROM (SELECT DISTINCT range, range::VARCHAR FROM range(20000000))"
        ).fetchall()
    mapped = target_error(raised.value, get_dialect("duckdb"))
    assert mapped.status_code == 502 and mapped.details == {"kind": "out_of_resources"}
    assert is_repairable(mapped)
    # An unreachable server or a timeout is still not the SQL's to fix.
    assert not is_repairable(target_error(TimeoutError(), get_dialect("duckdb"), timed_out=True))
