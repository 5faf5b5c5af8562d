"""Fixtures of the security suites: the connections tests' targets and settings."""

from __future__ import annotations

from tests.connections.conftest import (
    db_dir,
    mysql_admin_url,
    mysql_target,
    pg_target,
    settings,
)

__all__ = [
    "db_dir",
    "mysql_admin_url",
    "mysql_target",
    "pg_target",
    "settings",
]
