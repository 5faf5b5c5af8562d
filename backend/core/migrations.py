"""Running Alembic from code: the CLI, the server's start-up and the tests use these."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

from alembic import command

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


def alembic_config(database_url: str | None = None) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.attributes["configure_logger"] = False
    if database_url is not None:
        config.attributes["database_url"] = database_url
    return config


def upgrade_to_head(database_url: str) -> None:
    command.upgrade(alembic_config(database_url), "head")


def downgrade_to_base(database_url: str) -> None:
    command.downgrade(alembic_config(database_url), "base")


@cache
def head_revision() -> str:
    """The code's newest migration: read from the script directory once per process (the scripts
    ship with the code and do not change while it runs)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError("no Alembic revisions found")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def stored_revision(conn: Connection) -> str | None:
    """The revision recorded in `alembic_version`, None when there is none (or no table).

    For probes: a plain query, where `MigrationContext` logs an alembic INFO line per call."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    value = conn.scalar(text("SELECT version_num FROM alembic_version"))
    return None if value is None else str(value)


class DatabaseNotAtHead(RuntimeError):
    """The platform database is not at the newest revision (production never migrates itself)."""


def ensure_at_head(engine: Engine) -> None:
    """Raise `DatabaseNotAtHead` unless the platform database is at the head revision."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise DatabaseNotAtHead(
            f"the platform database is at revision {current or 'none'}, not at head {head}; "
            "run `nlsql migrate` first (production mode never migrates on start)"
        )
