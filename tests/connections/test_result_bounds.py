"""Results are bounded by bytes as they are fetched: a cap on one value and on the whole result,
with the reason in the answer; a value larger than a whole result is refused by SQLite itself;
memory per request stays near the budget, not near what the query asked for."""

from __future__ import annotations

import json
import os
import sqlite3
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from backend.admin.models import SystemConfig
from backend.connections.errors import QueryResultTooLarge
from backend.connections.executor import run_on_connection
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.observability.models import QueryAnalytics
from tests.connections.conftest import Caller, ServerTarget, connection_for

DOC_ROWS = 120
DOC_CHARS = 40_000
BLOB_BYTES = 30_000
HUGE_CHARS = 3_000_000

_DDL = "CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT, data {blob})"


def _rows() -> list[tuple[int, str, bytes]]:
    return [(i, chr(97 + i % 26) * DOC_CHARS, os.urandom(BLOB_BYTES)) for i in range(DOC_ROWS)]


def build_docs_sqlite(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute(_DDL.format(blob="BLOB"))
        conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", _rows())
        conn.execute("CREATE TABLE huge (id INTEGER PRIMARY KEY, body TEXT)")
        conn.execute("INSERT INTO huge VALUES (1, ?)", ("h" * HUGE_CHARS,))
    return path


def build_docs_duckdb(path: Path) -> Path:
    conn = duckdb.connect(str(path))
    try:
        conn.execute(_DDL.format(blob="BLOB"))
        conn.executemany("INSERT INTO docs VALUES (?, ?, ?)", _rows())
    finally:
        conn.close()
    return path


def build_docs_postgresql(target: ServerTarget) -> None:
    engine = create_engine(target.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("DROP TABLE IF EXISTS docs"))
            conn.execute(text(_DDL.format(blob="BYTEA")))
            conn.execute(
                text("INSERT INTO docs VALUES (:i, :b, :d)"),
                [{"i": i, "b": b, "d": d} for i, b, d in _rows()],
            )
            conn.execute(text(f"GRANT SELECT ON docs TO {target.user}"))
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "duckdb", "postgresql"])
def docs_connection(
    request: pytest.FixtureRequest, plain_settings: Settings, db_dir: Path
) -> DatabaseConnection:
    kind = request.param
    if kind == "sqlite":
        return connection_for(plain_settings, kind, path=build_docs_sqlite(db_dir / "d.sqlite"))
    if kind == "duckdb":
        return connection_for(plain_settings, kind, path=build_docs_duckdb(db_dir / "d.duckdb"))
    target: ServerTarget = request.getfixturevalue("pg_target")
    build_docs_postgresql(target)
    return connection_for(plain_settings, kind, server=target)


def _json_size(rows: list[list[object]]) -> int:
    return len(json.dumps(rows))


