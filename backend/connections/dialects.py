"""What differs between the kinds of user databases, sqlglot style: a base with documented
class attributes, a subclass per `db_type` that overrides only what differs, a registry.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.pool import ConnectionPoolEntry, QueuePool

from backend.connections.errors import ConnectionRefusedByPolicy, UnknownDatabaseType
from backend.connections.network import NetworkPolicy
from backend.connections.paths import PathConfinement, open_confined_locking

CONNECT_TIMEOUT_SECONDS = 5
"""Longest a new connection to a user's database may take, TCP and authentication included."""

POOL_SIZE = 2
POOL_MAX_OVERFLOW = 3
POOL_RECYCLE_SECONDS = 1800

_SQLITE_LIMIT_ATTACHED = 7  # sqlite3.SQLITE_LIMIT_ATTACHED (constant exported from 3.11 on)
_SQLITE_DEFAULT_MAX_LENGTH = 1_000_000_000  # SQLITE_MAX_LENGTH, the compiled-in default


@dataclass(frozen=True, slots=True)
class ConnectionTarget:
    """Everything needed to open one user database, the password already decrypted."""

    host: str | None
    port: int | None
    user: str | None
    password: str | None = field(repr=False)
    database: str
    """Database name, or the confined, resolved file path for SQLite and DuckDB."""
    options: Mapping[str, Any] = field(default_factory=dict)
    policy: NetworkPolicy | None = None
    """Checked at every new connection to a server (see `connections/network.py`)."""
    confinement: PathConfinement | None = None
    """Checked at every open of a database file."""


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """A driver option a connection may carry (never a secret)."""

    type: type
    choices: tuple[Any, ...] | None = None
    description: str = ""


def _driver_connection(conn: Connection) -> Any:
    raw = conn.connection.driver_connection
    if raw is None:  # only after the connection was invalidated
        raise RuntimeError("the connection is closed")
    return raw


