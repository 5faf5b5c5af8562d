"""Shared fixtures: migrated platform databases (SQLite and PostgreSQL), settings, the app."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis.configuration import set_hypothesis_home_dir
from pydantic import SecretStr
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.connections.engines import engine_cache
from backend.core.config import Settings
from backend.core.migrations import upgrade_to_head
from backend.main import create_app
from tests import factories
from tests.support import postgres_server

# The `base_url` fixture: the test's app served by a real uvicorn on loopback.
pytest_plugins = ["tests.support.live_server"]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REPO_ROOT = Path(__file__).resolve().parent.parent
ROOT_OUTPUTS = frozenset({".pytest_cache", "test-artifacts"})
"""What a test run may add to the repository root: pytest's cache and the browser tests'
screenshots (kept on purpose). Anything else a test leaves there is a defect."""

# Settings built without a data_dir (the default is the working directory: the repository root
# when pytest runs there) keep their app_data.db and generated secrets in a directory of this
# session's own, in this process and in every subprocess a test starts.
_SESSION_DATA_DIR = tempfile.mkdtemp(prefix="nlsql-test-data-")
os.environ["NLSQL_DATA_DIR"] = _SESSION_DATA_DIR
atexit.register(shutil.rmtree, _SESSION_DATA_DIR, ignore_errors=True)

# The scheduled retention pruning runs on a wall-clock schedule (daily at 03:17 UTC by
# default), and procrastinate defers a tick missed less than ten minutes before a worker starts:
# every app a test started in that window pruned and audited `maintenance.prune` beside what the
# test counted. Tests run without the schedule; those about it set `prune_cron` themselves.
os.environ["NLSQL_PRUNE_CRON"] = ""

# Hypothesis keeps its examples and cached constants there too, not in `<cwd>/.hypothesis`.
set_hypothesis_home_dir(Path(_SESSION_DATA_DIR) / ".hypothesis")


_ROOT_BEFORE = pytest.StashKey[set[str]]()


def _root_entries() -> set[str]:
    return set(os.listdir(REPO_ROOT))


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_ROOT_BEFORE] = _root_entries()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when it left files in the repository root (collection included)."""
    before = session.config.stash.get(_ROOT_BEFORE, None)
    if before is None:
        return
    left = sorted(_root_entries() - before - ROOT_OUTPUTS)
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"the tests left {left} in the repository root", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _repository_root_stays_clean() -> Iterator[None]:
    """Each test leaves the repository root as it found it (names the test that did not)."""
    before = _root_entries()
    yield
    left = sorted(_root_entries() - before - ROOT_OUTPUTS)
    assert not left, f"the test left {left} in the repository root"


BACKENDS = [
    b.strip()
    for b in os.environ.get("NLSQL_TEST_BACKENDS", "sqlite,postgresql").split(",")
    if b.strip()
]


@pytest.fixture(autouse=True)
def _fresh_engine_cache() -> Iterator[None]:
    """Every test starts and ends with no cached target engine: DuckDB keeps one instance per
    file per process (release files between tests), and pools left open keep memory."""
    yield
    engine_cache.dispose_all()


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL superuser URL: the one `.ci/run` started, or a server of our own."""
    given = os.environ.get("NLSQL_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    if postgres_server.find_pg_bin() is None:
        if IN_CI:
            pytest.fail("CI must run the PostgreSQL tests, but no PostgreSQL server is installed")
        pytest.skip("no PostgreSQL server binaries here (install postgresql-15)")
    base = Path(tempfile.mkdtemp(prefix="nlsql-pg-"))
    try:
        yield postgres_server.start(base)
    finally:
        postgres_server.stop(base)
        shutil.rmtree(base, ignore_errors=True)


def _pg_database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def create_pg_database(admin_url: str, *, template: str | None = None) -> str:
    name = f"t_{uuid.uuid4().hex[:16]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            clause = f" TEMPLATE {template}" if template else ""
            conn.execute(text(f"CREATE DATABASE {name}{clause}"))
    finally:
        engine.dispose()
    return _pg_database_url(admin_url, name)


def drop_pg_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    """A PostgreSQL database at the head revision, copied for every test that needs one."""
    url = create_pg_database(pg_admin_url)
    upgrade_to_head(url)
    return str(make_url(url).database)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "app_data.db"
    upgrade_to_head(f"sqlite:///{path}")
    return path


@contextmanager
def platform_database(
    request: pytest.FixtureRequest, backend: str, directory: Path
) -> Iterator[str]:
    """A fresh platform database at head on `backend` (copied from the session's template, no
    migrations), a SQLite file in `directory`; dropped afterwards."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        target = directory / "app_data.db"
        shutil.copyfile(template, target)
        yield f"sqlite:///{target}"
    elif backend == "postgresql":
        admin_url: str = request.getfixturevalue("pg_admin_url")
        url = create_pg_database(admin_url, template=request.getfixturevalue("pg_template"))
        try:
            yield url
        finally:
            drop_pg_database(admin_url, url)
    else:
        raise ValueError(f"unknown backend {backend}")


@pytest.fixture(params=BACKENDS)
def app_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh platform database at head, on each backend in NLSQL_TEST_BACKENDS."""
    with platform_database(request, request.param, tmp_path) as url:
        yield url


@pytest.fixture
def settings(app_db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=app_db_url,
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=False,
        _env_file=None,
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def session(app: FastAPI) -> Iterator[Session]:
    """A session on the same platform database the app uses (for arranging and checking)."""
    db_session: Session = app.state.session_factory()
    try:
        yield db_session
    finally:
        db_session.close()


# --- auth: users, tokens and keys (builders in tests/factories.py) ---


@pytest.fixture
def user(session: Session) -> User:
    """A viewer whose password is `factories.DEFAULT_PASSWORD`."""
    return factories.create_user(session, full_name="Vera Viewer")


@pytest.fixture
def admin(session: Session) -> User:
    return factories.create_user(session, role="admin", full_name="Ada Admin")


@pytest.fixture
def auth_headers(session: Session, settings: Settings, user: User) -> dict[str, str]:
    """Bearer headers of a signed-in session of `user`."""
    return factories.token_headers(session, settings, user)


@pytest.fixture
def admin_headers(session: Session, settings: Settings, admin: User) -> dict[str, str]:
    return factories.token_headers(session, settings, admin)


@pytest.fixture
def api_key(session: Session, user: User) -> factories.CreatedApiKey:
    """An API key of `user` with every viewer scope: `.key` is the secret, `.headers` sends it."""
    return factories.create_api_key(session, user)
