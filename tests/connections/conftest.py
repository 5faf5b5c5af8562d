"""Fixtures of the connections tests: users with tokens, allowed directories, and real target
databases (SQLite and DuckDB files, a PostgreSQL database with its roles, MariaDB if present)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.connections.crypto import encrypt_password
from backend.connections.models import DatabaseConnection
from backend.core.config import DEMO_DIR, Settings
from backend.core.db import utcnow
from tests.conftest import IN_CI
from tests.factories import create_api_key, create_user, token_headers
from tests.support import mariadb_server

TARGET_PASSWORD = "Tg7-pw-" + "q9ZxR2"
"""The target databases' login password: the tests look for it in every response and row."""


@pytest.fixture
def db_dir(tmp_path: Path) -> Path:
    path = tmp_path / "dbs"
    path.mkdir()
    return path


@pytest.fixture
def settings(app_db_url: str, tmp_path: Path, db_dir: Path) -> Settings:
    """The shared settings, with a directory of the test's own for database files."""
    return Settings(
        data_dir=tmp_path,
        database_url=app_db_url,
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        sqlite_allowed_dirs=[db_dir, DEMO_DIR],
        run_migrations_on_start=False,
        _env_file=None,
    )


@dataclass
class Caller:
    user: User
    headers: dict[str, str]


def make_caller(session: Session, settings: Settings, *, email: str | None = None) -> Caller:
    user = create_user(
        session,
        email=email or f"u{uuid.uuid4().hex[:10]}@example.com",
        password="a-long-user-password",
        full_name="Test User",
    )
    return Caller(user=user, headers=token_headers(session, settings, user))


def make_api_key(
    session: Session, user: User, *, scopes: list[str], connection_ids: list[str] | None
) -> dict[str, str]:
    return create_api_key(session, user, scopes=scopes, connection_ids=connection_ids).headers


@pytest.fixture
def caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)


@pytest.fixture
def other_caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)


# --- target databases ----------------------------------------------------------------------

SHOP_DDL = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name VARCHAR(100) NOT NULL, "
    "country VARCHAR(50), password_hash VARCHAR(100))",
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL "
    "REFERENCES customers (id), amount DECIMAL(10, 2), status VARCHAR(20) DEFAULT 'open')",
)
SHOP_ROWS = (
    "INSERT INTO customers VALUES (1, 'Ann', 'France', 'h1'), (2, 'Bob', 'Spain', 'h2'), "
    "(3, 'Cid', 'France', 'h3')",
    "INSERT INTO orders VALUES (1, 1, 10.50, 'open'), (2, 1, 20.00, 'shipped'), "
    "(3, 2, 5.25, 'open')",
)


def build_sqlite(path: Path, *, extra_tables: int = 0) -> Path:
    with sqlite3.connect(path) as conn:
        for statement in (*SHOP_DDL, *SHOP_ROWS):
            conn.execute(statement)
        for i in range(extra_tables):
            conn.execute(
                f"CREATE TABLE t{i:04d} (id INTEGER PRIMARY KEY, "
                f"parent_id INTEGER REFERENCES customers (id), label TEXT, value REAL)"
            )
    return path


def build_duckdb(path: Path) -> Path:
    conn = duckdb.connect(str(path))
    try:
        for statement in (*SHOP_DDL, *SHOP_ROWS):
            conn.execute(statement)
    finally:
        conn.close()
    return path


@pytest.fixture
def sqlite_target(db_dir: Path) -> Path:
    return build_sqlite(db_dir / "shop.sqlite")


@pytest.fixture
def duckdb_target(db_dir: Path) -> Path:
    return build_duckdb(db_dir / "shop.duckdb")


@dataclass(frozen=True)
class ServerTarget:
    """A database on a server: where it is, the login that may read and write it, and an
    admin URL for arranging data."""

    host: str
    port: int
    database: str
    user: str
    password: str
    admin_url: str


