"""The platform database under outside interference: a lock held longer than the lock timeout
answers 503 `database_busy` with `Retry-After` (never a 500), and the next request works; the
embedded database file is created readable by its owner only."""

from __future__ import annotations

import sqlite3
import stat
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.db import create_app_engine
from backend.core.errors import is_database_busy
from backend.main import create_app
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import make_caller
from tests.factories import DEFAULT_PASSWORD


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # An ask's recording is tried again for `record_retry_seconds`: here the lock outlasts it.
    return settings.model_copy(
        update={"platform_lock_timeout_seconds": 0.3, "record_retry_seconds": 0.5}
    )


@contextmanager
def _held_lock(app_db_url: str) -> Iterator[None]:
    """Another process's view: a second, independent connection holding the write lock."""
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
            conn.execute(text("LOCK TABLE chat_sessions, users IN ACCESS EXCLUSIVE MODE"))
            yield
            conn.rollback()
    finally:
        engine.dispose()


def _assert_busy(response: object) -> None:
    assert response.status_code == 503, response.text  # type: ignore[attr-defined]
    assert response.headers["Retry-After"] == "2"  # type: ignore[attr-defined]
    error = response.json()["error"]  # type: ignore[attr-defined]
    assert error["code"] == "database_busy"
    assert error["details"] == {"retry_after_seconds": 2}


def test_a_lock_held_beyond_the_timeout_answers_503_then_the_write_goes_through(
    client: TestClient, app_db_url: str, auth_headers: dict[str, str], user: object
) -> None:
    email = user.email  # type: ignore[attr-defined]
    with _held_lock(app_db_url):
        created = client.post("/api/v1/chat/sessions", json={"title": "t"}, headers=auth_headers)
        _assert_busy(created)
        login = client.post(
            "/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}
        )
        _assert_busy(login)

    created = client.post("/api/v1/chat/sessions", json={"title": "t"}, headers=auth_headers)
    assert created.status_code == 201, created.text
    listed = client.get("/api/v1/chat/sessions", headers=auth_headers)
    assert [s["title"] for s in listed.json()["items"]] == ["t"]
    login = client.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD})
    assert login.status_code == 200, login.text


def test_asks_and_sql_under_a_held_lock_answer_503_and_the_next_ones_are_recorded(
    client: TestClient, session: Session, settings: Settings, app_db_url: str
) -> None:
    caller = make_caller(session, settings)
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()["id"]
    ask = f"/api/v1/chat/sessions/{chat}/ask"
    sql = {"connection_id": caller.connection_id, "sql": "SELECT COUNT(*) AS n FROM customers"}

    with _held_lock(app_db_url):
        _assert_busy(
            client.post(ask, json={"question": "how many customers"}, headers=caller.headers)
        )
        _assert_busy(client.post("/api/v1/query/sql", json=sql, headers=caller.headers))

    answered = client.post(ask, json={"question": "how many customers"}, headers=caller.headers)
    assert answered.status_code == 200, answered.text
    ran = client.post("/api/v1/query/sql", json=sql, headers=caller.headers)
    assert ran.status_code == 200, ran.text
    session.expire_all()
    recorded = session.scalars(select(QueryAnalytics.query_id)).all()
    assert sorted(recorded) == sorted([answered.json()["query_id"], ran.json()["query_id"]])


def test_a_lock_released_within_the_timeout_is_waited_for(
    app: FastAPI, client: TestClient, app_db_url: str, auth_headers: dict[str, str]
) -> None:
    app.state.engine.dispose()
    engine = create_app_engine(app_db_url, lock_timeout_seconds=5.0)
    app.state.engine = engine
    app.state.session_factory.configure(bind=engine)
    released = threading.Event()

    def hold() -> None:
        with _held_lock(app_db_url):
            released.wait(0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        created = client.post("/api/v1/chat/sessions", json={"title": "w"}, headers=auth_headers)
    finally:
        holder.join()
    assert created.status_code == 201, created.text


def test_the_embedded_database_and_its_folder_are_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "fresh" / "data"
    settings = Settings(
        data_dir=data_dir,
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=True,
        _env_file=None,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 200
    app.state.engine.dispose()

    database = data_dir / "app_data.db"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    for suffix in ("-wal", "-shm"):
        side = data_dir / f"app_data.db{suffix}"
        if side.exists():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600, side
    # SQLite gives its WAL files the database file's mode: open one and look.
    engine = create_app_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS probe (x INTEGER)"))
        wal = data_dir / "app_data.db-wal"
        assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600
    engine.dispose()


def test_an_existing_database_file_keeps_the_mode_its_operator_gave_it(tmp_path: Path) -> None:
    database = tmp_path / "app_data.db"
    database.touch(mode=0o640)
    database.chmod(0o640)

    create_app_engine(f"sqlite:///{database}").dispose()

    assert stat.S_IMODE(database.stat().st_mode) == 0o640


def test_a_platform_database_out_of_connections_is_busy_not_broken(
    app_db_url: str, pg_admin_url: str
) -> None:
    if make_url(app_db_url).get_backend_name() != "postgresql":
        pytest.skip("connection limits are PostgreSQL's")
    role = f"busy_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD 'pw' CONNECTION LIMIT 0"))
    limited = make_url(app_db_url).set(username=role, password="pw")  # noqa: S106
    engine = create_app_engine(limited.render_as_string(hide_password=False))
    try:
        with pytest.raises(OperationalError) as raised, engine.connect():
            pass
        assert is_database_busy(raised.value)
        # A real error is not mistaken for a busy database.
        with pytest.raises(ProgrammingError) as wrong, create_engine(app_db_url).connect() as c:
            c.execute(text("SELECT * FROM no_such_table"))
        assert not is_database_busy(wrong.value)
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f"DROP ROLE {role}"))
        admin.dispose()
