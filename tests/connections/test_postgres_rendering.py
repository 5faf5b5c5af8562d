"""SQL the platform renders for PostgreSQL runs on PostgreSQL.

sqlglot writes PostgreSQL's `current_time` back as `CURRENT_TIME()`, which PostgreSQL refuses
(a syntax error): the guard re-renders every query it accepts, so a question answered with the
time of day failed on PostgreSQL targets."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlglot
from sqlalchemy import create_engine

from backend.connections.executor import run_on_connection
from backend.connections.introspection import introspect
from backend.core.config import Settings
from backend.nl2sql.guard import guard_sql
from tests.connections.conftest import ServerTarget, connection_for

QUERIES = [
    "SELECT current_time AS now FROM customers ORDER BY id LIMIT 1",
    "SELECT CURRENT_TIME(0) AS now FROM customers ORDER BY id LIMIT 1",
    "SELECT id FROM customers WHERE current_time > TIME '00:00' ORDER BY id LIMIT 1",
]


@pytest.mark.parametrize("sql", QUERIES)
def test_current_time_is_rendered_as_postgresql_writes_it(sql: str) -> None:
    rendered = sqlglot.parse_one(sql, read="postgres").sql(dialect="postgres")
    assert "CURRENT_TIME()" not in rendered.upper()


@pytest.mark.parametrize("sql", QUERIES)
def test_guarded_current_time_runs_on_postgresql(
    sql: str, plain_settings: Settings, request: pytest.FixtureRequest
) -> None:
    server: ServerTarget = request.getfixturevalue("pg_target")
    engine = create_engine(server.admin_url)
    try:
        snapshot = introspect(engine, db_type="postgresql", database_name=server.database)
    finally:
        engine.dispose()
    guarded = guard_sql(sql, snapshot=snapshot, dialect="postgresql", row_cap=10)

    result = run_on_connection(
        connection_for(plain_settings, "postgresql", server=server),
        guarded.sql,
        settings=plain_settings,
        row_cap=10,
        timeout_seconds=10,
    )

    assert result.row_count == 1
    value = result.rows[0][0]
    if result.columns[0].name == "now":
        # A time of day (with its zone) as the answer shows it.
        assert isinstance(value, str)
        assert dt.time.fromisoformat(value.split("+")[0].split("-")[0])
