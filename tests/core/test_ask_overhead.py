"""What the ask path costs around its own work, and what it does when the platform is busy.

* An ask reads its caller in its own first transaction (no session and no thread hop for
  authentication apart from it), and still refuses at once a revoked key, an ended session, a
  deactivated user and a missing scope.
* Writers of the embedded database in different processes take turns on a lock file, so a
  writer waits for the other's commit and then goes straight through, instead of sleeping in
  SQLite's busy handler.
* On PostgreSQL a pooled connection is pinged before use only after it sat idle (not on every
  checkout); one the server ended meanwhile is replaced before a request sees it.
* An ask whose query already ran and that meets a platform lock only at recording keeps
  trying its recording (no CPU slot, no connection held between tries) and is recorded exactly
  once when the lock goes; it is not answered 503 with its outcome lost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, func, make_url, select, text
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.chat.models import ChatMessage
from backend.core.config import Settings
from backend.core.db import PING_AFTER_IDLE_SECONDS, create_app_engine
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import make_caller
from tests.factories import create_api_key
from tests.support.statements import BACKGROUND_THREADS

WAIT_SECONDS = 60.0
"""A bound for waits on another thread; the tests normally take well under a second."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"platform_lock_timeout_seconds": 0.3, "record_retry_seconds": WAIT_SECONDS}
    )


