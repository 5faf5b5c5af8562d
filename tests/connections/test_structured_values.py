"""Structured values (PostgreSQL json/jsonb and arrays, DuckDB lists, structs and maps) come out
as JSON text, in an answer's rows and in the CSV export alike, never as Python's `str()`."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from backend.connections.executor import json_safe
from tests.connections.conftest import Caller, ServerTarget

URL = "/api/v1/connections"


def test_structured_values_are_json_text() -> None:
    import datetime as dt
    import decimal

    assert json_safe({"a": 1, "b": [True, None]}) == '{"a": 1, "b": [true, null]}'
    assert json_safe([1, "x", 2.5]) == '[1, "x", 2.5]'
    assert json_safe(("t", 1)) == '["t", 1]'
    # Leaves are made JSON-safe as a cell is; keys become text; nothing is left as `repr`.
    value = {1: decimal.Decimal("2.50"), "d": dt.date(2024, 2, 29), "n": float("nan")}
    assert json.loads(json_safe(value)) == {"1": 2.5, "d": "2024-02-29", "n": None}
    assert json_safe({"k": b"\x01\x02"}) == '{"k": "AQI="}'
    assert json_safe({"é": "ü"}) == '{"é": "ü"}'
    # A value nested beyond any document a driver hands out is bounded, not a RecursionError.
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    assert isinstance(json_safe(deep), str)


def _cells(export: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(export.decode("utf-8"))))


def _ask_and_export(
    client: TestClient, caller: Caller, connection_id: str, sql: str
) -> tuple[list[list[Any]], list[list[str]]]:
    ran = client.post(
        "/api/v1/query/sql",
        json={"connection_id": connection_id, "sql": sql},
        headers=caller.headers,
    )
    assert ran.status_code == 200, ran.text
    exported = client.get(f"/api/v1/query/{ran.json()['query_id']}/export", headers=caller.headers)
    assert exported.status_code == 200, exported.text
    return ran.json()["rows"], _cells(exported.content)


def test_duckdb_lists_structs_and_maps(client: TestClient, caller: Caller, db_dir: Path) -> None:
    path = db_dir / "nested.duckdb"
    conn = duckdb.connect(str(path))
    try:
        conn.execute(
            "CREATE TABLE t AS SELECT 1 AS id, [1, 2, 3] AS xs, "
            "{'name': 'Ann', 'tags': ['a', 'b']} AS person, MAP {'k': 1.5} AS m"
        )
    finally:
        conn.close()
    created = client.post(
        URL,
        json={"connection_name": "nested", "db_type": "duckdb", "db_name": str(path)},
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    rows, cells = _ask_and_export(
        client, caller, created.json()["id"], "SELECT id, xs, person, m FROM t"
    )
    assert cells[0] == ["id", "xs", "person", "m"]
    for shown in (rows[0][1:], cells[1][1:]):
        xs, person, m = (json.loads(v) for v in shown)
        assert xs == [1, 2, 3]
        assert person == {"name": "Ann", "tags": ["a", "b"]}
        assert m == {"k": 1.5}
    assert rows[0][1:] == cells[1][1:]


def test_postgresql_json_and_arrays(
    client: TestClient, caller: Caller, request: pytest.FixtureRequest
) -> None:
    target: ServerTarget = request.getfixturevalue("pg_target")
    engine = create_engine(target.admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(
            text(
                "CREATE TABLE IF NOT EXISTS structured_docs (id INTEGER PRIMARY KEY, body JSONB, "
                "tags TEXT[], scores FLOAT8[])"
            )
        )
        conn.execute(
            text(
                'INSERT INTO structured_docs VALUES (1, \'{"b": [1, {"c": null}], "a": "x"}\', '
                "ARRAY['red', 'gre,en'], ARRAY[1.5, 'NaN']) ON CONFLICT DO NOTHING"
            )
        )
        owner = conn.execute(
            text("SELECT tableowner FROM pg_tables WHERE tablename = 'structured_docs'")
        )
        del owner
        conn.execute(text(f"GRANT SELECT ON structured_docs TO {target.user}"))
    engine.dispose()
    created = client.post(
        URL,
        json={
            "connection_name": "docs",
            "db_type": "postgresql",
            "db_host": target.host,
            "db_port": target.port,
            "db_user": target.user,
            "db_password": target.password,
            "db_name": target.database,
        },
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    rows, cells = _ask_and_export(
        client, caller, created.json()["id"], "SELECT id, body, tags, scores FROM structured_docs"
    )
    for shown in (rows[0][1:], cells[1][1:]):
        body, tags, scores = (json.loads(v) for v in shown)
        assert body == {"a": "x", "b": [1, {"c": None}]}
        assert tags == ["red", "gre,en"]
        assert scores == [1.5, None]
