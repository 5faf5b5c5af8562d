"""app_data.db.example: at the head revision, with example rows in every table."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from backend.core.migrations import head_revision
from backend.models import Base

EXAMPLE = Path(__file__).resolve().parents[1] / "app_data.db.example"


def test_example_database_is_at_head_with_rows_in_every_table() -> None:
    with sqlite3.connect(f"file:{EXAMPLE}?mode=ro", uri=True) as conn:
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
        assert revision == head_revision(), "run scripts/build_app_data_example.py"
        empty = [
            table
            for table in Base.metadata.tables
            if conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] == 0
        ]
        assert empty == []
        stored_secrets = conn.execute(
            "SELECT encrypted_db_password FROM database_connections "
            "WHERE encrypted_db_password IS NOT NULL"
        ).fetchall()
        audit_values = " ".join(
            str(r) for r in conn.execute("SELECT old_values, new_values FROM audit_logs")
        )
    assert stored_secrets and all("example-password" not in s[0] for s in stored_secrets)
    assert "example-password" not in audit_values
