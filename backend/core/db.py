"""The declarative base, the UTC datetime type, engines and the per-request session."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import NullPool, StaticPool
from sqlalchemy.types import TypeDecorator

from backend.core.cpu_slots import waiting
from backend.core.errors import is_database_busy
from backend.core.text import clean_text, dumps_clean

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend.

    SQLite hands back naive datetimes; this type stores UTC and attaches UTC on the way out,
    so no caller has to guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TimestampMixin(CreatedAtMixin):
    updated_at: Mapped[datetime | None] = mapped_column(default=None, onupdate=utcnow)


def _sqlite_configurer(busy_timeout_ms: int) -> Any:
    def configure(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return configure


DEFAULT_LOCK_TIMEOUT_SECONDS = 10.0


def _clean_parameter(value: Any) -> Any:
    return clean_text(value) if isinstance(value, str) else value


def _clean_parameters(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {k: _clean_parameter(v) for k, v in parameters.items()}
    if isinstance(parameters, tuple):
        return tuple(_clean_parameter(v) for v in parameters)
    if isinstance(parameters, list):
        return [_clean_parameters(p) for p in parameters]
    return parameters


def _storable_parameters(
    _conn: Any,
    _cursor: Any,
    statement: str,
    parameters: Any,
    _context: Any,
    _executemany: bool,
) -> tuple[str, Any]:
    """Every text the platform database receives is storable (see `core.hygiene`): a NUL or a
    lone surrogate from a provider or a user's database must never fail a recording."""
    return statement, _clean_parameters(parameters)


