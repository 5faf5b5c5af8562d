"""What an operator relies on: request ids on 500s (header, body, log line), JSON log lines,
readiness that does not flap when the pool is busy, production refusing to run unmigrated."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio.to_thread
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import create_engine, inspect

from backend.auth.deps import CurrentPrincipal
from backend.core.config import ConfigurationError, Settings
from backend.core.logs import ContextFilter, logging_config
from backend.core.migrations import DatabaseNotAtHead
from backend.main import create_app


def _json_handler() -> tuple[logging.Handler, io.StringIO]:
    stream = io.StringIO()
    config = logging_config("INFO", "json")["formatters"]["default"]
    from pythonjsonlogger.json import JsonFormatter

    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(
            config["fmt"], rename_fields=config["rename_fields"], datefmt=config["datefmt"]
        )
    )
    handler.addFilter(ContextFilter())
    return handler, stream


def test_a_500_carries_the_request_id_in_header_body_and_log_line(
    app: FastAPI, auth_headers: dict[str, str]
) -> None:
    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("forced failure")

    handler, stream = _json_handler()
    errors = logging.getLogger("nlsql.errors")
    errors.addHandler(handler)
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/boom", headers={"X-Request-ID": "req-500-check-1"})
            generated = client.get("/boom")
    finally:
        errors.removeHandler(handler)
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "req-500-check-1"
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "internal_error"
    assert body["error"]["details"] == {"request_id": "req-500-check-1"}
    assert generated.json()["error"]["details"]["request_id"] == generated.headers["x-request-id"]

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [
        "req-500-check-1",
        generated.headers["x-request-id"],
    ]
    first = lines[0]
    assert first["level"] == "ERROR" and first["logger"] == "nlsql.errors"
    assert "time" in first and "RuntimeError: forced failure" in first["exc_info"]


def test_log_lines_carry_the_user_of_the_request(
    app: FastAPI, auth_headers: dict[str, str]
) -> None:
    @app.get("/api/v1/log-something")
    def log_something() -> dict[str, str]:
        logging.getLogger("nlsql.test").info("inside the request")
        return {}

    @app.get("/api/v1/log-as-user")
    def log_as_user(principal: CurrentPrincipal) -> dict[str, str]:
        logging.getLogger("nlsql.test").info("inside an authenticated request")
        return {}

    handler, stream = _json_handler()
    target = logging.getLogger("nlsql.test")
    target.addHandler(handler)
    target.setLevel(logging.INFO)
    try:
        with TestClient(app) as client:
            client.get("/api/v1/log-something", headers={"X-Request-ID": "anonymous-1"})
            client.get(
                "/api/v1/log-as-user", headers={**auth_headers, "X-Request-ID": "signed-in-1"}
            )
    finally:
        target.removeHandler(handler)
    anonymous, signed_in = (json.loads(line) for line in stream.getvalue().splitlines())
    assert anonymous["request_id"] == "anonymous-1" and anonymous["user_id"] is None
    assert signed_in["request_id"] == "signed-in-1" and signed_in["user_id"]


def test_readyz_answers_at_once_while_the_request_pool_is_exhausted(
    app: FastAPI,
) -> None:
    engine = app.state.engine
    held = []
    with TestClient(app) as client:
        try:
            for _ in range(engine.pool.size() + engine.pool._max_overflow):  # noqa: SLF001
                held.append(engine.connect())
            started = time.perf_counter()
            response = client.get("/readyz")
            elapsed = time.perf_counter() - started
        finally:
            for conn in held:
                conn.close()
    assert response.status_code == 200, response.text
    assert elapsed < 5
    body = response.json()
    assert body["database"] == "ok"
    assert body["queue"]["queued"] == 0
    assert body["queue"]["backend"] in ("memory", "postgres")


def test_production_mode_refuses_generated_secrets(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="NLSQL_JWT_SECRET"):
        Settings(data_dir=tmp_path, production=True, _env_file=None)
    assert not (tmp_path / ".nlsql-secrets.json").exists()


def test_production_mode_never_migrates_and_refuses_an_unmigrated_database(
    tmp_path: Path, settings: Settings
) -> None:
    production = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'unmigrated.db'}",
            "production": True,
            "run_migrations_on_start": False,
            "jwt_secret": SecretStr("p" * 40),
        }
    )
    with pytest.raises(DatabaseNotAtHead), TestClient(create_app(production)):
        pass
    engine = create_engine(f"sqlite:///{tmp_path / 'unmigrated.db'}")
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_readyz_answers_while_every_request_thread_is_busy(app: FastAPI) -> None:
    release = threading.Event()

    @app.get("/_test/limit-threads")
    async def limit_threads() -> dict[str, int]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = 2
        return {}

    @app.get("/_test/block")
    def block() -> dict[str, int]:
        release.wait(30)
        return {}

    with TestClient(app) as client:
        client.get("/_test/limit-threads")
        with ThreadPoolExecutor(2) as pool:
            blocked = [pool.submit(client.get, "/_test/block") for _ in range(2)]
            try:
                time.sleep(0.5)
                assert not any(f.done() for f in blocked)
                started = time.perf_counter()
                response = client.get("/readyz")
                elapsed = time.perf_counter() - started
                assert not any(f.done() for f in blocked)
            finally:
                release.set()
            assert [f.result().status_code for f in blocked] == [200, 200]
    assert response.status_code == 200, response.text
    assert elapsed < 5


def test_readyz_neither_rereads_the_migration_scripts_nor_logs_alembic_per_probe(
    app: FastAPI, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The head revision is read once per process; each probe read the script directory and
    logged alembic's "Context impl" INFO line before."""
    from alembic.script import ScriptDirectory

    reads: list[object] = []
    original = ScriptDirectory.from_config.__func__  # type: ignore[attr-defined]

    def counting(cls: type[ScriptDirectory], config: object) -> ScriptDirectory:
        reads.append(config)
        return original(cls, config)  # type: ignore[no-any-return]

    with TestClient(app) as client:
        client.get("/readyz")
        monkeypatch.setattr(ScriptDirectory, "from_config", classmethod(counting))
        with caplog.at_level(logging.INFO):
            statuses = [client.get("/readyz").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert reads == []
    assert not [r for r in caplog.records if r.name.startswith("alembic")]
