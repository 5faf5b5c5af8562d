"""What an offline ask asks of the platform database, statement by statement.

* An ask (the schema already cached) runs a fixed number of platform statements: two reads in
  its read phase (one statement for the caller, the chat session, the connection and the
  versions of its layer, templates and schema snapshot; one for the session's recent turns)
  and, to record, one statement on PostgreSQL (the analytics row, the event and
  both messages in one statement with data-modifying CTEs, sent outside a transaction: no
  BEGIN or COMMIT round trips) or four on SQLite. More is a regression, fewer an improvement
  to write down here.
* The one-statement recording numbers messages as the statement-per-row one did: contiguous,
  the ids answered are the rows written.
* On the user's SQLite database the query is the only statement (its pooled connections were
  made read-only when opened).
* SQLite's write-ahead log is checkpointed by a background thread while the app runs, never
  inside a request's write transaction (a checkpoint there copied the log and synced both
  files while every other writer waited).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, func, select
from sqlalchemy.orm import Session

from backend.chat.models import ChatMessage, ChatSession
from backend.connections.engines import engine_cache
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.core.db import SqliteCheckpointer, create_app_engine
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import make_caller
from tests.support.statements import platform_statements

READS_PER_ASK = 2
"""The caller, the chat session, the connection and the versions of what is cached by version
(layer, templates, schema snapshot) in one statement; the session's recent turns."""
RECORDING_STATEMENTS = {"postgresql": 1, "sqlite": 4}


def _chat(client: TestClient, headers: dict[str, str], connection_id: str) -> str:
    created = client.post(
        "/api/v1/chat/sessions", json={"connection_id": connection_id}, headers=headers
    )
    assert created.status_code == 201, created.text
    chat_id: str = created.json()["id"]
    return chat_id


def test_an_offline_ask_runs_a_fixed_number_of_platform_statements(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = _chat(client, caller.headers, caller.connection_id)
    ask = f"/api/v1/chat/sessions/{chat}/ask"
    # The first ask introspects and caches the schema (writes of its own).
    first = client.post(ask, json={"question": "how many customers"}, headers=caller.headers)
    assert first.status_code == 200, first.text
    backend = app.state.engine.dialect.name
    connection = session.get(DatabaseConnection, caller.connection_id)
    assert connection is not None
    target = engine_cache.get(connection, settings)
    on_target: list[str] = []

    def heard_on_target(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        on_target.append(statement)

    event.listen(target, "before_cursor_execute", heard_on_target)
    try:
        with platform_statements(app.state.engine) as seen:
            response = client.post(
                ask, json={"question": "number of orders per status"}, headers=caller.headers
            )
    finally:
        event.remove(target, "before_cursor_execute", heard_on_target)
    assert response.status_code == 200, response.text
    # On the user's SQLite database, the query alone: its pooled connections were opened
    # read-only (`mode=ro`, `query_only`) once, not set up again before each query.
    assert len(on_target) == 1 and on_target[0].lstrip().upper().startswith("SELECT"), on_target

    reads = [s for s in seen if s[0] == "SELECT"]
    writes = [s for s in seen if s[0] != "SELECT"]
    assert len(reads) == READS_PER_ASK, seen
    assert len(writes) == RECORDING_STATEMENTS[backend], seen
    if backend == "postgresql":
        # Neither phase opens a transaction: each statement is its own.
        assert all(autocommit for _, autocommit in seen), seen
        assert writes[0][0] == "WITH", seen


def test_the_one_statement_recording_numbers_messages_like_before(
    client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = _chat(client, caller.headers, caller.connection_id)
    ask = f"/api/v1/chat/sessions/{chat}/ask"
    answers = []
    for question in ("how many customers", "number of orders per status", "zzz qqq xxyz"):
        response = client.post(ask, json={"question": question}, headers=caller.headers)
        assert response.status_code in (200, 422), response.text
        answers.append(response.json())
    session.expire_all()
    rows = session.execute(
        select(
            ChatMessage.id,
            ChatMessage.sequence_number,
            ChatMessage.message_type,
            ChatMessage.query_id,
            ChatMessage.execution_time,
        )
        .where(ChatMessage.session_id == chat)
        .order_by(ChatMessage.sequence_number)
    ).all()
    assert [r.sequence_number for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r.message_type for r in rows] == ["user", "assistant"] * 2 + ["user", "error"]
    assert session.scalar(select(ChatSession.message_count).where(ChatSession.id == chat)) == 6
    for index, answer in enumerate(answers[:2]):
        user, assistant = rows[2 * index], rows[2 * index + 1]
        assert answer["user_message_id"] == user.id
        assert answer["message_id"] == assistant.id
        assert user.query_id == assistant.query_id == answer["query_id"]
        assert user.execution_time is None
        assert assistant.execution_time is not None
    declined = answers[2]["error"]["details"]
    assert declined["message_id"] == rows[5].id
    for answer_query_id in (answers[0]["query_id"], answers[1]["query_id"], declined["query_id"]):
        assert (
            session.scalar(select(func.count()).where(QueryAnalytics.query_id == answer_query_id))
            == 1
        )
    asked = [
        e.event_data["query_id"]
        for e in session.scalars(select(Event).where(Event.event_type == "asked"))
        if e.event_data
    ]
    assert sorted(asked) == sorted(
        [answers[0]["query_id"], answers[1]["query_id"], declined["query_id"]]
    )


@pytest.mark.parametrize("running", [True, False])
def test_sqlite_commits_leave_checkpoints_to_the_background_thread(
    tmp_path: Path, running: bool
) -> None:
    engine = create_app_engine(f"sqlite:///{tmp_path / 'wal.db'}")
    checkpointer = SqliteCheckpointer(engine, interval_seconds=3600)
    try:
        if running:
            checkpointer.start()
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE TABLE pages (body BLOB)")
            conn.commit()
            auto = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
            assert auto == (0 if running else 1000)
            # Each commit appends a page or more to the log: past 1,000 pages a commit would
            # checkpoint (and restart the log) when automatic checkpoints are on.
            for _ in range(500):
                conn.exec_driver_sql("INSERT INTO pages VALUES (zeroblob(12000))")
                conn.commit()
        frames = _log_file_frames(tmp_path / "wal.db")
        if running:
            assert frames > 1500, frames
            done = checkpointer.checkpoint()
            assert done is not None and done[0] == 0 and done[1] == done[2] > 1500, done
        else:
            # The log restarted from its start after each automatic checkpoint.
            assert frames < 1100, frames
    finally:
        checkpointer.stop()
        engine.dispose()


def _log_file_frames(path: Path) -> int:
    """The most frames the log file ever held, from its size (a 32-byte header, then 24 bytes
    and a 4,096-byte page per frame; the file does not shrink when the log restarts)."""
    size = path.with_name(path.name + "-wal").stat().st_size
    return (size - 32) // (24 + 4096)


def test_the_app_checkpoints_its_sqlite_file_in_the_background(
    app: FastAPI, client: TestClient
) -> None:
    checkpointer = app.state.sqlite_checkpointer
    if app.state.engine.dialect.name != "sqlite":
        assert checkpointer is None
        return
    assert isinstance(checkpointer, SqliteCheckpointer)
    assert client.get("/healthz").status_code == 200
    assert "nlsql-sqlite-checkpoint" in {t.name for t in threading.enumerate()}
    with app.state.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
