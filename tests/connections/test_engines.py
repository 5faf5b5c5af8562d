"""The engine cache: one engine per connection version; updates and deletes dispose it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.connections.engines import EngineCache, engine_cache
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from tests.connections.conftest import Caller, build_sqlite, connection_for


def test_the_same_version_reuses_its_engine(plain_settings: Settings, db_dir: Path) -> None:
    cache = EngineCache()
    connection = connection_for(plain_settings, "sqlite", path=build_sqlite(db_dir / "a.sqlite"))
    first = cache.get(connection, plain_settings)
    assert cache.get(connection, plain_settings) is first
    connection.updated_at = connection.created_at + timedelta(seconds=1)
    second = cache.get(connection, plain_settings)
    assert second is not first
    assert cache.get(connection, plain_settings) is second
    cache.dispose_all()


def test_least_recently_used_engines_are_evicted(plain_settings: Settings, db_dir: Path) -> None:
    cache = EngineCache(max_engines=2)
    path = build_sqlite(db_dir / "a.sqlite")
    connections = [connection_for(plain_settings, "sqlite", path=path) for _ in range(3)]
    for connection in connections:
        cache.get(connection, plain_settings)
    assert connections[0].id not in cache
    assert connections[1].id in cache and connections[2].id in cache
    cache.dispose_all()


def test_update_and_delete_through_the_api_drop_the_engine(
    client: TestClient, caller: Caller, session: Session, db_dir: Path
) -> None:
    path = build_sqlite(db_dir / "shop.sqlite")
    body = {"connection_name": "s", "db_type": "sqlite", "db_name": str(path)}
    cid = client.post("/api/v1/connections", json=body, headers=caller.headers).json()["id"]
    assert client.post(f"/api/v1/connections/{cid}/test", headers=caller.headers).is_success
    assert cid in engine_cache
    client.patch(f"/api/v1/connections/{cid}", json={"db_name": str(path)}, headers=caller.headers)
    assert cid in engine_cache  # the same target: nothing changed, nothing disposed
    other = build_sqlite(db_dir / "other.sqlite")
    client.patch(f"/api/v1/connections/{cid}", json={"db_name": str(other)}, headers=caller.headers)
    assert cid not in engine_cache
    assert client.post(f"/api/v1/connections/{cid}/test", headers=caller.headers).is_success
    assert cid in engine_cache
    assert session.get(DatabaseConnection, cid) is not None
    client.delete(f"/api/v1/connections/{cid}", headers=caller.headers)
    assert cid not in engine_cache
