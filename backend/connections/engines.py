"""The engine cache: one small pooled engine per connection and version of its settings."""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime

from sqlalchemy import Engine

from backend.connections.crypto import decrypt_password
from backend.connections.dialects import ConnectionTarget, get_dialect
from backend.connections.models import DatabaseConnection
from backend.connections.network import network_policy
from backend.connections.paths import PathConfinement, confine_database_path
from backend.core.config import Settings

MAX_CACHED_ENGINES = 64

CacheKey = tuple[str, datetime | None]


def connection_target(connection: DatabaseConnection, settings: Settings) -> ConnectionTarget:
    """What opening `connection` takes: the password decrypted, a file path confined again
    (settings or the file system may have changed since the connection was saved)."""
    dialect = get_dialect(connection.db_type)
    database = connection.db_name
    if dialect.IS_FILE_BASED:
        database = str(confine_database_path(connection.db_name, settings, must_exist=False))
    password = (
        decrypt_password(settings, connection.encrypted_db_password)
        if connection.encrypted_db_password
        else None
    )
    return ConnectionTarget(
        host=connection.db_host,
        port=connection.db_port,
        user=connection.db_user,
        password=password,
        database=database,
        options=dict(connection.options or {}),
        policy=None if dialect.IS_FILE_BASED else network_policy(settings),
        confinement=PathConfinement.from_settings(settings) if dialect.IS_FILE_BASED else None,
    )


class EngineCache:
    """Engines keyed by connection id and its last update; least recently used ones are
    disposed past `max_engines`. Thread-safe."""

    def __init__(self, max_engines: int = MAX_CACHED_ENGINES) -> None:
        self._max_engines = max_engines
        self._engines: OrderedDict[str, tuple[CacheKey, Engine]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _key(connection: DatabaseConnection) -> CacheKey:
        return (connection.id, connection.updated_at or connection.created_at)

    def get(self, connection: DatabaseConnection, settings: Settings) -> Engine:
        key = self._key(connection)
        with self._lock:
            cached = self._engines.get(connection.id)
            if cached is not None and cached[0] == key:
                self._engines.move_to_end(connection.id)
                return cached[1]
        # Built outside the lock: confinement and decryption touch the disk and the keys.
        engine = get_dialect(connection.db_type).create_engine(
            connection_target(connection, settings)
        )
        stale: list[Engine] = []
        with self._lock:
            cached = self._engines.get(connection.id)
            if cached is not None and cached[0] == key:
                stale.append(engine)
                engine = cached[1]
            else:
                if cached is not None:
                    stale.append(cached[1])
                self._engines[connection.id] = (key, engine)
            self._engines.move_to_end(connection.id)
            while len(self._engines) > self._max_engines:
                _, (_, evicted) = self._engines.popitem(last=False)
                stale.append(evicted)
        for old in stale:
            old.dispose()
        return engine

    def dispose(self, connection_id: str) -> bool:
        """Drop and dispose the engine of a connection; True if there was one."""
        with self._lock:
            cached = self._engines.pop(connection_id, None)
        if cached is None:
            return False
        cached[1].dispose()
        return True

    def dispose_all(self) -> None:
        with self._lock:
            engines = [engine for _, engine in self._engines.values()]
            self._engines.clear()
        for engine in engines:
            engine.dispose()

    def __contains__(self, connection_id: object) -> bool:
        with self._lock:
            return connection_id in self._engines


engine_cache = EngineCache()
"""The process-wide cache; update and delete of a connection dispose its engine."""
