"""Fixtures of the nl2sql tests: the loopback provider server, the providers, the demo schema,
and the chat tests' callers and stand-in engine (shared with the query tests)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backend.connections.executor import open_sqlite_read_only
from backend.connections.introspection import introspect
from backend.connections.snapshot import SchemaSnapshot
from backend.demo import DEMO_DB_PATH
from tests.chat.conftest import caller, other_caller, stand_in
from tests.nl2sql.provider_server import (
    ANTHROPIC,
    OPENAI,
    Provider,
    ProviderServer,
    provider_server,
)


@pytest.fixture(params=[OPENAI, ANTHROPIC], ids=lambda p: p.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as running:
        yield running


@pytest.fixture(scope="session")
def shop() -> SchemaSnapshot:
    engine = open_sqlite_read_only(DEMO_DB_PATH)
    try:
        return introspect(engine, db_type="sqlite", database_name="shop")
    finally:
        engine.dispose()


__all__ = ["caller", "other_caller", "provider", "server", "shop", "stand_in"]