def test_the_row_cap_stops_fetching_with_its_reason(
    docs_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    result = run_on_connection(
        docs_connection,
        "SELECT id FROM docs ORDER BY id",
        settings=plain_settings,
        row_cap=10,
        timeout_seconds=10,
    )
    assert result.row_count == 10
    assert (result.truncated, result.truncated_reason) == (True, "row_limit")


def test_the_byte_budget_stops_fetching_with_its_reason(
    docs_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    budget = 200_000
    result = run_on_connection(
        docs_connection,
        "SELECT id, body FROM docs ORDER BY id",
        settings=plain_settings,
        row_cap=1000,
        timeout_seconds=10,
        max_result_bytes=budget,
        max_cell_bytes=100_000,
    )
    # Each row is ~40 kB: four fit in 200 kB, the fifth does not.
    assert result.row_count == budget // DOC_CHARS - (1 if budget % DOC_CHARS == 0 else 0)
    assert (result.truncated, result.truncated_reason) == (True, "byte_limit")
    assert _json_size(result.rows) <= budget
    assert [row[0] for row in result.rows] == list(range(result.row_count))


def test_a_long_value_is_cut_at_the_cell_cap_and_every_row_is_kept(
    docs_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    result = run_on_connection(
        docs_connection,
        "SELECT id, body, data FROM docs WHERE id < 5 ORDER BY id",
        settings=plain_settings,
        row_cap=1000,
        timeout_seconds=10,
        max_cell_bytes=4096,
    )
    assert result.row_count == 5
    assert (result.truncated, result.truncated_reason) == (True, "cell_limit")
    for i, body, data in result.rows:
        assert body == chr(97 + i % 26) * 4096
        assert 4096 - 4 <= len(data) <= 4096  # base64 of the first 3,072 bytes


def test_a_result_within_every_cap_is_not_truncated(
    docs_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    result = run_on_connection(
        docs_connection,
        "SELECT id, body FROM docs WHERE id < 3 ORDER BY id",
        settings=plain_settings,
        row_cap=1000,
        timeout_seconds=10,
    )
    assert (result.row_count, result.truncated, result.truncated_reason) == (3, False, None)
    assert result.rows[2][1] == "c" * DOC_CHARS


def test_sqlite_refuses_a_value_larger_than_the_whole_result(
    plain_settings: Settings, db_dir: Path
) -> None:
    connection = connection_for(
        plain_settings, "sqlite", path=build_docs_sqlite(db_dir / "d.sqlite")
    )
    for sql in ("SELECT body FROM huge", "SELECT randomblob(50000000)"):
        with pytest.raises(QueryResultTooLarge) as caught:
            run_on_connection(
                connection,
                sql,
                settings=plain_settings,
                row_cap=10,
                timeout_seconds=10,
                max_result_bytes=1_000_000,
            )
        assert caught.value.status_code == 422
        assert caught.value.details["kind"] == "result_too_large"
    # The limit is per query: the next one on the same pooled connection reads it whole.
    whole = run_on_connection(
        connection,
        "SELECT length(body) FROM huge",
        settings=plain_settings,
        row_cap=1,
        timeout_seconds=10,
    )
    assert whole.rows == [[HUGE_CHARS]]


def test_postgresql_refuses_a_row_larger_than_the_whole_result_before_sending_it(
    plain_settings: Settings, pg_target: ServerTarget
) -> None:
    connection = connection_for(plain_settings, "postgresql", server=pg_target)
    build_docs_postgresql(pg_target)

    def run(sql: str) -> object:
        return run_on_connection(
            connection,
            sql,
            settings=plain_settings,
            row_cap=10,
            timeout_seconds=20,
            max_result_bytes=1_000_000,
        )

    run("SELECT 1")
    for sql in (
        "SELECT repeat('x', 30000000) AS big",
        "SELECT id, repeat(body, 50) AS big FROM docs ORDER BY id LIMIT 3",
    ):
        caught: list[QueryResultTooLarge] = []

        def attempt(query: str = sql, errors: list[QueryResultTooLarge] = caught) -> None:
            try:
                run(query)
            except QueryResultTooLarge as exc:
                errors.append(exc)

        peak = _peak_bytes(attempt)
        assert caught and caught[0].details["kind"] == "result_too_large", sql
        assert peak < 2_000_000, (sql, peak)
    # Rows within the budget, duplicate column names and the query's order all come through.
    result = run("SELECT id, id, body FROM docs ORDER BY id DESC LIMIT 3")
    assert [row[:2] for row in result.rows] == [[119, 119], [118, 118], [117, 117]]


def _peak_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_of_a_huge_result_stays_near_the_budget(
    docs_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    budget = 256 * 1024

    def run(sql: str) -> object:
        return run_on_connection(
            docs_connection,
            sql,
            settings=plain_settings,
            row_cap=1000,
            timeout_seconds=20,
            max_result_bytes=budget,
        )

    run("SELECT 1")  # opens and pools the connection outside the measurement
    small = _peak_bytes(lambda: run("SELECT id FROM docs WHERE id < 3"))
    # The query asks for ~8.4 MB (3.6 MB of blobs, base64 4.8 MB; 4.8 MB of text).
    big = _peak_bytes(lambda: run("SELECT id, body, data FROM docs ORDER BY id"))
    assert big - small < 6 * budget + 1_000_000, (big, small)


def _set_config(session: Session, key: str, value: object) -> None:
    session.add(SystemConfig(config_key=key, config_value=value))
    session.commit()


def test_query_sql_answers_a_bounded_result_with_its_reason_and_records_it(
    client: TestClient, caller: Caller, session: Session, db_dir: Path
) -> None:
    path = build_docs_sqlite(db_dir / "docs.sqlite")
    _set_config(session, "query.max_result_bytes", 131_072)
    created = client.post(
        "/api/v1/connections",
        json={"connection_name": "docs", "db_type": "sqlite", "db_name": str(path)},
        headers=caller.headers,
    )
    cid = created.json()["id"]
    response = client.post(
        "/api/v1/query/sql",
        json={"connection_id": cid, "sql": "SELECT id, body FROM docs ORDER BY id"},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert (body["truncated"], body["truncated_reason"]) == (True, "byte_limit")
    assert 0 < body["row_count"] < DOC_ROWS
    # The rows are carried once: the chart names them instead of copying them.
    assert len(response.content) < 131_072 + 20_000
    assert body["chart"] is None or body["chart"]["data"] == {"name": "rows"}

    too_big = client.post(
        "/api/v1/query/sql",
        json={"connection_id": cid, "sql": "SELECT body FROM huge"},
        headers=caller.headers,
    )
    assert too_big.status_code == 422, too_big.text
    assert too_big.json()["error"]["code"] == "result_too_large"
    session.expire_all()
    recorded = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.user_id == caller.user.id)
    ).all()
    assert sorted((r.success, r.error_code) for r in recorded) == [
        (False, "result_too_large"),
        (True, None),
    ]
