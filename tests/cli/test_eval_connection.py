"""`nlsql eval --connection ID`: a connection's golden set run as an evaluation by the CLI."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests.cli.test_cli import nlsql
from tests.evaluations.conftest import GOLDEN


def _add_golden_set(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        connection_id, user_id = conn.execute(
            "SELECT id, user_id FROM database_connections"
        ).fetchone()
        for item in GOLDEN:
            conn.execute(
                "INSERT INTO golden_questions (id, connection_id, user_id, question, gold_sql, "
                "ordered, source, created_at) VALUES (?, ?, ?, ?, ?, 0, 'manual', ?)",
                (
                    str(uuid.uuid4()),
                    connection_id,
                    user_id,
                    item["question"],
                    item["sql"],
                    datetime.now(UTC).isoformat(sep=" "),
                ),
            )
    return str(connection_id)


def test_eval_connection_runs_the_golden_set_and_prints_the_summary(tmp_path: Path) -> None:
    nlsql(tmp_path, "demo", "--no-serve")
    db = tmp_path / "app_data.db"
    connection_id = _add_golden_set(db)

    result = nlsql(tmp_path, "eval", "--connection", connection_id)
    assert "of 4/4 questions with builtin" in result.stdout
    assert "EX 50.0%  answered 3 (75.0%)  precision 66.7%" in result.stdout
    assert "right 2  wrong 1  declined 1  errors 0" in result.stdout
    with sqlite3.connect(db) as conn:
        runs = conn.execute(
            "SELECT status, job_id, done_count, right_count FROM evaluation_runs"
        ).fetchall()
        outcomes = conn.execute(
            "SELECT outcome FROM evaluation_results ORDER BY position"
        ).fetchall()
    assert runs == [("succeeded", None, 4, 2)]
    assert [o[0] for o in outcomes] == ["right", "right", "wrong", "declined"]


def test_eval_needs_a_questions_file_or_a_known_connection(tmp_path: Path) -> None:
    nlsql(tmp_path, "migrate")
    assert nlsql(tmp_path, "eval", check=False).returncode == 2
    unknown = nlsql(tmp_path, "eval", "--connection", "nope", check=False)
    assert unknown.returncode == 2 and "no connection 'nope'" in unknown.stderr
    both = nlsql(tmp_path, "eval", "q.json", "--connection", "nope", check=False)
    assert both.returncode == 2
