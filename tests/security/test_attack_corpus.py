"""The attack corpus over real HTTP, per target dialect: through `POST /query/sql` and through
the ask path with an LLM on loopback that answers with the attack.

Every refused attack answers 400 in the one error shape; every bomb completes with a
documented status within the statement timeout; no answer holds the planted secret; and after
the suite the target database and the platform database's protected tables are unchanged.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from backend.admin.models import SystemConfig
from backend.auth.models import ApiKey, User
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.main import create_app
from backend.templates.models import QueryTemplate
from tests.conftest import BACKENDS, platform_database
from tests.connections.conftest import (
    ServerTarget,
    build_duckdb,
    build_sqlite,
    make_caller,
)
from tests.factories import set_system_config
from tests.nl2sql.provider_server import (
    ProviderServer,
    openai_reply,
    provider_server,
    provider_settings,
)
from tests.security.attack_corpus import (
    BOMB_STATUSES,
    DIALECTS,
    REFUSED_CODES,
    SECRET,
    Attack,
    attacks_for,
)

CONNECTIONS = "/api/v1/connections"
TIMEOUT_SECONDS = 1
GOOD_SQL = "SELECT country, COUNT(*) AS n FROM customers GROUP BY country ORDER BY country"
SHOP_TABLES = ("customers", "orders")


@dataclass
class Platform:
    """One app per platform backend for the whole module (each test makes its own caller and
    connection): its settings, a client with the app's lifespan, the provider server, and the
    directory SQLite and DuckDB targets may be in."""

    settings: Settings
    client: TestClient
    server: ProviderServer
    db_dir: Path


@pytest.fixture(scope="module", params=BACKENDS)
def platform(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Platform]:
    data_dir = tmp_path_factory.mktemp(f"corpus-{request.param}")
    db_dir = data_dir / "dbs"
    db_dir.mkdir()
    with (
        platform_database(request, request.param, data_dir) as url,
        provider_server() as server,
    ):
        settings = Settings(
            data_dir=data_dir,
            database_url=url,
            jwt_secret=SecretStr("test-secret-" + "x" * 40),
            fernet_keys=[SecretStr(Fernet.generate_key().decode())],
            sqlite_allowed_dirs=[db_dir],
            run_migrations_on_start=False,
            _env_file=None,
        )
        settings = provider_settings(settings, server, timeout_seconds=settings.llm_timeout_seconds)
        app = create_app(settings)
        try:
            with TestClient(app) as client:
                yield Platform(settings, client, server, db_dir)
        finally:
            app.state.engine.dispose()


@pytest.fixture
def db_dir(platform: Platform) -> Path:
    return platform.db_dir


@pytest.fixture
def settings(platform: Platform) -> Settings:
    return platform.settings


@pytest.fixture
def client(platform: Platform) -> TestClient:
    return platform.client


@pytest.fixture
def server(platform: Platform) -> Iterator[ProviderServer]:
    platform.server.script.clear()
    yield platform.server
    platform.server.script.clear()


@pytest.fixture
def session(platform: Platform) -> Iterator[Session]:
    app = platform.client.app
    db_session: Session = app.state.session_factory()  # type: ignore[attr-defined]
    try:
        yield db_session
    finally:
        db_session.close()


@dataclass
class Target:
    db_type: str
    body: dict[str, Any]
    checksum: Any
    """A callable giving a digest of everything in the target database."""


def _file_digest(path: Path) -> Any:
    return lambda: hashlib.sha256(path.read_bytes()).hexdigest()


def _server_digest(target: ServerTarget, db_type: str) -> Any:
    def digest() -> str:
        engine = create_engine(target.admin_url)
        try:
            with engine.connect() as conn:
                rows: list[Any] = []
                for table in SHOP_TABLES:
                    rows.append(conn.execute(text(f"SELECT * FROM {table} ORDER BY id")).all())  # noqa: S608
                if db_type == "postgresql":
                    rows.append(conn.execute(text("SELECT secret FROM hidden.creds")).all())
                    query = (
                        "SELECT table_schema, table_name FROM information_schema.tables "
                        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
                        "ORDER BY 1, 2"
                    )
                else:
                    query = (
                        "SELECT table_name FROM information_schema.tables "
                        "WHERE table_schema = DATABASE() ORDER BY 1"
                    )
                rows.append(conn.execute(text(query)).all())
        finally:
            engine.dispose()
        return hashlib.sha256(repr(rows).encode()).hexdigest()

    return digest


@contextmanager
def _hidden_schema(target: ServerTarget) -> Iterator[None]:
    """The schema of defect 1: readable by the login, absent from the connection's snapshot."""
    engine = create_engine(target.admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("CREATE SCHEMA hidden"))
            conn.execute(text("CREATE TABLE hidden.creds (secret TEXT)"))
            conn.execute(text(f"INSERT INTO hidden.creds VALUES ('{SECRET}')"))
            conn.execute(text(f"GRANT USAGE ON SCHEMA hidden TO {target.user}"))
            conn.execute(text(f"GRANT SELECT ON hidden.creds TO {target.user}"))
        yield
    finally:
        with engine.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS hidden CASCADE"))
        engine.dispose()