class Dialect:
    """The base: behaviour is carried by class attributes, each documented below it."""

    DB_TYPE: ClassVar[str] = ""
    """The `db_type` stored on a connection."""

    SQLGLOT_DIALECT: ClassVar[str] = ""
    """The name sqlglot knows this dialect by (the guard parses in it)."""

    DRIVER: ClassVar[str] = ""
    """SQLAlchemy driver name used in the URL, e.g. `postgresql+psycopg`."""

    IS_FILE_BASED: ClassVar[bool] = False
    """The database is a file on this machine: its path is confined to the allowed dirs."""

    DEFAULT_PORT: ClassVar[int | None] = None
    """Port used when a connection names none."""

    READ_ONLY_SETUP: ClassVar[tuple[str, ...]] = ()
    """Statements run before every query so the transaction cannot write (connection level,
    in addition to whatever the engine was opened with)."""

    STATEMENT_TIMEOUT_SETUP: ClassVar[str | None] = None
    """A statement that makes the server stop the next query after `{milliseconds}` /
    `{seconds}`; None where the server has none (a client-side watchdog interrupts instead)."""

    SERVER_VERSION_QUERY: ClassVar[str] = "SELECT version()"
    """A query answering one row, one column: the server's version string."""

    ROW_COUNT_ESTIMATE_QUERY: ClassVar[str | None] = None
    """A catalog query answering `(table_name, row_estimate, size_bytes)` for every table
    without scanning them; None where exact counts are cheap enough."""

    TIMEOUT_GRACE_SECONDS: ClassVar[float] = 2.0
    """How long after the timeout the client-side watchdog cancels, where the server should
    have stopped the query itself already."""

    ALLOWED_OPTIONS: ClassVar[Mapping[str, OptionSpec]] = {}
    """Driver options a connection may set, with their types and allowed values."""

    # --- opening -------------------------------------------------------------------------

    def build_url(self, target: ConnectionTarget) -> URL:
        return URL.create(
            self.DRIVER,
            username=target.user or None,
            password=target.password or None,
            host=target.host,
            port=target.port or self.DEFAULT_PORT,
            database=target.database,
        )

    def engine_arguments(self, target: ConnectionTarget) -> dict[str, Any]:
        """Keyword arguments for `create_engine`: small pools and bounded waits."""
        return {
            "pool_size": POOL_SIZE,
            "max_overflow": POOL_MAX_OVERFLOW,
            "pool_timeout": CONNECT_TIMEOUT_SECONDS * 2,
            "pool_recycle": POOL_RECYCLE_SECONDS,
            "pool_pre_ping": True,
        }

    def create_engine(self, target: ConnectionTarget) -> Engine:
        engine = create_engine(self.build_url(target), **self.engine_arguments(target))
        event.listen(engine, "connect", self.on_connect)
        if not self.IS_FILE_BASED and target.policy is not None:
            policy = target.policy
            host = target.host
            port = target.port or self.DEFAULT_PORT or 0

            def _checked_address(
                _dialect: Any, _record: Any, _args: Any, params: dict[str, Any]
            ) -> None:
                if not host:
                    # No host means a local socket: the platform's own server, perhaps.
                    raise ConnectionRefusedByPolicy(
                        details={"kind": "refused_by_policy", "rule": "host_required"}
                    )
                self.pin_address(params, policy.pick_address(host, port, target.database))

            event.listen(engine, "do_connect", _checked_address)
        return engine

    def pin_address(self, params: dict[str, Any], address: str) -> None:
        """Make the driver connect to `address`, the one the network policy checked."""
        params["host"] = address

    def on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        """Runs once per new DBAPI connection."""

    # --- running -------------------------------------------------------------------------

    def prepare(
        self, conn: Connection, *, timeout_seconds: float, max_value_bytes: int | None = None
    ) -> None:
        """Make the coming transaction read-only and time-limited (and, where the engine can,
        refuse values larger than `max_value_bytes`)."""
        for statement in self.READ_ONLY_SETUP:
            conn.exec_driver_sql(statement)
        if self.STATEMENT_TIMEOUT_SETUP is not None:
            conn.exec_driver_sql(
                self.STATEMENT_TIMEOUT_SETUP.format(
                    milliseconds=max(1, int(timeout_seconds * 1000)),
                    seconds=max(0.001, round(timeout_seconds, 3)),
                )
            )

    def bound_row_size(self, sql: str, max_row_bytes: int) -> str:
        """`sql` made to fail in the database on a row larger than `max_row_bytes`, where the
        engine can do that (so such a row never reaches this process); `sql` itself here."""
        return sql

    def finish(self, conn: Connection) -> None:
        """Undo per-query client settings before the connection goes back to the pool."""

    def cancel(self, dbapi_connection: Any, engine: Engine) -> None:
        """Stop the query running on `dbapi_connection`; called from a watchdog thread."""

    def watchdog_delay(self, timeout_seconds: float) -> float:
        if self.STATEMENT_TIMEOUT_SETUP is None:
            return timeout_seconds
        return timeout_seconds + self.TIMEOUT_GRACE_SECONDS

    def describe_type(self, type_code: Any, conn: Connection) -> str | None:
        """A readable type name for a `cursor.description` type code."""
        return None if type_code is None else str(type_code)

    # --- failures ------------------------------------------------------------------------

    def classify_error(self, exc: BaseException) -> str:
        """One of `timeout`, `connect_timeout`, `unreachable`, `auth_failed`,
        `unknown_database`, `connection_lost`, `read_only`, `result_too_large`,
        `out_of_resources`, `query_failed`.

        Subclasses decide by the driver's exception type and error code (SQLSTATE, MySQL error
        numbers, SQLite result codes), never by words in a message: a query's error text can
        say anything ("column role does not exist"). What is not recognised is `query_failed`,
        the SQL's own failure, which an LLM generator gets back to repair.
        """
        return "query_failed"


def _connection_failure_kind(message: str) -> str:
    """The kind of a failure to connect that the driver reports as text only (libpq before a
    session exists has no SQLSTATE). Only ever used for errors that carry no code."""
    text = message.lower()
    if "timeout expired" in text or "timed out" in text:
        return "connect_timeout"
    if "password authentication failed" in text or ("role" in text and "does not exist" in text):
        return "auth_failed"
    if "database" in text and "does not exist" in text:
        return "unknown_database"
    if any(
        marker in text
        for marker in (
            "server closed the connection unexpectedly",
            "terminating connection",
            "consuming input failed",
            "lost connection to",
        )
    ):
        return "connection_lost"
    return "unreachable"


_SQLITE_KINDS = {
    9: "timeout",  # SQLITE_INTERRUPT: the watchdog stopped the query
    14: "unknown_database",  # SQLITE_CANTOPEN
    26: "unknown_database",  # SQLITE_NOTADB
    8: "read_only",  # SQLITE_READONLY (and its extended codes)
    18: "result_too_large",  # SQLITE_TOOBIG: a value over the result's byte budget
    7: "out_of_resources",  # SQLITE_NOMEM
    13: "out_of_resources",  # SQLITE_FULL: temporary storage for a sort or a join ran out
}


