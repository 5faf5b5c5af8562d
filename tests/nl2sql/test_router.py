"""POST /query/sql: user-written SQL through the same guard, executor and recording."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.connections.models import DatabaseConnection
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller, make_api_key_headers

URL = "/api/v1/query/sql"


def _run(client: TestClient, caller: Caller, sql: str, **body: Any) -> Any:
    body.setdefault("connection_id", caller.connection_id)
    return client.post(URL, json={"sql": sql, **body}, headers=caller.headers)


def test_sql_runs_and_is_recorded_as_a_sql_run(
    client: TestClient, session: Session, caller: Caller
) -> None:
    response = _run(
        client,
        caller,
        "SELECT strftime('%Y', order_date) AS year, SUM(shipping_cost) AS shipping "
        "FROM orders GROUP BY year ORDER BY year",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r[0] for r in body["rows"]] == ["2021", "2022", "2023", "2024"]
    assert body["chart_type"] == "line"
    # The row cap is the LIMIT shown; the probe row the platform adds (1001) is not.
    assert body["sql"].endswith("LIMIT 1000")
    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == body["query_id"])
    ).one()
    assert (analytics.source, analytics.success, analytics.question) == ("sql", True, None)
    assert analytics.chart_type == "line"
    assert session.scalars(select(Event.event_type)).all() == ["sql_ran"]


@pytest.mark.parametrize(
    ("sql", "status", "code", "rule"),
    [
        ("DROP TABLE orders", 400, "sql_refused", "read_only_statement"),
        ("SELECT 1; DELETE FROM orders", 400, "sql_refused", "single_statement"),
        ("SELECT * FROM sqlite_master", 400, "sql_refused", "catalog_access"),
        ("SELECT load_extension('x')", 400, "sql_refused", "function_not_allowed"),
        ("SELEC 1", 400, "sql_not_parseable", "parseable_sql"),
        ("SELECT nope FROM orders", 502, "target_database_error", None),
    ],
)
def test_refused_and_failing_sql_are_errors_and_recorded(
    client: TestClient,
    session: Session,
    caller: Caller,
    sql: str,
    status: int,
    code: str,
    rule: str | None,
) -> None:
    response = _run(client, caller, sql)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    if rule:
        assert error["details"]["rule"] == rule
    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == error["details"]["query_id"])
    ).one()
    assert (analytics.success, analytics.error_code, analytics.source) == (False, code, "sql")


def test_literal_colons_survive_the_executor(client: TestClient, caller: Caller) -> None:
    body = _run(client, caller, "SELECT 'at :noon' AS t, '12:30' AS u").json()
    assert body["rows"] == [["at :noon", "12:30"]]
    assert body["chart_type"] == "table"


def test_sql_needs_its_scope_and_the_callers_connection(
    client: TestClient, session: Session, caller: Caller, other_caller: Caller
) -> None:
    no_sql = Caller(
        caller.user_id,
        caller.email,
        make_api_key_headers(session, caller, scopes=["chat:read", "chat:write"]),
        caller.connection_id,
    )
    denied = _run(client, no_sql, "SELECT 1")
    assert denied.status_code == 403
    assert denied.json()["error"]["details"]["missing_scopes"] == ["query:sql"]
    foreign = _run(client, caller, "SELECT 1", connection_id=other_caller.connection_id)
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "connection_not_found"
    assert client.post(URL, json={"sql": "SELECT 1"}, headers=caller.headers).status_code == 422


def test_an_unreachable_database_is_502_and_recorded(
    client: TestClient, session: Session, caller: Caller
) -> None:
    remote = DatabaseConnection(
        user_id=caller.user_id,
        connection_name="warehouse",
        db_type="postgresql",
        db_host="127.0.0.1",
        db_port=1,
        db_user="nobody",
        db_name="dw",
    )
    session.add(remote)
    session.commit()
    response = _run(client, caller, "SELECT 1", connection_id=remote.id)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "target_database_error"
    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == error["details"]["query_id"])
    ).one()
    assert (analytics.success, analytics.error_code) == (False, "target_database_error")
