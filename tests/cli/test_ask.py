"""`nlsql ask`: the SQL and a table of the result, on the demo database when nothing is given."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backend.cli import app
from backend.core.config import get_settings
from backend.demo import DEMO_DB_PATH
from tests.chat.conftest import STAND_IN, StandInGenerator

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NLSQL_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("NLSQL_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_ask_prints_sql_and_table_on_the_demo_database(
    data_dir: Path, stand_in: StandInGenerator
) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["ask", "customers per country", "--generator", STAND_IN])
    assert result.exit_code == 0, result.output
    assert "SELECT country, COUNT(*) AS customers FROM customers" in result.output
    assert "customers" in result.output and "chart: bar" in result.output
    assert (data_dir / "app_data.db").exists()


def test_follow_ups_work_across_invocations(data_dir: Path, stand_in: StandInGenerator) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["ask", "how many orders are there?", "--generator", STAND_IN])
    assert first.exit_code == 0, first.output
    follow = runner.invoke(app, ["ask", "and only for 2023?", "--generator", STAND_IN])
    assert follow.exit_code == 0, follow.output
    assert "STRFTIME('%Y', order_date) = '2023'" in follow.output


def test_failures_are_clear_and_exit_non_zero(data_dir: Path, stand_in: StandInGenerator) -> None:
    runner = CliRunner()
    declined = runner.invoke(app, ["ask", "tell me a joke", "--generator", STAND_IN])
    assert declined.exit_code == 1
    assert "question_not_understood" in declined.output
    refused = runner.invoke(app, ["ask", "delete every order", "--generator", STAND_IN])
    assert refused.exit_code == 1
    assert "sql_refused" in refused.output and "read_only_statement" in refused.output
    missing = runner.invoke(app, ["ask", "x", "--connection", "nope"])
    assert missing.exit_code == 2
    assert "no connection 'nope'" in missing.output
    outside = runner.invoke(
        app, ["ask", "how many orders are there?", "--db", str(data_dir / "app_data.db")]
    )
    assert outside.exit_code == 2
    assert "connection_path_not_allowed" in outside.output


def test_ask_with_the_default_engine_in_a_subprocess(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NLSQL_DATA_DIR": str(tmp_path)}
    env.pop("NLSQL_DATABASE_URL", None)
    completed = subprocess.run(
        [sys.executable, "-m", "backend.cli", "ask", "how many customers are there?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "SELECT" in completed.stdout and "customers" in completed.stdout


def test_ask_on_a_sqlite_file_given_with_db(
    data_dir: Path, stand_in: StandInGenerator, monkeypatch: pytest.MonkeyPatch
) -> None:
    allowed = data_dir / "allowed"
    allowed.mkdir()
    copy = allowed / "copy.sqlite"
    shutil.copyfile(DEMO_DB_PATH, copy)
    monkeypatch.setenv("NLSQL_SQLITE_ALLOWED_DIRS", str(allowed))
    get_settings.cache_clear()
    result = CliRunner().invoke(
        app, ["ask", "how many orders are there?", "--db", str(copy), "--generator", STAND_IN]
    )
    assert result.exit_code == 0, result.output
    assert "3200" in result.output