class SQLiteDialect(Dialect):
    DB_TYPE = "sqlite"
    SQLGLOT_DIALECT = "sqlite"
    DRIVER = "sqlite+pysqlite"
    IS_FILE_BASED = True
    # Nothing per query: every connection is opened `mode=ro` with `query_only` on (`_open`),
    # and the guard lets no PRAGMA through to turn it off.
    READ_ONLY_SETUP = ()
    SERVER_VERSION_QUERY = "SELECT sqlite_version()"

    SQLITE_BUSY_TIMEOUT_SECONDS = 5

    def build_url(self, target: ConnectionTarget) -> URL:
        return URL.create(self.DRIVER)

    def create_engine(self, target: ConnectionTarget) -> Engine:
        # The file is opened through a URI of our own making (`mode=ro`), never through a URL
        # parsed from user input, so no query-string trick can reopen it writable.
        path = str(target.database)
        uri = f"file:{quote(path)}?mode=ro"
        confinement = target.confinement

        def _open() -> sqlite3.Connection:
            before = confinement.check_before_open(path) if confinement else None
            connection = sqlite3.connect(
                uri,
                uri=True,
                check_same_thread=False,
                timeout=self.SQLITE_BUSY_TIMEOUT_SECONDS,
            )
            try:
                connection.execute("PRAGMA query_only = ON")
                # No ATTACH: a query could otherwise open files outside the confined directories.
                connection.setlimit(_SQLITE_LIMIT_ATTACHED, 0)
                if confinement is not None and before is not None:
                    # SQLite opens the file lazily and names the file it resolved to: read the
                    # header, then check it is the file that was checked.
                    connection.execute("PRAGMA schema_version").fetchone()
                    opened = connection.execute("PRAGMA database_list").fetchone()[2]
                    confinement.check_after_open(path, before, str(opened))
            except BaseException:
                connection.close()
                raise
            return connection

        return create_engine(
            self.build_url(target),
            creator=_open,
            poolclass=QueuePool,
            pool_size=POOL_SIZE,
            max_overflow=POOL_MAX_OVERFLOW,
            pool_timeout=CONNECT_TIMEOUT_SECONDS * 2,
        )

    def prepare(
        self, conn: Connection, *, timeout_seconds: float, max_value_bytes: int | None = None
    ) -> None:
        super().prepare(conn, timeout_seconds=timeout_seconds)
        raw = _driver_connection(conn)
        # The engine itself refuses to build a string or blob longer than this ("string or
        # blob too big"), so `SELECT randomblob(1e9)` never reaches this process.
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value_bytes or _SQLITE_DEFAULT_MAX_LENGTH)
        deadline = time.monotonic() + timeout_seconds

        def _past_deadline() -> int:
            return 1 if time.monotonic() > deadline else 0

        # Checked every 1,000 virtual machine instructions: a slow query is stopped in-engine.
        raw.set_progress_handler(_past_deadline, 1000)

    def finish(self, conn: Connection) -> None:
        raw = _driver_connection(conn)
        raw.set_progress_handler(None, 0)
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _SQLITE_DEFAULT_MAX_LENGTH)

    def cancel(self, dbapi_connection: Any, engine: Engine) -> None:
        dbapi_connection.interrupt()

    def watchdog_delay(self, timeout_seconds: float) -> float:
        return timeout_seconds + self.TIMEOUT_GRACE_SECONDS

    def classify_error(self, exc: BaseException) -> str:
        # SQLite result codes: the primary code is the low byte of the extended one.
        code = getattr(exc, "sqlite_errorcode", None)
        if not isinstance(code, int):
            return "query_failed"
        return _SQLITE_KINDS.get(code & 0xFF, "query_failed")

    def describe_type(self, type_code: Any, conn: Connection) -> str | None:
        return None


