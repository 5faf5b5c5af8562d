"""Bound parameters on real SQLite, DuckDB, PostgreSQL and MariaDB targets: values are data,
`%` and `:word` inside the SQL's own literals survive, nothing is pasted into the text."""

from __future__ import annotations

import pytest

from backend.connections.errors import TargetDatabaseError
from backend.connections.executor import (
    bind_named_parameters,
    run_on_connection,
    stream_on_connection,
)
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings

BY_NAME = "SELECT id, name FROM customers WHERE name = :name ORDER BY id"
HOSTILE = [
    "x'; DROP TABLE customers; --",
    "Ann' OR '1'='1",
    "Ann' UNION SELECT id, password_hash FROM customers --",
    "%(name)s",
    ":name",
    "Ann\\",
]


def _rows(connection: DatabaseConnection, settings: Settings, sql: str, **params: object) -> list:
    result = run_on_connection(
        connection, sql, settings=settings, row_cap=100, timeout_seconds=10, params=params
    )
    return result.rows


def test_a_value_selects_its_rows(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    assert _rows(target_connection, plain_settings, BY_NAME, name="Ann") == [[1, "Ann"]]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_are_only_data(
    target_connection: DatabaseConnection, plain_settings: Settings, value: str
) -> None:
    assert _rows(target_connection, plain_settings, BY_NAME, name=value) == []
    # The table is still there and whole.
    assert len(_rows(target_connection, plain_settings, "SELECT id FROM customers")) == 3


def test_percent_and_colon_literals_of_the_sql_survive_binding(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    sql = (
        "SELECT id, 'a:b %' AS lit FROM customers "
        "WHERE country = :country AND name LIKE 'A%' AND id % 2 = 1"
    )
    assert _rows(target_connection, plain_settings, sql, country="France") == [[1, "a:b %"]]


def test_streaming_binds_too(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    chunks = list(
        stream_on_connection(
            target_connection,
            "SELECT id FROM customers WHERE country = :country ORDER BY id",
            settings=plain_settings,
            timeout_seconds=10,
            chunk_size=1,
            params={"country": "France"},
        )
    )
    assert [row for chunk in chunks for row in chunk.rows] == [[1], [3]]


def test_a_placeholder_without_a_value_is_refused() -> None:
    with pytest.raises(TargetDatabaseError) as raised:
        bind_named_parameters(
            "SELECT 1 FROM t WHERE a = :a AND b = :b",
            {"a": 1},
            db_type="postgresql",
            sqlglot_dialect="postgres",
        )
    assert raised.value.details["missing"] == ["b"]


@pytest.mark.parametrize(
    ("db_type", "dialect", "expected"),
    [
        ("sqlite", "sqlite", "SELECT 'x:y %' FROM t WHERE a = :a"),
        ("postgresql", "postgres", "SELECT 'x:y %%' FROM t WHERE a = %(a)s"),
        ("mysql", "mysql", "SELECT 'x:y %%' FROM t WHERE a = %(a)s"),
        ("duckdb", "duckdb", "SELECT 'x:y %' FROM t WHERE a = $a"),
    ],
)
def test_placeholders_take_each_drivers_named_style(
    db_type: str, dialect: str, expected: str
) -> None:
    sql, values = bind_named_parameters(
        "SELECT 'x:y %' FROM t WHERE a = :a",
        {"a": "v", "unused": 1},
        db_type=db_type,
        sqlglot_dialect=dialect,
    )
    assert (sql, values) == (expected, {"a": "v"})
