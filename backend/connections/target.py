"""Opening a user's database for one piece of work: read-only, time-limited, its failures
turned into 502/504 errors that never carry a password."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb
import psycopg
import pymysql
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from backend.connections.dialects import CONNECT_TIMEOUT_SECONDS, Dialect, get_dialect
from backend.connections.engines import connection_target, engine_cache
from backend.connections.errors import (
    QueryResultTooLarge,
    TargetDatabaseError,
    TargetDatabaseTimeout,
)
from backend.connections.models import DatabaseConnection
from backend.connections.watchdog import WATCHDOG
from backend.core.config import Settings
from backend.core.errors import AppError

logger = logging.getLogger("nlsql.connections")

NO_PARAMETERS = {"no_parameters": True}
"""Hand the SQL to the driver as is: no `:name` or `%s` placeholder processing."""

_MESSAGES = {
    "timeout": "The query ran past the time limit and was stopped.",
    "connect_timeout": "The database server did not answer in time.",
    "unreachable": "Could not reach the database server.",
    "auth_failed": "The database refused the user name or password.",
    "unknown_database": "The database does not exist or cannot be opened.",
    "connection_lost": "The database server closed the connection during the query.",
    "read_only": "The database refused to write: connections are opened read-only.",
    "out_of_resources": (
        "The database ran out of memory or temporary space for this query: "
        "ask for fewer rows or columns, or for totals instead of every row."
    ),
    "query_failed": "The database returned an error.",
}
_TIMEOUT_KINDS = ("timeout", "connect_timeout")
_KINDS_WITH_REASON = ("query_failed",)
"""Only an error of the query itself carries the database's text (the user, and the repair
loop, need it to fix the SQL); how a connection failed is told by its kind alone, so the
connection test cannot be used to read banners and error texts of arbitrary servers."""
_MAX_REASON_LENGTH = 500

DRIVER_ERRORS: tuple[type[BaseException], ...] = (
    SQLAlchemyError,
    sqlite3.Error,
    duckdb.Error,
    psycopg.Error,
    pymysql.MySQLError,
    OSError,
    UnicodeError,
)
"""What opening or querying a user's database may raise: all of it becomes a 502/504."""


def _scrub(message: str, secret: str | None) -> str:
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    if secret:
        first_line = first_line.replace(secret, "***")
    return first_line[:_MAX_REASON_LENGTH]


def target_error(
    exc: BaseException,
    dialect: Dialect,
    *,
    timed_out: bool = False,
    connecting: bool = False,
    timeout_seconds: float | None = None,
    secret: str | None = None,
    max_value_bytes: int | None = None,
) -> AppError:
    """The API error for a failure of a user's database: a stable `details.kind`, and the
    database's own text (cleaned of `secret`) only for an error of the query itself."""
    orig = getattr(exc, "orig", None) or exc
    if isinstance(orig, UnicodeError):
        kind = "unreachable" if connecting else "query_failed"
    else:
        kind = "timeout" if timed_out else dialect.classify_error(orig)
    if connecting and kind == "timeout":
        kind = "connect_timeout"
    if connecting and kind in ("query_failed", "read_only"):
        kind = "unreachable"
    if kind == "result_too_large":
        return QueryResultTooLarge(
            details={"kind": kind, "max_result_bytes": max_value_bytes}
            if max_value_bytes
            else {"kind": kind}
        )
    details: dict[str, Any] = {"kind": kind}
    if kind in _KINDS_WITH_REASON:
        details["reason"] = _scrub(str(orig), secret)
    if kind == "timeout" and timeout_seconds is not None:
        details["timeout_seconds"] = timeout_seconds
    if kind == "connect_timeout":
        details["connect_timeout_seconds"] = CONNECT_TIMEOUT_SECONDS
    if kind in _TIMEOUT_KINDS:
        return TargetDatabaseTimeout(_MESSAGES[kind], details=details)
    return TargetDatabaseError(_MESSAGES.get(kind, _MESSAGES["query_failed"]), details=details)


def _secret_of(connection: DatabaseConnection, settings: Settings) -> str | None:
    try:
        return connection_target(connection, settings).password
    except Exception:  # noqa: BLE001 - only used to scrub messages; opening reports the error
        return None


@contextmanager
def read_only_connection(
    connection: DatabaseConnection,
    *,
    settings: Settings,
    timeout_seconds: float,
    max_value_bytes: int | None = None,
) -> Iterator[tuple[Connection, Dialect]]:
    """A pooled connection to the user's database, inside a read-only, time-limited
    transaction that is rolled back at the end. The process's one watchdog thread
    (`connections.watchdog`) stops the query past the limit even if the server does not;
    where the engine can refuse values over `max_value_bytes` it does. Failures become
    502/504 errors; a connection the network policy refuses, 422."""
    dialect = get_dialect(connection.db_type)
    fired = threading.Event()
    connecting = True
    try:
        engine = engine_cache.get(connection, settings)
        with engine.connect() as conn:
            connecting = False
            dbapi_connection = conn.connection.dbapi_connection

            def _stop() -> None:
                fired.set()
                try:
                    dialect.cancel(dbapi_connection, engine)
                except Exception:  # the query may have finished meanwhile
                    logger.warning("cancelling a query on connection %s failed", connection.id)

            alarm = WATCHDOG.schedule(dialect.watchdog_delay(timeout_seconds), _stop)
            try:
                dialect.prepare(
                    conn, timeout_seconds=timeout_seconds, max_value_bytes=max_value_bytes
                )
                yield conn, dialect
            finally:
                WATCHDOG.cancel(alarm)
                try:
                    conn.rollback()
                    dialect.finish(conn)
                except DRIVER_ERRORS:
                    conn.invalidate()
    except DRIVER_ERRORS as exc:
        raise target_error(
            exc,
            dialect,
            timed_out=fired.is_set(),
            connecting=connecting,
            timeout_seconds=timeout_seconds,
            secret=_secret_of(connection, settings),
            max_value_bytes=max_value_bytes,
        ) from None