class PostgreSQLDialect(Dialect):
    DB_TYPE = "postgresql"
    SQLGLOT_DIALECT = "postgres"
    DRIVER = "postgresql+psycopg"
    DEFAULT_PORT = 5432
    READ_ONLY_SETUP = ("SET TRANSACTION READ ONLY",)
    STATEMENT_TIMEOUT_SETUP = "SET LOCAL statement_timeout = {milliseconds}"
    SERVER_VERSION_QUERY = "SHOW server_version"
    ROW_COUNT_ESTIMATE_QUERY = (
        "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()"
    )
    ALLOWED_OPTIONS = {
        "sslmode": OptionSpec(
            str,
            ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
            "TLS to the server",
        ),
        "application_name": OptionSpec(str, None, "Name shown in pg_stat_activity"),
    }

    def engine_arguments(self, target: ConnectionTarget) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # Every transaction starts read-only, even one a query might open after COMMIT.
            "options": "-c default_transaction_read_only=on",
            # Prepare every statement: the extended protocol takes exactly one statement, so
            # "SET TRANSACTION READ WRITE; INSERT ..." cannot ride in on a single execute
            # (psycopg would otherwise send it as a multi-statement simple query).
            "prepare_threshold": 0,
            # A server that vanishes mid-query is noticed in about 10 s, not hours.
            "keepalives": 1,
            "keepalives_idle": 5,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "application_name": str(target.options.get("application_name") or "nlsql"),
        }
        if "sslmode" in target.options:
            connect_args["sslmode"] = str(target.options["sslmode"])
        return {**super().engine_arguments(target), "connect_args": connect_args}

    ROW_TOO_LARGE_MARKER: ClassVar[str] = "nlsql:result_too_large"

    def bound_row_size(self, sql: str, max_row_bytes: int) -> str:
        # The row's text form is measured in the server (decompressed, unlike
        # pg_column_size); a row over the budget makes the query fail with a cast error that
        # carries the marker, before the row is sent. The cast depends on the row, so the
        # planner cannot fold it into an error of every query.
        size = "octet_length(CAST(nlsql_rows AS TEXT))"
        return (
            f"SELECT * FROM ({sql}) AS nlsql_rows WHERE CASE "  # noqa: S608 - guarded SQL
            f"WHEN {size} > {int(max_row_bytes)} THEN "
            f"CAST(concat('{self.ROW_TOO_LARGE_MARKER}:', {size}) AS INTEGER) = 0 ELSE TRUE END"
        )

    def pin_address(self, params: dict[str, Any], address: str) -> None:
        # libpq connects to hostaddr and keeps host for TLS verification and .pgpass.
        params["hostaddr"] = address

    def cancel(self, dbapi_connection: Any, engine: Engine) -> None:
        dbapi_connection.cancel()

    def describe_type(self, type_code: Any, conn: Connection) -> str | None:
        if not isinstance(type_code, int):
            return super().describe_type(type_code, conn)
        info = _driver_connection(conn).adapters.types.get(type_code)
        return str(info.name) if info is not None else str(type_code)

    def classify_error(self, exc: BaseException) -> str:
        import psycopg

        sqlstate = getattr(exc, "sqlstate", None)
        if sqlstate == "22P02" and self.ROW_TOO_LARGE_MARKER in str(exc):
            return "result_too_large"
        if isinstance(sqlstate, str) and sqlstate:
            return _PG_SQLSTATE_KINDS.get(sqlstate) or _PG_SQLSTATE_CLASS_KINDS.get(
                sqlstate[:2], "query_failed"
            )
        if isinstance(exc, psycopg.errors.ConnectionTimeout):
            return "connect_timeout"
        if isinstance(exc, psycopg.OperationalError):
            # No SQLSTATE: libpq failed before or outside a session (connecting, or the
            # connection dropped); it says why only in words.
            return _connection_failure_kind(str(exc))
        return "query_failed"


_PG_SQLSTATE_KINDS = {
    "57014": "timeout",  # query_canceled (statement_timeout)
    "3D000": "unknown_database",  # invalid_catalog_name
    "25006": "read_only",  # read_only_sql_transaction
    "57P01": "connection_lost",  # admin_shutdown (pg_terminate_backend)
    "57P02": "connection_lost",  # crash_shutdown
    "57P03": "unreachable",  # cannot_connect_now
    "53300": "unreachable",  # too_many_connections: the server refuses another session
}
_PG_SQLSTATE_CLASS_KINDS = {
    "28": "auth_failed",  # invalid authorization specification
    "08": "unreachable",  # connection exception
    "53": "out_of_resources",  # insufficient resources: out of memory, disk full (temp files)
    "54": "out_of_resources",  # program limit exceeded: a value or statement too large
}