@pytest.fixture(params=DIALECTS)
def target(request: pytest.FixtureRequest, db_dir: Path) -> Iterator[Target]:
    db_type: str = request.param
    (db_dir / "secret.txt").write_text(f"secret\n{SECRET}\n")
    if db_type in ("sqlite", "duckdb"):
        build = build_sqlite if db_type == "sqlite" else build_duckdb
        path = build(db_dir / f"shop.{db_type}")
        body = {"db_type": db_type, "db_name": str(path)}
        yield Target(db_type, body, _file_digest(path))
        return
    server: ServerTarget = request.getfixturevalue(
        "pg_target" if db_type == "postgresql" else "mysql_target"
    )
    body = {
        "db_type": db_type,
        "db_host": server.host,
        "db_port": server.port,
        "db_user": server.user,
        "db_password": server.password,
        "db_name": server.database,
    }
    if db_type == "postgresql":
        body["options"] = {"sslmode": "disable"}
        with _hidden_schema(server):
            yield Target(db_type, body, _server_digest(server, db_type))
        return
    yield Target(db_type, body, _server_digest(server, db_type))


def _platform_digest(session: Session) -> str:
    """The platform's protected tables: accounts, keys, connections, templates, settings."""
    session.expire_all()
    rows: list[Any] = []
    for model, columns in (
        (User, ("id", "email", "password_hash", "role", "is_active")),
        (ApiKey, ("id", "user_id", "key_hash", "scopes")),
        (DatabaseConnection, ("id", "user_id", "db_type", "db_host", "db_name", "db_user")),
        (QueryTemplate, ("id", "user_id", "sql_template", "is_public", "is_verified")),
        (SystemConfig, ("config_key", "config_value")),
    ):
        for row in session.query(model).all():
            rows.append(tuple(str(getattr(row, c, None)) for c in columns))
    return hashlib.sha256(repr(sorted(rows)).encode()).hexdigest()


@dataclass
class Tally:
    tried: int = 0
    held: int = 0
    failures: list[str] = field(default_factory=list)

    def check(self, ok: bool, what: str) -> None:
        self.tried += 1
        if ok:
            self.held += 1
        else:
            self.failures.append(what)


def _held(attack: Attack, response: Any, *, ask: bool) -> bool:
    if SECRET in response.text or response.status_code == 500:
        return False
    if not attack.refused:
        return response.status_code in BOMB_STATUSES
    if response.status_code != 400:
        # On the ask path an LLM reply the extractor cannot read never reaches the guard.
        return ask and response.status_code == 502 and _code(response) == "llm_reply_invalid"
    return _code(response) in REFUSED_CODES


def _code(response: Any) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def test_the_attack_corpus_holds_over_http(
    client: TestClient,
    session: Session,
    settings: Settings,
    target: Target,
    server: ProviderServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    set_system_config(session, "query.statement_timeout_seconds", TIMEOUT_SECONDS)
    caller = make_caller(session, settings)
    created = client.post(
        CONNECTIONS,
        json={"connection_name": f"target-{uuid.uuid4().hex[:6]}", **target.body},
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    chat = client.post(
        "/api/v1/chat/sessions", json={"connection_id": connection_id}, headers=caller.headers
    )
    assert chat.status_code == 201, chat.text
    ask_url = f"/api/v1/chat/sessions/{chat.json()['id']}/ask"
    # The schema snapshot is taken (and cached) before the digests.
    assert (
        client.post(
            "/api/v1/query/sql",
            json={"connection_id": connection_id, "sql": "SELECT count(*) FROM customers"},
            headers=caller.headers,
        ).status_code
        == 200
    )
    target_before, platform_before = target.checksum(), _platform_digest(session)

    sql_path, ask_path = Tally(), Tally()
    for attack in attacks_for(target.db_type):
        response = client.post(
            "/api/v1/query/sql",
            json={"connection_id": connection_id, "sql": attack.sql},
            headers=caller.headers,
        )
        sql_path.check(
            _held(attack, response, ask=False),
            f"{attack.sql[:80]!r} -> {response.status_code} {response.text[:200]}",
        )
        if not attack.refused:
            continue  # bombs once: each takes up to the statement timeout
        server.script.clear()
        server.add(*[openai_reply(f"```sql\n{attack.sql}\n```") for _ in range(3)])
        response = client.post(
            ask_url, json={"question": "show me", "generator": "openai"}, headers=caller.headers
        )
        ask_path.check(
            _held(attack, response, ask=True),
            f"ask {attack.sql[:80]!r} -> {response.status_code} {response.text[:200]}",
        )

    # A query error whose text mentions a role is the SQL's: the LLM gets it back to repair.
    server.script.clear()
    server.add(
        openai_reply("```sql\nSELECT role FROM customers\n```"),
        openai_reply(f"```sql\n{GOOD_SQL}\n```"),
    )
    repaired = client.post(
        ask_url,
        json={"question": "customers per country", "generator": "openai"},
        headers=caller.headers,
    )
    assert repaired.status_code == 200, repaired.text
    assert repaired.json()["attempts"] == 2

    assert target.checksum() == target_before
    assert _platform_digest(session) == platform_before
    with capsys.disabled():
        print(  # noqa: T201 - the counts are the suite's report
            f"\n[attack corpus] {target.db_type}: /query/sql {sql_path.held}/{sql_path.tried} "
            f"held, ask {ask_path.held}/{ask_path.tried} held"
        )
    assert sql_path.failures == [] and ask_path.failures == []
    assert sql_path.tried >= 40 and ask_path.tried >= 35