def sqlite_file_path(url: str) -> Path | None:
    """The file of a `sqlite:///` URL, or None for memory databases and other backends."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def ensure_private_sqlite_file(url: str) -> None:
    """Create the platform's SQLite file (and its folder) readable by the owner only.

    SQLite gives its -wal and -shm files the mode of the database file, so making the file
    0600 before SQLite first opens it keeps all three private. An existing file is left as the
    operator made it.
    """
    path = sqlite_file_path(url)
    if path is None or path.exists():
        return
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)
_HOLDS_WRITE_TURN = "nlsql_holds_write_turn"


class _FileTurn:
    """An exclusive lock on a file next to the database, shared by every process that opens
    it (`flock`): whoever holds it may write. The kernel drops it if its process dies.

    A writer that finds it held waits in the kernel (a blocking `flock`, on a helper thread so
    that the wait stays bounded), woken the moment the holder lets go. It used to poll every
    millisecond instead, so the releasing process's own next writer, which tries at once,
    could take turn after turn while a writer of another process slept between polls (with
    two worker processes, a record-stage p99 of sometimes ~50-60 ms at 32 clients, against
    20-40 ms with one)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._pid = 0
        self._state = threading.Condition()
        self._wanted = False
        """A writer of this process waits for the lock (at most one at a time: writers of
        one process queue on `SqliteWriteTurns`' own lock first)."""
        self._granted = False
        self._in_flight = False
        """The helper blocks in `flock` (it takes the lock for whoever wants it then)."""
        self._helper_pid = 0

    def _descriptor(self) -> int:
        # A process forked after the first use opens its own: a descriptor inherited across a
        # fork would share its lock with the parent.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def acquire(self, deadline: float) -> bool:
        """Take the lock, waiting until `deadline` (`time.monotonic()`); False if not taken."""
        fd = self._descriptor()
        with self._state:
            if not self._in_flight:
                # (While the helper blocks on this descriptor for a writer that gave up, a
                # lock taken here would be the helper's too, and let go with it.)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return True
                except BlockingIOError:
                    pass
            self._ensure_helper()
            self._wanted, self._granted = True, False
            self._state.notify_all()
            granted = self._state.wait_for(
                lambda: self._granted, timeout=max(0.0, deadline - time.monotonic())
            )
            # Not granted in time: the helper lets go of the lock if it gets it later on.
            self._wanted = self._granted = False
            return granted

    def _ensure_helper(self) -> None:
        # A thread does not survive a fork: a forked process starts its own.
        if self._helper_pid != os.getpid():
            self._helper_pid = os.getpid()
            self._wanted = self._granted = self._in_flight = False
            threading.Thread(
                target=self._wait_in_kernel, name="nlsql-sqlite-writeturn", daemon=True
            ).start()

    def _wait_in_kernel(self) -> None:
        fd = self._descriptor()
        while True:
            with self._state:
                self._state.wait_for(lambda: self._wanted and not self._granted)
                self._in_flight = True
            fcntl.flock(fd, fcntl.LOCK_EX)  # the GIL is released while it blocks
            with self._state:
                self._in_flight = False
                if self._wanted and not self._granted:
                    self._granted = True
                    self._state.notify_all()
                else:
                    fcntl.flock(fd, fcntl.LOCK_UN)  # its writer gave up waiting meanwhile

    def release(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class SqliteWriteTurns:
    """Write transactions of one SQLite database take turns, in this process on a lock and
    across processes on a lock file next to the database (`<database>-writeturn`).

    SQLite admits one writer at a time; a second writer is told "busy" and its busy handler
    sleeps in growing steps (up to 100 ms each), which turned concurrent asks' recording into a
    p99 of seconds (and, with two worker processes, of more than a second at 32 clients).
    Waiting on a lock wakes the next writer the moment the previous one commits. A transaction
    takes its turn at its first write statement and gives it back at commit or rollback (or
    when its connection is reset or closed); a process that dies gives it back too. Writers
    that do not take turns (the `sqlite3` shell, another program) still meet SQLite's busy
    handler, as before.

    A writer waits at most `wait_seconds` for its turn (the engine's lock timeout,
    `NLSQL_PLATFORM_LOCK_TIMEOUT_SECONDS`), then tries SQLite anyway, whose busy timeout is the
    same bound: past it, the statement fails as "database is locked" (503 `database_busy`).
    """

    def __init__(
        self, wait_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS, lock_file: Path | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._file = _FileTurn(lock_file) if lock_file is not None else None
        self.wait_seconds = wait_seconds

    def install(self, engine: Engine) -> None:
        event.listen(engine, "before_cursor_execute", self._before_execute)
        event.listen(engine, "commit", self._end)
        event.listen(engine, "rollback", self._end)
        event.listen(engine.pool, "reset", self._end_record)
        event.listen(engine.pool, "close", self._end_record_closed)
        event.listen(engine.pool, "invalidate", self._end_record_invalidated)

    def _before_execute(
        self,
        conn: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        _context: Any,
        _executemany: bool,
    ) -> None:
        if _HOLDS_WRITE_TURN in conn.info or not _WRITE_STATEMENT.match(statement):
            return
        deadline = time.monotonic() + self.wait_seconds
        held = self._lock.acquire(timeout=self.wait_seconds)
        if held and self._file is not None and not self._file.acquire(deadline):
            # Another process kept its turn too long: SQLite's busy handler decides.
            self._lock.release()
            held = False
        conn.info[_HOLDS_WRITE_TURN] = held

    def _release(self, info: dict[Any, Any]) -> None:
        if info.pop(_HOLDS_WRITE_TURN, False):
            if self._file is not None:
                self._file.release()
            self._lock.release()

    def _end(self, conn: Connection) -> None:
        self._release(conn.info)

    def _end_record(self, _dbapi: Any, record: Any, _reset_state: Any) -> None:
        self._release(record.info)

    def _end_record_closed(self, _dbapi: Any, record: Any) -> None:
        self._release(record.info)

    def _end_record_invalidated(self, _dbapi: Any, record: Any, _exc: Any) -> None:
        self._release(record.info)


_NO_AUTO_CHECKPOINT = "nlsql_no_auto_checkpoint"


class SqliteCheckpointer:
    """Checkpoints a WAL-mode SQLite platform database from a background thread, so that no
    request's write transaction does it.

    By default SQLite checkpoints inside the commit that takes the write-ahead log past 1,000
    pages: that commit copies the log into the database and syncs both files (tens of ms here)
    while its transaction still holds the write lock, and every writer queued behind it waits.
    While the checkpointer runs, connections checked out of the engine's pool have automatic
    checkpoints off (`PRAGMA wal_autocheckpoint=0`) and this thread runs a PASSIVE checkpoint
    every `interval_seconds`; a passive checkpoint takes no write lock, so writers go on
    appending to the log meanwhile. Several processes may each run one on the same file: a
    checkpoint that finds another one running is skipped. Stopped, it checkpoints once more.
    """

    def __init__(self, engine: Engine, interval_seconds: float = 0.5) -> None:
        self.engine = engine
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running = False
        event.listen(engine.pool, "checkout", self._on_checkout)

    def _on_checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if self._running and not record.info.get(_NO_AUTO_CHECKPOINT):
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
            record.info[_NO_AUTO_CHECKPOINT] = True

    def start(self) -> None:
        if self._thread is not None:
            return
        self._running = True
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, name="nlsql-sqlite-checkpoint", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._running = False
        self.checkpoint()

    def checkpoint(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint: (busy, frames in the log, frames checkpointed), or None
        when it could not run (another process is checkpointing, the file is gone)."""
        try:
            with self.engine.connect() as conn:
                row = conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
                return int(row[0]), int(row[1]), int(row[2])
        except Exception as exc:  # noqa: BLE001 - a skipped checkpoint is retried next tick
            _log.debug("WAL checkpoint skipped: %s", exc)
            return None

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.checkpoint()


def create_app_engine(
    url: str, *, lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS, **kwargs: Any
) -> Engine:
    """An engine for the platform database (not for users' databases).

    A statement waits at most `lock_timeout_seconds` for a lock (SQLite's busy timeout,
    PostgreSQL's `lock_timeout`); longer, and the request answers 503 `database_busy`.
    """
    kwargs.setdefault("json_serializer", dumps_clean)
    timeout_ms = max(1, int(lock_timeout_seconds * 1000))
    if url.startswith("sqlite"):
        connect_args: dict[str, Any] = {
            "check_same_thread": False,
            "timeout": lock_timeout_seconds,
        }
        if ":memory:" in url or url in ("sqlite://", "sqlite:///"):
            kwargs.setdefault("poolclass", StaticPool)
        else:
            ensure_private_sqlite_file(url)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_configurer(timeout_ms))
        database = sqlite_file_path(url)
        turn_file = database.with_name(database.name + "-writeturn") if database else None
        SqliteWriteTurns(lock_timeout_seconds, turn_file).install(engine)
    else:
        ping_all = kwargs.setdefault("pool_pre_ping", False)
        if "poolclass" not in kwargs:
            kwargs.setdefault("pool_size", 10)
            kwargs.setdefault("max_overflow", 20)
            kwargs.setdefault("pool_timeout", lock_timeout_seconds)
        if make_url(url).get_backend_name() == "postgresql":
            kwargs.setdefault("connect_args", {"options": f"-c lock_timeout={timeout_ms}"})
        engine = create_engine(url, **kwargs)
        if not ping_all:
            _ping_after_idle(engine, PING_AFTER_IDLE_SECONDS)
    event.listen(engine, "before_cursor_execute", _storable_parameters, retval=True)
    return engine


PING_AFTER_IDLE_SECONDS = 1.0
"""A pooled PostgreSQL connection idle longer than this is pinged before use."""
_IDLE_SINCE = "nlsql_idle_since"


def _ping_after_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle longer than `idle_seconds`.

    `pool_pre_ping` pings on every checkout: one more round trip each time, and a short ask
    checks out twice. A connection returned moments ago by a request that used it is known
    good; one that sat idle (a server restart, an idle timeout, a failover may have ended it)
    is pinged, and a dead one is replaced before the request sees it. A server lost while its
    connections were busy fails those requests once; the pool then drops every connection
    older than the failure (SQLAlchemy's disconnect handling).
    """

    def returned(_dbapi: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure means the connection is gone
            raise DisconnectionError("the pooled connection did not answer a ping") from exc
        if not alive:
            raise DisconnectionError("the pooled connection did not answer a ping")

    event.listen(engine.pool, "checkin", returned)
    event.listen(engine.pool, "checkout", checked_out)


def create_health_engine(url: str) -> Engine:
    """An engine for probes: no pool (a connection per probe, never queued behind busy
    requests) and a short connect timeout, so an unreachable database answers quickly."""
    if url.startswith("sqlite"):
        return create_app_engine(url, poolclass=NullPool)
    return create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 3})


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


def get_session(request: Request) -> Iterator[Session]:
    """One session per request: committed when the endpoint returns, rolled back if it raises.

    Declared with `scope="function"` (see `SessionDep`), so the commit happens before the
    response is sent and a failed commit becomes an error response, not a lie.
    """
    factory: sessionmaker[Session] = request.app.state.session_factory
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]


RETRY_PAUSE_SECONDS = (0.05, 0.1, 0.2, 0.5, 1.0)
"""Pauses between tries of `commit_with_retry`, the last one repeated."""


def commit_with_retry(
    session_factory: Callable[[], Session],
    write: Callable[[Session], _T],
    *,
    retry_seconds: float,
    what: str = "write",
) -> _T:
    """Run `write` in a fresh session and commit it; while the platform database is busy (a
    lock held past the lock timeout, an exhausted pool: `is_database_busy`), roll back and
    try again in a new session for up to `retry_seconds`, then raise the last busy error.

    For work that must not be lost once it has happened elsewhere (an ask's recording after
    its query ran). `write` must only write through the session it is given, since a failed
    try is rolled back whole; each try is one transaction, so the write commits exactly once.
    Between tries no connection and no CPU slot are held.
    """
    deadline = time.monotonic() + retry_seconds
    tries = 0
    while True:
        tries += 1
        try:
            with session_factory() as session:
                result = write(session)
                session.commit()
                return result
        except Exception as exc:
            remaining = deadline - time.monotonic()
            if not is_database_busy(exc) or remaining <= 0:
                raise
            pause = RETRY_PAUSE_SECONDS[min(tries, len(RETRY_PAUSE_SECONDS)) - 1]
            _log.warning("platform database busy during %s (try %d); trying again", what, tries)
            with waiting():
                time.sleep(min(pause, remaining))