def _pg_target(admin_url: str, *, extra_tables: int = 0) -> ServerTarget:
    name = f"tgt_{uuid.uuid4().hex[:12]}"
    login = f"login_{uuid.uuid4().hex[:8]}"
    owner = f"rw_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE ROLE {owner} NOLOGIN"))
        conn.execute(text(f"CREATE ROLE {login} LOGIN PASSWORD '{TARGET_PASSWORD}'"))
        conn.execute(text(f"CREATE DATABASE {name} OWNER {owner}"))
    engine.dispose()
    target_admin = make_url(admin_url).set(database=name)
    engine = create_engine(target_admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"SET ROLE {owner}"))
        for statement in (*SHOP_DDL, *SHOP_ROWS):
            conn.execute(text(statement))
        for i in range(extra_tables):
            conn.execute(
                text(
                    f"CREATE TABLE t{i:04d} (id INTEGER PRIMARY KEY, "
                    f"parent_id INTEGER REFERENCES customers (id), label TEXT, value REAL)"
                )
            )
        # The login may read *and write*: only the connection itself keeps the platform
        # read-only.
        conn.execute(text(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {login}"))
        conn.execute(text("RESET ROLE"))
    engine.dispose()
    url = make_url(admin_url)
    return ServerTarget(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        database=name,
        user=login,
        password=TARGET_PASSWORD,
        admin_url=target_admin.render_as_string(hide_password=False),
    )


@pytest.fixture(scope="session")
def pg_target(pg_admin_url: str) -> ServerTarget:
    return _pg_target(pg_admin_url)


@pytest.fixture(scope="session")
def pg_target_factory(pg_admin_url: str) -> object:
    def _make(extra_tables: int = 0) -> ServerTarget:
        return _pg_target(pg_admin_url, extra_tables=extra_tables)

    return _make


@pytest.fixture(scope="session")
def mysql_admin_url() -> Iterator[str]:
    """A MariaDB/MySQL root URL: the one `.ci/run` started, or a server of our own."""
    given = os.environ.get("NLSQL_TEST_MYSQL_URL")
    if given:
        yield given
        return
    if mariadb_server.find_server() is None:
        if IN_CI and os.environ.get("NLSQL_TEST_REQUIRE_MYSQL"):
            pytest.fail("CI must run the MySQL tests, but no MariaDB server is installed")
        pytest.skip("no MariaDB/MySQL server binaries here (apt-get install mariadb-server)")
    base = Path(tempfile.mkdtemp(prefix="nlsql-maria-"))
    try:
        yield mariadb_server.start(base)
    finally:
        mariadb_server.stop(base)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def mysql_target(mysql_admin_url: str) -> ServerTarget:
    name = f"tgt_{uuid.uuid4().hex[:12]}"
    login = f"login_{uuid.uuid4().hex[:8]}"
    engine = create_engine(mysql_admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
        conn.execute(text(f"USE {name}"))
        for statement in (*SHOP_DDL, *SHOP_ROWS):
            conn.execute(text(statement))
        conn.execute(text(f"CREATE USER '{login}'@'%' IDENTIFIED BY '{TARGET_PASSWORD}'"))
        conn.execute(text(f"GRANT ALL ON {name}.* TO '{login}'@'%'"))
    engine.dispose()
    url = make_url(mysql_admin_url)
    return ServerTarget(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        database=name,
        user=login,
        password=TARGET_PASSWORD,
        admin_url=url.set(database=name).render_as_string(hide_password=False),
    )


# --- connections without the API (executor and introspection tests) ------------------------


@pytest.fixture
def plain_settings(tmp_path: Path, db_dir: Path) -> Settings:
    """Settings for tests that use no platform database of their own."""
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'app_data.db'}",
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        sqlite_allowed_dirs=[db_dir],
        run_migrations_on_start=False,
        _env_file=None,
    )


def connection_for(
    settings: Settings,
    db_type: str,
    *,
    path: Path | None = None,
    server: ServerTarget | None = None,
) -> DatabaseConnection:
    """An unsaved connection row pointing at a test target, its password encrypted."""
    connection = DatabaseConnection(
        id=str(uuid.uuid4()),
        user_id="nobody",
        connection_name=db_type,
        db_type=db_type,
        db_name=str(path) if path is not None else server.database if server else "",
        created_at=utcnow(),
        options=None,
    )
    if server is not None:
        connection.db_host = server.host
        connection.db_port = server.port
        connection.db_user = server.user
        connection.encrypted_db_password = encrypt_password(settings, server.password)
    return connection


@pytest.fixture(params=["sqlite", "duckdb", "postgresql", "mysql"])
def target_connection(
    request: pytest.FixtureRequest, plain_settings: Settings, db_dir: Path
) -> DatabaseConnection:
    """A connection to the shop database on each kind of target."""
    kind = request.param
    if kind == "sqlite":
        return connection_for(plain_settings, kind, path=build_sqlite(db_dir / "t.sqlite"))
    if kind == "duckdb":
        return connection_for(plain_settings, kind, path=build_duckdb(db_dir / "t.duckdb"))
    fixture = "pg_target" if kind == "postgresql" else "mysql_target"
    return connection_for(plain_settings, kind, server=request.getfixturevalue(fixture))
