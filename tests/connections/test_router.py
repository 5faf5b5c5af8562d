"""The connections API through HTTP: CRUD, secrets, confinement, test, schema cache."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from backend.connections.crypto import decrypt_password
from backend.connections.dialects import CONNECT_TIMEOUT_SECONDS
from backend.connections.models import DatabaseConnection, DatabaseSchema
from backend.core.config import Settings
from backend.observability.models import AuditLog, Event
from tests.connections.conftest import (
    TARGET_PASSWORD,
    Caller,
    ServerTarget,
    build_sqlite,
    make_api_key,
)

URL = "/api/v1/connections"


def _pg_body(target: ServerTarget, **overrides: Any) -> dict[str, Any]:
    return {
        "connection_name": "warehouse",
        "db_type": "postgresql",
        "db_host": target.host,
        "db_port": target.port,
        "db_user": target.user,
        "db_password": target.password,
        "db_name": target.database,
        "options": {"sslmode": "disable"},
        **overrides,
    }


def _sqlite_body(path: Path, **overrides: Any) -> dict[str, Any]:
    return {"connection_name": "shop", "db_type": "sqlite", "db_name": str(path), **overrides}


def _error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["error"]
    if code is not None:
        assert body["code"] == code, body
    return body


def test_sqlite_connection_crud(
    client: TestClient, caller: Caller, sqlite_target: Path, db_dir: Path
) -> None:
    created = client.post(URL, json=_sqlite_body(sqlite_target), headers=caller.headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["db_name"] == str(sqlite_target.resolve())
    assert body["has_password"] is False and "db_password" not in body
    cid = body["id"]

    assert client.get(f"{URL}/{cid}", headers=caller.headers).json()["connection_name"] == "shop"
    listed = client.get(URL, headers=caller.headers).json()
    assert [c["id"] for c in listed["items"]] == [cid] and listed["next_cursor"] is None

    other = build_sqlite(db_dir / "other.sqlite")
    patched = client.patch(
        f"{URL}/{cid}",
        json={"connection_name": "shop2", "db_name": str(other)},
        headers=caller.headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["connection_name"] == "shop2"
    assert patched.json()["db_name"] == str(other.resolve())

    _error(
        client.post(
            URL, json=_sqlite_body(sqlite_target, connection_name="shop2"), headers=caller.headers
        ),
        409,
        "connection_name_taken",
    )

    assert client.delete(f"{URL}/{cid}", headers=caller.headers).status_code == 204
    _error(client.get(f"{URL}/{cid}", headers=caller.headers), 404, "connection_not_found")


def test_list_pages_with_a_cursor(client: TestClient, caller: Caller, db_dir: Path) -> None:
    for i in range(3):
        path = build_sqlite(db_dir / f"p{i}.sqlite")
        client.post(URL, json=_sqlite_body(path, connection_name=f"c{i}"), headers=caller.headers)
    first = client.get(URL, params={"limit": 2}, headers=caller.headers).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    second = client.get(
        URL, params={"limit": 2, "cursor": first["next_cursor"]}, headers=caller.headers
    ).json()
    assert [c["connection_name"] for c in first["items"] + second["items"]] == ["c0", "c1", "c2"]
    assert second["next_cursor"] is None
    _error(client.get(URL, params={"cursor": "garbage!"}, headers=caller.headers), 400)


def test_another_users_connection_is_not_found(
    client: TestClient, caller: Caller, other_caller: Caller, sqlite_target: Path
) -> None:
    cid = client.post(URL, json=_sqlite_body(sqlite_target), headers=caller.headers).json()["id"]
    for method, path in (
        ("GET", f"{URL}/{cid}"),
        ("PATCH", f"{URL}/{cid}"),
        ("DELETE", f"{URL}/{cid}"),
        ("POST", f"{URL}/{cid}/test"),
        ("POST", f"{URL}/{cid}/refresh-schema"),
        ("GET", f"{URL}/{cid}/schema"),
    ):
        response = client.request(
            method, path, headers=other_caller.headers, json={} if method == "PATCH" else None
        )
        _error(response, 404, "connection_not_found")
    assert client.get(URL, headers=other_caller.headers).json()["items"] == []


def test_without_credentials_or_scope(
    client: TestClient, caller: Caller, session: Session, sqlite_target: Path
) -> None:
    _error(client.get(URL), 401)
    read_only_key = make_api_key(
        session, caller.user, scopes=["connections:read"], connection_ids=None
    )
    _error(client.post(URL, json=_sqlite_body(sqlite_target), headers=read_only_key), 403)
    assert client.get(URL, headers=read_only_key).status_code == 200


def test_an_api_key_limited_to_some_connections(
    client: TestClient, caller: Caller, session: Session, db_dir: Path
) -> None:
    a = client.post(
        URL,
        json=_sqlite_body(build_sqlite(db_dir / "a.sqlite"), connection_name="a"),
        headers=caller.headers,
    ).json()["id"]
    b = client.post(
        URL,
        json=_sqlite_body(build_sqlite(db_dir / "b.sqlite"), connection_name="b"),
        headers=caller.headers,
    ).json()["id"]
    key = make_api_key(session, caller.user, scopes=["connections:read"], connection_ids=[a])
    assert [c["id"] for c in client.get(URL, headers=key).json()["items"]] == [a]
    assert client.get(f"{URL}/{a}", headers=key).status_code == 200
    _error(client.get(f"{URL}/{b}", headers=key), 403)


def _everything_recorded(session: Session) -> str:
    session.expire_all()
    rows: list[Any] = []
    for model in (AuditLog, Event, DatabaseSchema):
        for row in session.scalars(select(model)):
            rows.append({c.key: getattr(row, c.key) for c in model.__table__.columns})
    return json.dumps(rows, default=str)


def test_the_password_is_encrypted_and_never_comes_out(
    client: TestClient,
    caller: Caller,
    session: Session,
    settings: Settings,
    pg_target: ServerTarget,
) -> None:
    responses = []
    created = client.post(URL, json=_pg_body(pg_target), headers=caller.headers)
    assert created.status_code == 201, created.text
    cid = created.json()["id"]
    assert created.json()["has_password"] is True
    responses.append(created)
    responses.append(client.get(f"{URL}/{cid}", headers=caller.headers))
    responses.append(client.get(URL, headers=caller.headers))
    responses.append(
        client.patch(
            f"{URL}/{cid}", json={"db_password": TARGET_PASSWORD + "x"}, headers=caller.headers
        )
    )
    responses.append(
        client.patch(f"{URL}/{cid}", json={"db_password": TARGET_PASSWORD}, headers=caller.headers)
    )
    responses.append(client.post(f"{URL}/{cid}/test", headers=caller.headers))
    responses.append(client.post(f"{URL}/{cid}/refresh-schema", headers=caller.headers))
    responses.append(client.get(f"{URL}/{cid}/schema", headers=caller.headers))
    responses.append(client.delete(f"{URL}/{cid}", headers=caller.headers))
    for response in responses:
        assert response.status_code < 300, response.text
        assert TARGET_PASSWORD not in response.text

    recorded = _everything_recorded(session)
    assert TARGET_PASSWORD not in recorded
    actions = [a.action for a in session.scalars(select(AuditLog).order_by(AuditLog.id))]
    assert actions == [
        "connection.create",
        "connection.update",
        "connection.update",
        "connection.test",
        "connection.refresh_schema",
        "connection.delete",
    ]
    update = session.scalars(select(AuditLog).where(AuditLog.action == "connection.update")).first()
    assert update is not None and update.new_values == {"db_password": "***"}


def test_the_stored_password_is_a_fernet_token(
    client: TestClient,
    caller: Caller,
    session: Session,
    settings: Settings,
    pg_target: ServerTarget,
) -> None:
    cid = client.post(URL, json=_pg_body(pg_target), headers=caller.headers).json()["id"]
    row = session.get(DatabaseConnection, cid)
    assert row is not None and row.encrypted_db_password is not None
    assert TARGET_PASSWORD not in row.encrypted_db_password
    assert row.encrypted_db_password.startswith("gAAAA")
    assert decrypt_password(settings, row.encrypted_db_password) == TARGET_PASSWORD


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"db_host": None}, "db_host"),
        ({"options": {"sslmode": "sometimes"}}, "options"),
        ({"options": {"password": "x"}}, "options"),
        ({"db_type": "oracle"}, "db_type"),
        ({"db_port": 70000}, "db_port"),
    ],
)
def test_invalid_settings_are_422(
    client: TestClient,
    caller: Caller,
    pg_target: ServerTarget,
    overrides: dict[str, Any],
    field: str,
) -> None:
    body = _error(
        client.post(URL, json=_pg_body(pg_target, **overrides), headers=caller.headers), 422
    )
    assert field in json.dumps(body)
    assert TARGET_PASSWORD not in json.dumps(body)


def test_file_paths_are_confined(
    client: TestClient, caller: Caller, settings: Settings, db_dir: Path, tmp_path: Path
) -> None:
    outside = build_sqlite(tmp_path / "outside.sqlite")
    link = db_dir / "link.sqlite"
    link.symlink_to(outside)
    dir_link = db_dir / "escape"
    dir_link.symlink_to(tmp_path)
    cases = [
        str(outside),
        str(link),
        str(dir_link / "outside.sqlite"),
        str(db_dir / ".." / "outside.sqlite"),
        str(db_dir / "missing.sqlite"),
    ]
    if settings.app_database_path is not None:
        cases.append(str(settings.app_database_path))
    assert settings.secrets_file is not None
    for path in cases:
        _error(
            client.post(URL, json=_sqlite_body(path), headers=caller.headers),
            422,
            "connection_path_not_allowed",
        )
        _error(
            client.post(URL, json=_sqlite_body(path, db_type="duckdb"), headers=caller.headers),
            422,
            "connection_path_not_allowed",
        )
    _error(
        client.post(URL, json=_sqlite_body(str(db_dir), db_password="x"), headers=caller.headers),
        422,
        "invalid_connection_settings",
    )


def test_the_platform_database_is_refused_even_inside_an_allowed_dir(
    client: TestClient, caller: Caller, settings: Settings
) -> None:
    if settings.app_database_path is None:
        pytest.skip("the platform database is not a file on this backend")
    settings.sqlite_allowed_dirs.append(settings.data_dir)
    for path in (settings.app_database_path, settings.secrets_file):
        body = _error(
            client.post(URL, json=_sqlite_body(str(path)), headers=caller.headers),
            422,
            "connection_path_not_allowed",
        )
        assert "platform" in body["message"]


def test_a_symlink_swapped_after_saving_is_refused_at_use(
    client: TestClient, caller: Caller, db_dir: Path, tmp_path: Path, session: Session
) -> None:
    real = build_sqlite(db_dir / "real.sqlite")
    cid = client.post(URL, json=_sqlite_body(real), headers=caller.headers).json()["id"]
    outside = build_sqlite(tmp_path / "elsewhere.sqlite")
    real.unlink()
    real.symlink_to(outside)
    _error(
        client.post(f"{URL}/{cid}/test", headers=caller.headers), 422, "connection_path_not_allowed"
    )


def test_testing_a_connection_reports_version_and_latency(
    client: TestClient,
    caller: Caller,
    pg_target: ServerTarget,
    sqlite_target: Path,
    duckdb_target: Path,
) -> None:
    for body in (
        _pg_body(pg_target),
        _sqlite_body(sqlite_target, connection_name="s"),
        _sqlite_body(duckdb_target, connection_name="d", db_type="duckdb"),
    ):
        cid = client.post(URL, json=body, headers=caller.headers).json()["id"]
        result = client.post(f"{URL}/{cid}/test", headers=caller.headers)
        assert result.status_code == 200, result.text
        assert result.json()["ok"] is True and result.json()["server_version"]
        assert result.json()["latency_ms"] > 0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def _accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=_accept, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    stop.set()
    thread.join()
    for conn in accepted:
        conn.close()
    server.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("db_type", ["postgresql", "mysql"])
def test_failures_are_clear_502_and_504_within_a_bound(
    client: TestClient,
    caller: Caller,
    pg_target: ServerTarget,
    silent_server: int,
    request: pytest.FixtureRequest,
    db_type: str,
) -> None:
    target = pg_target if db_type == "postgresql" else request.getfixturevalue("mysql_target")
    base = _pg_body(target, db_type=db_type, options=None)
    cases = [
        ({"db_port": _closed_port()}, 502, "unreachable"),
        ({"db_host": "no-such-host.invalid"}, 502, "unreachable"),
        ({"db_user": "nobody_here", "db_password": "Wrong-pw-123"}, 502, "auth_failed"),
        ({"db_name": "no_such_database"}, 502, "unknown_database"),
        ({"db_port": silent_server}, 504, "connect_timeout"),
    ]
    for i, (overrides, status, kind) in enumerate(cases):
        body = {**base, **overrides, "connection_name": f"broken{i}"}
        cid = client.post(URL, json=body, headers=caller.headers).json()["id"]
        started = time.monotonic()
        response = client.post(f"{URL}/{cid}/test", headers=caller.headers)
        elapsed = time.monotonic() - started
        error = _error(response, status)
        assert error["details"]["kind"] == kind, (overrides, error)
        # The kind alone says what failed: no driver text (banners, errors) of the server.
        assert "reason" not in error["details"], error
        assert elapsed < CONNECT_TIMEOUT_SECONDS + 5, (overrides, elapsed)
        assert TARGET_PASSWORD not in response.text and "Wrong-pw-123" not in response.text


def test_schema_is_cached_and_refreshed(
    client: TestClient, caller: Caller, session: Session, sqlite_target: Path
) -> None:
    cid = client.post(URL, json=_sqlite_body(sqlite_target), headers=caller.headers).json()["id"]
    schema = client.get(f"{URL}/{cid}/schema", headers=caller.headers)
    assert schema.status_code == 200, schema.text
    body = schema.json()
    assert [t["name"] for t in body["tables"]] == ["customers", "orders"]
    customers = body["tables"][0]
    country = next(c for c in customers["columns"] if c["name"] == "country")
    assert country["sample_values"] == ["France", "Spain"]
    secret = next(c for c in customers["columns"] if c["name"] == "password_hash")
    assert secret["sample_values"] is None
    orders = body["tables"][1]
    assert orders["row_count"] == 3
    assert orders["foreign_keys"] == [
        {
            "columns": ["customer_id"],
            "referred_table": "customers",
            "referred_columns": ["id"],
            "referred_schema": None,
        }
    ]
    rows = session.scalars(select(DatabaseSchema).where(DatabaseSchema.connection_id == cid))
    assert sorted(r.table_name for r in rows) == ["customers", "orders"]

    engine = create_engine(f"sqlite:///{sqlite_target}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE refunds (id INTEGER PRIMARY KEY)"))
    engine.dispose()
    cached = client.get(f"{URL}/{cid}/schema", headers=caller.headers).json()
    assert cached["table_count"] == 2 and cached["last_updated"] == body["last_updated"]
    refreshed = client.post(f"{URL}/{cid}/refresh-schema", headers=caller.headers).json()
    assert refreshed["table_count"] == 3
    assert client.get(f"{URL}/{cid}/schema", headers=caller.headers).json()["table_count"] == 3


def test_changing_the_target_drops_the_cached_schema(
    client: TestClient, caller: Caller, session: Session, sqlite_target: Path, db_dir: Path
) -> None:
    cid = client.post(URL, json=_sqlite_body(sqlite_target), headers=caller.headers).json()["id"]
    client.get(f"{URL}/{cid}/schema", headers=caller.headers)
    other = db_dir / "empty.sqlite"
    engine = create_engine(f"sqlite:///{other}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE only_table (id INTEGER)"))
    engine.dispose()
    client.patch(f"{URL}/{cid}", json={"db_name": str(other)}, headers=caller.headers)
    tables = client.get(f"{URL}/{cid}/schema", headers=caller.headers).json()["tables"]
    assert [t["name"] for t in tables] == ["only_table"]


def test_concurrent_refreshes_of_one_connection_all_succeed(
    client: TestClient, caller: Caller, session: Session, sqlite_target: Path
) -> None:
    cid = client.post(URL, json=_sqlite_body(sqlite_target), headers=caller.headers).json()["id"]
    statuses: list[int] = []

    def _refresh() -> None:
        statuses.append(
            client.post(f"{URL}/{cid}/refresh-schema", headers=caller.headers).status_code
        )

    threads = [threading.Thread(target=_refresh) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    rows = session.scalars(select(DatabaseSchema).where(DatabaseSchema.connection_id == cid))
    assert sorted(r.table_name for r in rows) == ["customers", "orders"]


def test_configured_limits_come_from_system_config(session: Session) -> None:
    from backend.connections.executor import configured_limits
    from tests.factories import set_system_config

    defaults = configured_limits(session)
    assert (defaults.row_cap, defaults.timeout_seconds) == (1000, 15.0)
    # A value stored past the admin API's validation is ignored: the default stays in force.
    set_system_config(session, "query.row_cap", 10_000_000)
    set_system_config(session, "query.statement_timeout_seconds", 3)
    limits = configured_limits(session)
    assert (limits.row_cap, limits.timeout_seconds) == (1000, 3.0)
