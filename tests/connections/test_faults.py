"""Faults of a target database through real HTTP: the server down, the query's session killed
by another one, the query stuck past the statement timeout. Each answers its documented status
and kind, is recorded (analytics row and event), and the next request works."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, create_engine, select, text
from sqlalchemy.orm import Session

from backend.admin.models import SystemConfig
from backend.observability.event_types import EventType
from backend.observability.models import Event, QueryAnalytics
from tests.connections.conftest import Caller, ServerTarget

URL = "/api/v1/connections"
SQL_URL = "/api/v1/query/sql"
COUNT = "SELECT count(*) AS n FROM customers"


def _connection(client: TestClient, caller: Caller, target: ServerTarget, **overrides: Any) -> str:
    body = {
        "connection_name": f"pg{len(overrides)}{overrides.get('db_port', '')}",
        "db_type": "postgresql",
        "db_host": target.host,
        "db_port": target.port,
        "db_user": target.user,
        "db_password": target.password,
        "db_name": target.database,
        "options": {"sslmode": "disable"},
        **overrides,
    }
    response = client.post(URL, json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _run(client: TestClient, caller: Caller, cid: str, sql: str = COUNT) -> Any:
    return client.post(SQL_URL, json={"connection_id": cid, "sql": sql}, headers=caller.headers)


def _recorded(session: Session, caller: Caller) -> list[tuple[bool, str | None]]:
    session.expire_all()
    rows = session.scalars(
        select(QueryAnalytics)
        .where(QueryAnalytics.user_id == caller.user.id)
        .order_by(QueryAnalytics.timestamp, QueryAnalytics.id)
    ).all()
    events = session.scalars(
        select(Event).where(Event.user_id == caller.user.id, Event.event_type == EventType.SQL_RAN)
    ).all()
    assert sorted(str(e.event_data["query_id"]) for e in events if e.event_data) == sorted(
        r.query_id for r in rows
    )
    return [(r.success, r.error_code) for r in rows]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def locked_customers(pg_target: ServerTarget) -> Iterator[Connection]:
    """Another session holding an exclusive lock on `customers` (until it rolls back)."""
    engine = create_engine(pg_target.admin_url)
    conn = engine.connect()
    conn.execute(text("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE"))
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()
        engine.dispose()


def test_a_target_server_that_is_down_answers_502_unreachable_and_is_recorded(
    client: TestClient, caller: Caller, session: Session, pg_target: ServerTarget
) -> None:
    down = _connection(client, caller, pg_target, db_port=_closed_port())
    response = _run(client, caller, down)
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["details"]["kind"] == "unreachable" and "reason" not in error["details"]
    up = _connection(client, caller, pg_target)
    assert _run(client, caller, up).json()["rows"] == [[3]]
    assert _recorded(session, caller) == [(False, "target_database_error"), (True, None)]


def test_a_query_killed_from_another_session_answers_502_and_the_next_one_works(
    client: TestClient, caller: Caller, session: Session, pg_target: ServerTarget
) -> None:
    cid = _connection(client, caller, pg_target)
    # Takes the schema snapshot and pools a connection before the table is locked.
    assert _run(client, caller, cid, "SELECT 1 AS one").status_code == 200
    with locked_customers(pg_target) as lock:
        response = _killed_while_waiting(client, caller, cid, lock, pg_target)
    assert response.status_code == 502, response.text
    assert response.json()["error"]["details"]["kind"] == "connection_lost"
    after = _run(client, caller, cid)
    assert after.status_code == 200, after.text
    assert after.json()["rows"] == [[3]]
    assert _recorded(session, caller) == [
        (True, None),
        (False, "target_database_error"),
        (True, None),
    ]


def _killed_while_waiting(
    client: TestClient, caller: Caller, cid: str, lock: Connection, pg_target: ServerTarget
) -> Any:
    answers: list[Any] = []
    waiting = threading.Thread(target=lambda: answers.append(_run(client, caller, cid)))
    waiting.start()
    killed = 0
    deadline = time.monotonic() + 10
    while not killed and time.monotonic() < deadline:
        killed = len(
            lock.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND usename = :user "
                    "AND wait_event_type = 'Lock'"
                ),
                {"user": pg_target.user},
            ).all()
        )
        time.sleep(0.05)
    waiting.join(timeout=30)
    assert killed == 1
    return answers[0]


def test_a_query_past_the_statement_timeout_answers_504_and_the_next_one_works(
    client: TestClient, caller: Caller, session: Session, pg_target: ServerTarget
) -> None:
    cid = _connection(client, caller, pg_target)
    assert _run(client, caller, cid, "SELECT 1 AS one").status_code == 200
    session.add(SystemConfig(config_key="query.statement_timeout_seconds", config_value=1))
    session.commit()
    with locked_customers(pg_target):
        started = time.monotonic()
        response = _run(client, caller, cid)
        elapsed = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["details"]["kind"] == "timeout"
    assert elapsed < 1 + 4, elapsed
    after = _run(client, caller, cid)
    assert after.status_code == 200, after.text
    assert _recorded(session, caller) == [
        (True, None),
        (False, "target_database_timeout"),
        (True, None),
    ]
