"""What a SQL run (`POST /query/sql`) and a template run record, statement by statement.

Recording a run is its analytics row and its event: on PostgreSQL one statement (the
analytics row as a data-modifying common table expression of the event's INSERT) sent outside
a transaction, no BEGIN or COMMIT round trips; on SQLite one INSERT per row in one short
transaction. More is a regression, fewer an improvement to write down here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller, make_caller
from tests.support.statements import platform_statements

RECORDING_WRITES = {"postgresql": ["WITH"], "sqlite": ["INSERT", "INSERT"]}


def _writes_during(app: FastAPI, send: Callable[[], Response]) -> tuple[Response, list[Any]]:
    with platform_statements(app.state.engine) as seen:
        response = send()
    return response, [s for s in seen if s[0] != "SELECT"]


def _recorded(session: Session, query_id: str) -> tuple[QueryAnalytics, Event]:
    session.expire_all()
    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == query_id)
    ).one()
    events = [
        e
        for e in session.scalars(
            select(Event).where(Event.event_type.in_(["sql_ran", "template_ran"]))
        )
        if (e.event_data or {}).get("query_id") == query_id
    ]
    assert len(events) == 1, events
    return analytics, events[0]


def _check_writes(app: FastAPI, writes: list[tuple[str, bool]]) -> None:
    backend = app.state.engine.dialect.name
    assert [w for w, _ in writes] == RECORDING_WRITES[backend], writes
    if backend == "postgresql":
        assert all(autocommit for _, autocommit in writes), writes


def _run_sql(client: TestClient, caller: Caller, sql: str) -> Response:
    return client.post(
        "/api/v1/query/sql",
        json={"connection_id": caller.connection_id, "sql": sql},
        headers=caller.headers,
    )


def test_a_sql_run_is_recorded_in_one_statement(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    # The first run introspects and caches the schema (writes of its own).
    assert _run_sql(client, caller, "SELECT 1").status_code == 200
    response, writes = _writes_during(
        app, lambda: _run_sql(client, caller, "SELECT id, country FROM customers")
    )
    assert response.status_code == 200, response.text
    _check_writes(app, writes)
    analytics, ran = _recorded(session, response.json()["query_id"])
    assert (analytics.source, analytics.success, analytics.connection_id) == (
        "sql",
        True,
        caller.connection_id,
    )
    assert analytics.created_at is not None and ran.timestamp is not None
    assert ran.event_type == "sql_ran" and ran.user_id == analytics.user_id


def test_a_failed_sql_run_is_recorded_in_one_statement_too(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    assert _run_sql(client, caller, "SELECT 1").status_code == 200
    response, writes = _writes_during(
        app, lambda: _run_sql(client, caller, "SELECT no_such_column FROM customers")
    )
    assert response.status_code >= 400, response.text
    _check_writes(app, writes)
    query_id = response.json()["error"]["details"]["query_id"]
    analytics, ran = _recorded(session, query_id)
    assert analytics.success is False and analytics.error_code
    assert (ran.event_data or {})["success"] is False


def test_a_template_run_is_recorded_in_one_statement(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    created = client.post(
        "/api/v1/templates",
        json={
            "name": "Customers of a country",
            "question_template": "customers in {country}",
            "sql_template": "SELECT id FROM customers WHERE country = :country",
            "parameters": [{"name": "country"}],
            "connection_id": caller.connection_id,
        },
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    run_url = f"/api/v1/templates/{created.json()['id']}/run"
    body = {"parameters": {"country": "France"}}
    assert client.post(run_url, json=body, headers=caller.headers).status_code == 200
    response, writes = _writes_during(
        app, lambda: client.post(run_url, json=body, headers=caller.headers)
    )
    assert response.status_code == 200, response.text
    # The use is counted in the run's read phase, before the query runs: one UPDATE there.
    recording = [w for w in writes if w[0] != "UPDATE"]
    _check_writes(app, recording)
    analytics, ran = _recorded(session, response.json()["query_id"])
    assert (analytics.source, analytics.generator) == ("template", "template")
    assert ran.event_type == "template_ran"
    assert (ran.event_data or {})["parameters"] == {"country": "France"}
