"""`GET /query/{query_id}/export?format=csv` over HTTP: every row (not the capped preview), as
CSV, streamed; only the owner's queries; audited; clear errors."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.connections import service as connections_service
from backend.core.config import DEMO_DIR, Settings
from backend.demo import DEMO_DB_PATH
from backend.observability.models import AuditLog, Event
from tests.chat.conftest import Caller, make_api_key_headers, set_config

SQL_URL = "/api/v1/query/sql"


@pytest.fixture
def targets(tmp_path: Path) -> Path:
    path = tmp_path / "targets"
    path.mkdir()
    return path


@pytest.fixture
def settings(settings: Settings, targets: Path) -> Settings:
    """Connections may also use files in `targets` (databases built by the tests)."""
    return settings.model_copy(update={"sqlite_allowed_dirs": [DEMO_DIR, targets.resolve()]})


ORDERS = "SELECT id, customer_id, status, order_date FROM orders ORDER BY id"


def _run_sql(client: TestClient, caller: Caller, sql: str) -> dict[str, Any]:
    response = client.post(
        SQL_URL, json={"connection_id": caller.connection_id, "sql": sql}, headers=caller.headers
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _export(client: TestClient, caller: Caller, query_id: str, **params: str) -> Any:
    return client.get(f"/api/v1/query/{query_id}/export", params=params, headers=caller.headers)


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _expected(sql: str) -> list[list[str]]:
    with sqlite3.connect(DEMO_DB_PATH) as conn:
        cursor = conn.execute(sql)
        header = [d[0] for d in cursor.description]
        return [header] + [["" if v is None else str(v) for v in row] for row in cursor]


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return dict(error)


def test_export_streams_every_row_beyond_the_row_cap_as_csv(
    client: TestClient, session: Session, caller: Caller
) -> None:
    set_config(session, "query.row_cap", 25)
    preview = _run_sql(client, caller, ORDERS)
    assert preview["row_count"] == 25 and preview["truncated"] is True

    with client.stream(
        "GET", f"/api/v1/query/{preview['query_id']}/export?format=csv", headers=caller.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert (
            response.headers["content-disposition"]
            == f'attachment; filename="query-{preview["query_id"]}.csv"'
        )
        body = b"".join(response.iter_bytes()).decode()

    rows = _csv(body)
    assert len(rows) == 3200 + 1
    assert rows == _expected(ORDERS)
    session.expire_all()
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "query.export")).one()
    assert audit.user_id == caller.user_id and audit.resource_id == preview["query_id"]
    assert audit.success is True
    event = session.scalars(select(Event).where(Event.event_type == "exported")).one()
    assert event.event_data is not None
    assert event.event_data["rows"] == 3200 and event.event_data["success"] is True


def test_the_querys_own_limit_is_kept(client: TestClient, session: Session, caller: Caller) -> None:
    set_config(session, "query.row_cap", 10)
    small = _run_sql(client, caller, "SELECT id FROM orders ORDER BY id LIMIT 7")
    over_cap = _run_sql(client, caller, "SELECT id FROM orders ORDER BY id LIMIT 40")
    assert over_cap["row_count"] == 10

    assert len(_csv(_export(client, caller, small["query_id"]).text)) == 1 + 7
    assert len(_csv(_export(client, caller, over_cap["query_id"]).text)) == 1 + 40


def test_values_are_written_as_csv_quotes_commas_and_nulls(
    client: TestClient, caller: Caller
) -> None:
    ran = _run_sql(
        client,
        caller,
        "SELECT 'a, \"quoted\" value' AS text, NULL AS missing, 1.5 AS num FROM orders LIMIT 1",
    )
    rows = _csv(_export(client, caller, ran["query_id"]).text)
    assert rows == [["text", "missing", "num"], ['a, "quoted" value', "", "1.5"]]


def test_cells_that_start_like_formulas_are_neutralised_like_the_admin_exports(
    client: TestClient, caller: Caller
) -> None:
    ran = _run_sql(
        client,
        caller,
        "SELECT '=1+2' AS \"=f\", '+x' AS plus, '-y' AS minus, '@z' AS at, "
        "char(9) || 't' AS tab, -3 AS negative FROM orders LIMIT 1",
    )
    rows = _csv(_export(client, caller, ran["query_id"]).text)
    assert rows == [
        ["'=f", "plus", "minus", "at", "tab", "negative"],
        ["'=1+2", "'+x", "'-y", "'@z", "'\tt", "-3"],
    ]


def test_a_single_column_of_nulls_and_empty_text_keeps_its_lines(
    client: TestClient, caller: Caller
) -> None:
    ran = _run_sql(
        client,
        caller,
        "SELECT CASE WHEN id % 2 = 0 THEN NULL ELSE '' END AS v FROM orders ORDER BY id LIMIT 4",
    )
    # As the csv module writes it: the one empty cell quoted, so no line is blank.
    assert _export(client, caller, ran["query_id"]).text == 'v\r\n""\r\n""\r\n""\r\n""\r\n'


def test_floats_are_written_as_python_writes_them(client: TestClient, caller: Caller) -> None:
    ran = _run_sql(
        client,
        caller,
        "SELECT 1.0 AS one, 1e16 AS big, 0.00001 AS tiny, 0.1 + 0.2 AS sum, 2 AS two, "
        "1e308 * 10 AS inf FROM orders LIMIT 1",
    )
    rows = _csv(_export(client, caller, ran["query_id"]).text)
    assert rows[1] == ["1.0", "1e+16", "1e-05", "0.30000000000000004", "2", ""]


def test_an_empty_result_exports_its_header(client: TestClient, caller: Caller) -> None:
    ran = _run_sql(client, caller, "SELECT id, status FROM orders WHERE id < 0")
    assert _export(client, caller, ran["query_id"]).text == "id,status\r\n"


def test_a_template_run_exports_with_its_bound_values(
    client: TestClient, session: Session, caller: Caller
) -> None:
    set_config(session, "query.row_cap", 5)
    template = client.post(
        "/api/v1/templates",
        json={
            "name": "Orders of a status",
            "question_template": "orders that are {status}",
            "sql_template": "SELECT id, status FROM orders WHERE status = :status ORDER BY id",
            "parameters": [{"name": "status", "type": "string"}],
            "connection_id": caller.connection_id,
        },
        headers=caller.headers,
    ).json()
    ran = client.post(
        f"/api/v1/templates/{template['id']}/run",
        json={"parameters": {"status": "shipped"}},
        headers=caller.headers,
    ).json()
    assert ran["row_count"] == 5

    rows = _csv(_export(client, caller, ran["query_id"]).text)

    assert rows == _expected("SELECT id, status FROM orders WHERE status = 'shipped' ORDER BY id")
    assert len(rows) > 6


def test_only_the_owner_may_export(
    client: TestClient, caller: Caller, other_caller: Caller
) -> None:
    ran = _run_sql(client, caller, ORDERS)
    _error(_export(client, other_caller, ran["query_id"]), 404, "query_not_found")
    _error(_export(client, caller, "no-such-query"), 404, "query_not_found")


def test_an_unknown_format_is_422(client: TestClient, caller: Caller) -> None:
    ran = _run_sql(client, caller, ORDERS)
    _error(_export(client, caller, ran["query_id"], format="xlsx"), 422, "validation_error")


def test_a_failed_query_cannot_be_exported(client: TestClient, caller: Caller) -> None:
    failed = client.post(
        SQL_URL,
        json={"connection_id": caller.connection_id, "sql": "SELECT nope FROM orders"},
        headers=caller.headers,
    )
    assert failed.status_code == 502
    query_id = failed.json()["error"]["details"]["query_id"]
    error = _error(_export(client, caller, query_id), 409, "export_not_possible")
    assert "failed" in error["message"]


def test_a_database_failure_at_export_time_is_a_clear_error_and_audited(
    client: TestClient, session: Session, caller: Caller, targets: Path
) -> None:
    target = targets / "gone.sqlite"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    connection = connections_service.ensure_sqlite_connection(
        session, user_id=caller.user_id, connection_name="gone", path=str(target)
    )
    session.commit()
    ran = client.post(
        SQL_URL,
        json={"connection_id": connection.id, "sql": "SELECT id FROM t"},
        headers=caller.headers,
    )
    assert ran.status_code == 200, ran.text
    with sqlite3.connect(target) as conn:
        conn.execute("ALTER TABLE t RENAME COLUMN id TO other")

    response = _export(client, caller, ran.json()["query_id"])

    _error(response, 502, "target_database_error")
    session.expire_all()
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "query.export")).one()
    assert audit.success is False


def test_an_api_key_needs_the_query_scope(
    client: TestClient, session: Session, caller: Caller
) -> None:
    ran = _run_sql(client, caller, ORDERS)
    reader = make_api_key_headers(session, caller, scopes=["chat:read"])
    response = client.get(f"/api/v1/query/{ran['query_id']}/export", headers=reader)
    _error(response, 403, "forbidden")
    allowed = make_api_key_headers(session, caller, scopes=["query:sql"])
    assert client.get(f"/api/v1/query/{ran['query_id']}/export", headers=allowed).status_code == 200


@pytest.mark.parametrize("rows", [50_000])
def test_a_large_export_delivers_every_row(
    client: TestClient, session: Session, caller: Caller, targets: Path, rows: int
) -> None:
    """A bounded slice of the 1,000,000-row benchmark (scripts/bench/bench_export.py)."""
    target = targets / "big.sqlite"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, label TEXT, value REAL)")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO big SELECT i, 'row-' || i, i * 0.5 FROM n",
            (rows,),
        )
    connection = connections_service.ensure_sqlite_connection(
        session, user_id=caller.user_id, connection_name="big", path=str(target)
    )
    session.commit()
    ran = client.post(
        SQL_URL,
        json={
            "connection_id": connection.id,
            "sql": "SELECT id, label, value FROM big ORDER BY id",
        },
        headers=caller.headers,
    ).json()

    count = 0
    last: list[str] = []
    with client.stream(
        "GET", f"/api/v1/query/{ran['query_id']}/export", headers=caller.headers
    ) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line:
                count += 1
                last = line.split(",")
    assert count == rows + 1
    assert last == [str(rows), f"row-{rows}", str(rows * 0.5)]


def test_the_contract_lists_export_and_template_run(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    export = paths["/api/v1/query/{query_id}/export"]["get"]
    assert "text/csv" in export["responses"]["200"]["content"]
    assert {"404", "409", "422"} <= set(export["responses"])
    run = paths["/api/v1/templates/{template_id}/run"]["post"]
    assert run["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "QueryResultRead"
    )
