"""The engine tests' small databases of other domains, loaded into DuckDB and PostgreSQL from
one DDL script and one set of rows, so a rendered SQL shape can be run on each dialect."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlalchemy

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.nl2sql.engines.base import Generation, GenerationRequest
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.evaluation import has_top_level_order, results_match
from backend.semantic.layer import SemanticLayer
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database

Rows = dict[str, list[tuple[Any, ...]]]


def duckdb_loaded(ddl: str, tables: Rows) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect()
    conn.execute(ddl)
    for table, data in tables.items():
        marks = ", ".join("?" * len(data[0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", data)
    return conn


@contextmanager
def postgres_loaded(
    request: pytest.FixtureRequest,
    ddl: str,
    tables: Rows,
    *,
    typed: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda row: row,
) -> Iterator[sqlalchemy.Connection]:
    """A PostgreSQL database of its own holding the rows (skipped when PostgreSQL is not among
    the backends); `typed` converts a row's values for binding (ISO text to dates, say)."""
    if "postgresql" not in BACKENDS:
        pytest.skip("PostgreSQL not among NLSQL_TEST_BACKENDS")
    admin_url: str = request.getfixturevalue("pg_admin_url")
    url = create_pg_database(admin_url)
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in ddl.split(";"):
                if statement.strip():
                    conn.execute(sqlalchemy.text(statement))
            for table, data in tables.items():
                names = [f"v{i}" for i in range(len(data[0]))]
                marks = ", ".join(f":{n}" for n in names)
                conn.execute(
                    sqlalchemy.text(f"INSERT INTO {table} VALUES ({marks})"),
                    [dict(zip(names, typed(row), strict=True)) for row in data],
                )
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()
        drop_pg_database(admin_url, url)


def plain(result: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Numbers as floats, so dialects' int / Decimal / float answers compare equal."""
    return [tuple(float(v) if isinstance(v, int | float) else v for v in r) for r in result]


def generate(
    schema: SchemaSnapshot,
    question: str,
    dialect: str = "sqlite",
    semantic: SemanticLayer | None = None,
) -> Generation:
    """The builtin engine's answer to a first question (no history; a semantic layer if given)."""
    request = GenerationRequest(
        question=question, schema=schema, history=[], semantic=semantic, dialect=dialect
    )
    return BuiltinGenerator().generate(request)


def assert_same_answer(conn: sqlite3.Connection, sql: str, gold: str) -> None:
    """The engine's SQL gives the gold query's result (in its order where the gold orders)."""
    expected = [tuple(r) for r in conn.execute(gold).fetchall()]
    assert expected, f"the gold query returns nothing: {gold}"
    got = [tuple(r) for r in conn.execute(sql).fetchall()]
    assert results_match(expected, got, ordered=has_top_level_order(gold)), (
        f"\n  engine: {sql}\n  gold:   {gold}\n  got {got[:5]}\n  want {expected[:5]}"
    )


def sqlite_loaded(path: Path, ddl: str, tables: Rows) -> Path:
    """A SQLite file at `path` made by the DDL script and holding the rows."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(ddl)
        for table, data in tables.items():
            marks = ", ".join("?" * len(data[0]))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", data)
        conn.commit()
    finally:
        conn.close()
    return path


def sqlite_snapshot(path: Path, name: str) -> SchemaSnapshot:
    """The schema snapshot of a SQLite file, read as the platform reads a connection."""
    engine = open_sqlite_read_only(path)
    try:
        return introspect(engine, db_type="sqlite", database_name=name)
    finally:
        engine.dispose()