@contextmanager
def _recording_blocked(app_db_url: str, chat_id: str) -> Iterator[None]:
    """Another process's view: SQLite's write lock, or on PostgreSQL the chat session's row
    lock (reads go on; the recording's UPDATE of the session waits)."""
    url = make_url(app_db_url)
    if url.get_backend_name() == "sqlite":
        other = sqlite3.connect(str(url.database), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    engine = create_engine(app_db_url)
    try:
        with engine.connect() as conn:
            conn.execute(
                text("SELECT id FROM chat_sessions WHERE id = :id FOR UPDATE"), {"id": chat_id}
            )
            yield
            conn.rollback()
    finally:
        engine.dispose()


class _Heard(logging.Handler):
    """Sets `event` when a log record containing `words` is emitted."""

    def __init__(self, words: str) -> None:
        super().__init__()
        self.words = words
        self.event = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if self.words in record.getMessage():
            self.event.set()


def test_an_ask_that_meets_a_lock_at_recording_is_recorded_once_the_lock_goes(
    client: TestClient, session: Session, settings: Settings, app_db_url: str
) -> None:
    caller = make_caller(session, settings)
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()["id"]
    ask = f"/api/v1/chat/sessions/{chat}/ask"
    # The first ask caches the schema (a write of its own); the next one only reads until it
    # records.
    first = client.post(ask, json={"question": "how many customers"}, headers=caller.headers)
    assert first.status_code == 200, first.text

    heard = _Heard("platform database busy during the recording")
    logging.getLogger("backend").addHandler(heard)
    answered: dict[str, Any] = {}

    def asking() -> None:
        answered["response"] = client.post(
            ask, json={"question": "number of orders per status"}, headers=caller.headers
        )

    try:
        with _recording_blocked(app_db_url, chat):
            worker = threading.Thread(target=asking)
            worker.start()
            # Released as soon as the recording has met the lock once (before the fix the
            # ask answered 503 instead, and was never recorded).
            while not heard.event.wait(0.05):
                if not worker.is_alive():
                    break
        worker.join(WAIT_SECONDS)
    finally:
        logging.getLogger("backend").removeHandler(heard)

    response = answered["response"]
    assert response.status_code == 200, response.text
    assert heard.event.is_set(), "the recording never met the lock"
    query_id = response.json()["query_id"]
    session.expire_all()
    assert session.scalar(select(func.count()).where(QueryAnalytics.query_id == query_id)) == 1
    assert session.scalar(select(func.count()).where(ChatMessage.query_id == query_id)) == 2
    asked = [
        e.event_data
        for e in session.scalars(select(Event).where(Event.event_type == "asked"))
        if (e.event_data or {}).get("query_id") == query_id
    ]
    assert len(asked) == 1
    messages = session.scalars(
        select(ChatMessage.sequence_number)
        .where(ChatMessage.session_id == chat)
        .order_by(ChatMessage.sequence_number)
    ).all()
    assert messages == [1, 2, 3, 4]


def _ask(client: TestClient, chat: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/api/v1/chat/sessions/{chat}/ask",
        json={"question": "how many customers"},
        headers=headers,
    )


def _error_code(response: Any) -> str:
    code: str = response.json()["error"]["code"]
    return code


def test_an_ask_takes_no_platform_connection_for_authentication(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    assert _ask(client, chat, caller.headers).status_code == 200  # caches the schema
    checkouts: list[str] = []

    def checked_out(*_args: Any) -> None:
        name = threading.current_thread().name
        if name not in BACKGROUND_THREADS:
            checkouts.append(name)

    event.listen(app.state.engine, "checkout", checked_out)
    try:
        response = _ask(client, chat, caller.headers)
    finally:
        event.remove(app.state.engine, "checkout", checked_out)
    assert response.status_code == 200, response.text
    # One short read (the caller with everything else the ask needs), one short write.
    assert len(checkouts) == 2, checkouts


def test_an_ask_refuses_bad_or_missing_credentials_before_reading_anything(
    client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    none = _ask(client, chat, {})
    assert none.status_code == 401 and _error_code(none) == "unauthorized", none.text
    forged = _ask(client, chat, {"Authorization": "Bearer not.a.token"})
    assert forged.status_code == 401, forged.text
    unknown_key = _ask(client, chat, {"X-API-Key": "nlsql_nosuchkey"})
    assert unknown_key.status_code == 401, unknown_key.text
    user = session.get(User, caller.user_id)
    assert user is not None
    reader = create_api_key(session, user, scopes=["chat:read"])
    refused = _ask(client, chat, reader.headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["details"] == {"missing_scopes": ["chat:write"]}
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(QueryAnalytics)) == 0


def test_an_ask_refuses_a_revoked_key_an_ended_session_and_a_deactivated_user_at_once(
    client: TestClient,
    session: Session,
    settings: Settings,
    admin_headers: dict[str, str],
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    user = session.get(User, caller.user_id)
    assert user is not None
    key = create_api_key(session, user, scopes=["chat:write"])
    assert _ask(client, chat, key.headers).status_code == 200
    revoked = client.delete(f"/api/v1/api-keys/{key.id}", headers=caller.headers)
    assert revoked.status_code == 204, revoked.text
    after_revoke = _ask(client, chat, key.headers)
    assert after_revoke.status_code == 401, after_revoke.text

    assert _ask(client, chat, caller.headers).status_code == 200
    ended = client.post("/api/v1/auth/logout", headers=caller.headers)
    assert ended.status_code == 204, ended.text
    after_logout = _ask(client, chat, caller.headers)
    assert after_logout.status_code == 401, after_logout.text

    other = make_caller(session, settings)
    other_chat = other.open_chat(client)
    assert _ask(client, other_chat, other.headers).status_code == 200
    deactivated = client.patch(
        f"/api/v1/admin/users/{other.user_id}", json={"is_active": False}, headers=admin_headers
    )
    assert deactivated.status_code == 200, deactivated.text
    after_deactivation = _ask(client, other_chat, other.headers)
    assert after_deactivation.status_code == 401, after_deactivation.text


def test_writers_with_their_own_engines_take_turns_instead_of_meeting_sqlite_busy(
    tmp_path: Path,
) -> None:
    """Two engines on one file stand for two processes: each has its own descriptor of the
    lock file, and `flock` locks of different descriptors exclude each other as those of
    different processes do. The waiting writer's SQLite busy timeout is 0, so had it reached
    SQLite while the other held the write lock, it would have failed at once."""
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    first = create_app_engine(url, lock_timeout_seconds=WAIT_SECONDS)
    second = create_app_engine(url, lock_timeout_seconds=WAIT_SECONDS)
    try:
        with first.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        outcome: dict[str, Any] = {}

        def second_writer() -> None:
            try:
                with second.begin() as conn:
                    conn.exec_driver_sql("PRAGMA busy_timeout=0")
                    conn.execute(text("INSERT INTO t VALUES (2)"))
                outcome["ok"] = True
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcome["error"] = exc

        with first.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            assert (tmp_path / "turns.db-writeturn").exists()
            writer = threading.Thread(target=second_writer)
            writer.start()
            writer.join(0.3)  # it waits for the turn while this transaction is open
            assert writer.is_alive(), outcome
        writer.join(WAIT_SECONDS)
        assert outcome == {"ok": True}
        with first.connect() as conn:
            assert sorted(conn.execute(text("SELECT x FROM t")).scalars()) == [1, 2]
    finally:
        first.dispose()
        second.dispose()


def test_a_pooled_postgresql_connection_ended_while_idle_is_replaced_before_use(
    app_db_url: str,
) -> None:
    if make_url(app_db_url).get_backend_name() != "postgresql":
        pytest.skip("server-side connection ends are PostgreSQL's")
    engine = create_app_engine(app_db_url)
    admin = create_engine(app_db_url)
    try:
        with engine.connect() as conn:
            ended = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": ended})
        time.sleep(PING_AFTER_IDLE_SECONDS + 0.2)  # the pooled connection is now "idle"
        with engine.connect() as conn:
            now = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert now != ended
    finally:
        engine.dispose()
        admin.dispose()


@pytest.fixture
def _no_idle_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pooled connections are never pinged before use, so a connection the server ended reaches
    the request that checks it out (as one ended mid-request would)."""
    monkeypatch.setattr("backend.core.db.PING_AFTER_IDLE_SECONDS", 3600.0)


def test_a_platform_connection_lost_under_a_request_is_503_and_the_next_request_works(
    _no_idle_ping: None, app_db_url: str, client: TestClient, auth_headers: dict[str, str]
) -> None:
    if make_url(app_db_url).get_backend_name() != "postgresql":
        pytest.skip("server-side connection ends are PostgreSQL's")
    headers = auth_headers
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    admin = create_engine(app_db_url)
    try:
        with admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND backend_type = 'client backend'"
                )
            ).scalar_one()
        assert ended >= 1
        response = client.get("/api/v1/auth/me", headers=headers)
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "database_connection_lost"
        assert error["details"]["retry_after_seconds"] == 1
        assert response.headers["Retry-After"] == "1"
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    finally:
        admin.dispose()


def test_an_unauthenticated_caller_gets_401_whatever_its_body(
    client: TestClient, session: Session, settings: Settings
) -> None:
    """Credentials are checked before the body: a bad key, a forged token or none at all is
    401 even when the body is malformed, on the plain and the streamed ask and elsewhere;
    a caller whose credentials hold still gets 422 for the same bodies."""
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    refused = [
        {"X-API-Key": "nlsql_nosuchkey"},
        {"Authorization": "Bearer not.a.token"},
        {},
    ]
    bodies: list[dict[str, Any]] = [
        {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        {"json": {"question": 42, "generator": ["x"]}},
        {"json": {}},
    ]
    paths = [
        f"/api/v1/chat/sessions/{chat}/ask",
        f"/api/v1/chat/sessions/{chat}/ask/stream",
        "/api/v1/connections",
    ]
    for path in paths:
        for body in bodies:
            sent_headers = body.get("headers", {})
            kwargs = {k: v for k, v in body.items() if k != "headers"}
            for headers in refused:
                response = client.post(path, headers={**sent_headers, **headers}, **kwargs)
                assert response.status_code == 401, (path, body, headers, response.text)
                assert _error_code(response) == "unauthorized"
            accepted = client.post(path, headers={**sent_headers, **caller.headers}, **kwargs)
            assert accepted.status_code == 422, (path, body, accepted.text)
            assert _error_code(accepted) == "validation_error"
    # An endpoint open to anyone still validates its body first.
    open_endpoint = client.post("/api/v1/auth/login", json={})
    assert open_endpoint.status_code == 422, open_endpoint.text
    session.expire_all()
    assert session.scalar(select(func.count()).select_from(QueryAnalytics)) == 0


def test_a_streamed_ask_reads_its_caller_in_its_own_read_and_refuses_with_a_status(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    """The streamed ask authenticates in its one read transaction (no session of its own):
    one short read and one short write in all; a refused caller gets 401/403 as a status
    before the stream starts, and a failure of the ask itself still comes as an event."""
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    path = f"/api/v1/chat/sessions/{chat}/ask/stream"
    body = {"question": "how many customers"}
    assert client.post(path, json=body, headers=caller.headers).status_code == 200  # schema
    checkouts: list[str] = []

    def checked_out(*_args: Any) -> None:
        if threading.current_thread().name not in BACKGROUND_THREADS:
            checkouts.append(threading.current_thread().name)

    event.listen(app.state.engine, "checkout", checked_out)
    try:
        streamed = client.post(path, json=body, headers=caller.headers)
    finally:
        event.remove(app.state.engine, "checkout", checked_out)
    assert streamed.status_code == 200, streamed.text
    assert "event: understood" in streamed.text and "event: done" in streamed.text
    assert len(checkouts) == 2, checkouts

    for headers in ({"X-API-Key": "nlsql_nosuchkey"}, {"Authorization": "Bearer x.y.z"}, {}):
        refused = client.post(path, json=body, headers=headers)
        assert refused.status_code == 401, refused.text
        assert _error_code(refused) == "unauthorized"
    user = session.get(User, caller.user_id)
    assert user is not None
    reader = create_api_key(session, user, scopes=["chat:read"])
    forbidden = client.post(path, json=body, headers=reader.headers)
    assert forbidden.status_code == 403, forbidden.text
    unknown = client.post(
        "/api/v1/chat/sessions/no-such-session/ask/stream", json=body, headers=caller.headers
    )
    assert unknown.status_code == 200 and "event: error" in unknown.text, unknown.text
    assert '"code":"chat_session_not_found"' in unknown.text.replace(" ", ""), unknown.text