class MySQLDialect(Dialect):
    """MySQL and MariaDB through PyMySQL."""

    DB_TYPE = "mysql"
    SQLGLOT_DIALECT = "mysql"
    DRIVER = "mysql+pymysql"
    DEFAULT_PORT = 3306
    READ_ONLY_SETUP = ("SET SESSION TRANSACTION READ ONLY", "START TRANSACTION READ ONLY")
    STATEMENT_TIMEOUT_SETUP = "SET SESSION max_execution_time = {milliseconds}"
    MARIADB_STATEMENT_TIMEOUT_SETUP = "SET SESSION max_statement_time = {seconds}"
    """MariaDB names the same limit differently, in seconds."""
    SERVER_VERSION_QUERY = "SELECT VERSION()"
    ROW_COUNT_ESTIMATE_QUERY = (
        "SELECT table_name, table_rows, data_length + index_length "
        "FROM information_schema.tables WHERE table_schema = DATABASE()"
    )
    ALLOWED_OPTIONS = {
        "ssl_disabled": OptionSpec(bool, None, "Turn TLS off"),
        "ssl_verify_cert": OptionSpec(bool, None, "Verify the server certificate"),
        "charset": OptionSpec(str, ("utf8mb4", "utf8", "latin1"), "Connection character set"),
    }

    def engine_arguments(self, target: ConnectionTarget) -> dict[str, Any]:
        connect_args: dict[str, Any] = {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # Bounds the handshake with a server that accepts TCP but never answers; each
            # query raises it for its own duration (see `prepare`).
            "read_timeout": CONNECT_TIMEOUT_SECONDS,
            "write_timeout": CONNECT_TIMEOUT_SECONDS,
            "charset": str(target.options.get("charset") or "utf8mb4"),
        }
        for key in ("ssl_disabled", "ssl_verify_cert"):
            if key in target.options:
                connect_args[key] = bool(target.options[key])
        return {**super().engine_arguments(target), "connect_args": connect_args}

    def on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.SERVER_VERSION_QUERY)
            version = str(cursor.fetchone()[0])
        finally:
            cursor.close()
        record.info["is_mariadb"] = "mariadb" in version.lower()

    def prepare(
        self, conn: Connection, *, timeout_seconds: float, max_value_bytes: int | None = None
    ) -> None:
        raw = _driver_connection(conn)
        # PyMySQL has no per-query timeout; its socket timeout is raised for this query only
        # (restored in `finish`) so a dead server cannot hold the worker past the limit.
        raw._read_timeout = timeout_seconds + self.TIMEOUT_GRACE_SECONDS * 2
        setup = (
            self.MARIADB_STATEMENT_TIMEOUT_SETUP
            if conn.connection.info.get("is_mariadb")
            else self.STATEMENT_TIMEOUT_SETUP
        )
        assert setup is not None  # noqa: S101 - both are set on this class
        conn.exec_driver_sql(
            setup.format(
                milliseconds=max(1, int(timeout_seconds * 1000)),
                seconds=max(0.001, round(timeout_seconds, 3)),
            )
        )
        for statement in self.READ_ONLY_SETUP:
            conn.exec_driver_sql(statement)

    def finish(self, conn: Connection) -> None:
        _driver_connection(conn)._read_timeout = CONNECT_TIMEOUT_SECONDS

    def cancel(self, dbapi_connection: Any, engine: Engine) -> None:
        # MySQL stops a query only when asked from another connection.
        thread_id = int(dbapi_connection.thread_id())
        killer = engine.raw_connection()
        try:
            cursor = killer.cursor()
            cursor.execute(f"KILL QUERY {thread_id}")
            cursor.close()
        finally:
            killer.close()

    def describe_type(self, type_code: Any, conn: Connection) -> str | None:
        from pymysql.constants import FIELD_TYPE

        names = {v: k for k, v in vars(FIELD_TYPE).items() if k.isupper()}
        return names.get(type_code, super().describe_type(type_code, conn))

    def classify_error(self, exc: BaseException) -> str:
        args = getattr(exc, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code in (3024, 1969, 1317):
            return "timeout"
        if code == 1045:
            return "auth_failed"
        if code in (1049, 1044):
            # 1044: access denied to a database, which is how MySQL answers for one that does
            # not exist when the user may not see it.
            return "unknown_database"
        if code == 1792:
            return "read_only"
        if code == 2003:
            return "connect_timeout" if "timed out" in str(exc).lower() else "unreachable"
        if code == 2013:
            return "timeout"
        if code == 2006:  # server gone away
            return "connection_lost"
        if code in (1037, 1038, 1041, 1114, 1021):
            # Out of memory, of sort memory, of resources; a temporary table or the disk full.
            return "out_of_resources"
        if code == 1040:  # too many connections
            return "unreachable"
        if code in (2002, 2005):  # no socket, unknown host
            return "unreachable"
        if code is None and isinstance(exc, OSError):
            return _connection_failure_kind(str(exc))
        return "query_failed"


DUCKDB_MEMORY_LIMIT = "2GB"
"""The memory a DuckDB target's queries may use in this process (DuckDB's `memory_limit`)."""


class DuckDBDialect(Dialect):
    DB_TYPE = "duckdb"
    SQLGLOT_DIALECT = "duckdb"
    DRIVER = "duckdb"
    IS_FILE_BASED = True
    SERVER_VERSION_QUERY = "SELECT version()"
    ROW_COUNT_ESTIMATE_QUERY = (
        "SELECT table_name, estimated_size, NULL FROM duckdb_tables() "
        "WHERE database_name = current_database() AND schema_name = current_schema() "
        "AND NOT internal AND NOT temporary"
    )

    def build_url(self, target: ConnectionTarget) -> URL:
        return URL.create(self.DRIVER, database=str(target.database))

    def engine_arguments(self, target: ConnectionTarget) -> dict[str, Any]:
        return {
            "pool_size": POOL_SIZE,
            "max_overflow": POOL_MAX_OVERFLOW,
            "pool_timeout": CONNECT_TIMEOUT_SECONDS * 2,
            "connect_args": {
                "read_only": True,
                # No reading or writing other files (read_csv, COPY, ATTACH), and no query
                # may switch that back on.
                # DuckDB runs inside this process: its operators (sorts, joins, aggregates)
                # stay under this much memory instead of 80 % of the machine's. (What one
                # scalar call builds is outside it: the guard bounds those.)
                "config": {
                    "enable_external_access": False,
                    "memory_limit": DUCKDB_MEMORY_LIMIT,
                    # Nothing spilled to disk either: by default a big sort writes up to 90 %
                    # of the free disk into `<database>.tmp`, beside the user's file.
                    "temp_directory": "",
                    "lock_configuration": True,
                },
            },
        }

    def create_engine(self, target: ConnectionTarget) -> Engine:
        engine = super().create_engine(target)
        confinement = target.confinement
        if confinement is None:
            return engine
        path = str(target.database)

        def _open(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
            # Returning the connection makes SQLAlchemy use it instead of opening its own.
            return open_confined_locking(
                confinement,
                path,
                lambda: dialect.connect(*cargs, **cparams),
                lambda connection: connection.close(),
            )

        event.listen(engine, "do_connect", _open)
        return engine

    def cancel(self, dbapi_connection: Any, engine: Engine) -> None:
        dbapi_connection.interrupt()

    def classify_error(self, exc: BaseException) -> str:
        import duckdb

        # DuckDB has no error codes; its exception classes say what failed.
        if isinstance(exc, duckdb.InterruptException):
            return "timeout"
        if isinstance(exc, duckdb.OutOfMemoryException):
            # Past `memory_limit`: with no temporary directory nothing spills to disk.
            return "out_of_resources"
        if isinstance(exc, duckdb.IOException):
            return "unknown_database"
        if isinstance(exc, duckdb.InvalidInputException) and "read-only mode" in str(exc):
            # The one message DuckDB gives a statement refused by a read-only database.
            return "read_only"
        return "query_failed"


DIALECTS: dict[str, Dialect] = {
    d.DB_TYPE: d for d in (SQLiteDialect(), PostgreSQLDialect(), MySQLDialect(), DuckDBDialect())
}


def get_dialect(db_type: str) -> Dialect:
    """The dialect of `db_type`; raises `UnknownDatabaseType`."""
    try:
        return DIALECTS[db_type]
    except KeyError:
        raise UnknownDatabaseType(details={"db_type": db_type}) from None


def is_file_path(db_type: str) -> bool:
    return get_dialect(db_type).IS_FILE_BASED


def database_label(db_type: str, database: str) -> str:
    """The database name shown in snapshots: a file's name for file databases."""
    return Path(database).name if get_dialect(db_type).IS_FILE_BASED else database
