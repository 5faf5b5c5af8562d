"""The `nlsql` command line, run as a real process in an empty folder."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from backend.core.migrations import head_revision
from backend.demo import DEMO_DB_PATH

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLSQL_")}
    env["PYTHONPATH"] = str(ROOT)
    env["HOME"] = str(tmp_path)
    return env


def nlsql(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_migrate_in_an_empty_folder_leaves_app_data_db_there(tmp_path: Path) -> None:
    nlsql(tmp_path, "migrate")
    db = tmp_path / "app_data.db"
    assert db.exists()
    # the seed's 15 + background_jobs, answer_feedback, verified_examples, golden_questions,
    # evaluation_runs, evaluation_results
    assert len(_tables(db) - {"sqlite_sequence"}) == 23
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == (
            head_revision()
        )
    assert (tmp_path / ".nlsql-secrets.json").stat().st_mode & 0o077 == 0


def test_demo_creates_the_account_and_its_demo_connection_idempotently(tmp_path: Path) -> None:
    first = nlsql(tmp_path, "demo", "--no-serve", "--email", "me@example.com", "--password", "p-1")
    assert "me@example.com" in first.stdout and "/api/v1/auth/login" in first.stdout
    nlsql(tmp_path, "demo", "--no-serve", "--email", "me@example.com", "--password", "p-2")
    with sqlite3.connect(tmp_path / "app_data.db") as conn:
        users = conn.execute("SELECT id, email, role, password_hash FROM users").fetchall()
        assert [(u[1], u[2]) for u in users] == [("me@example.com", "viewer")]
        assert users[0][3].startswith("$argon2")
        connections = conn.execute(
            "SELECT user_id, connection_name, db_type, db_name FROM database_connections"
        ).fetchall()
    assert connections == [(users[0][0], "demo", "sqlite", str(DEMO_DB_PATH))]


def test_create_admin_promotes_and_resets(tmp_path: Path) -> None:
    nlsql(tmp_path, "create-admin", "--email", "Root@Example.com", "--password", "pw-one-1")
    again = nlsql(tmp_path, "create-admin", "--email", "root@example.com", "--password", "pw-2")
    assert "updated admin" in again.stdout
    with sqlite3.connect(tmp_path / "app_data.db") as conn:
        rows = conn.execute("SELECT email, role, is_active FROM users").fetchall()
    assert rows == [("root@example.com", "admin", 1)]


def test_production_without_secrets_exits_with_a_clear_message(tmp_path: Path) -> None:
    env = _env(tmp_path) | {"NLSQL_PRODUCTION": "true"}
    result = subprocess.run(
        [sys.executable, "-m", "backend.cli", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "NLSQL_JWT_SECRET" in result.stderr
    assert not (tmp_path / "app_data.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.timeout(120)
def test_serve_migrates_on_start_and_answers_over_real_http(tmp_path: Path) -> None:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        ready = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert ready is not None, process.stdout.read() if process.stdout else ""
        assert ready.status_code == 200
        assert ready.json()["revision"] == head_revision()
        assert (tmp_path / "app_data.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)
