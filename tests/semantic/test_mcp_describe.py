"""MCP's describe_schema carries the connection's layer and leaves hidden items out."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.models import User
from tests import factories
from tests.chat.conftest import Caller
from tests.mcp_server.test_mcp import _http_client, _payload
from tests.support.live_server import serve_on_loopback


@pytest.fixture
def live_app(app: FastAPI) -> Iterator[str]:
    with serve_on_loopback(app) as url:
        yield url


def test_describe_schema_includes_the_layer_without_hidden_items(
    client: TestClient, live_app: str, session: Session, caller: Caller
) -> None:
    written = client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={
            "document": {
                "tables": [
                    {
                        "name": "customers",
                        "synonyms": ["clients"],
                        "columns": [{"name": "email", "hidden": True}],
                    },
                    {"name": "employees", "hidden": True},
                ],
                "measures": [
                    {"name": "revenue", "table": "payments", "expression": "SUM(payments.amount)"}
                ],
            }
        },
        headers=caller.headers,
    )
    assert written.status_code == 200, written.text
    user = session.get(User, caller.user_id)
    assert user is not None
    key = factories.create_api_key(session, user, scopes=["connections:read"])

    async def scenario() -> dict[str, object]:
        async with _http_client(live_app, key.headers) as mcp:
            return _payload(
                await mcp.call_tool("describe_schema", {"connection_id": caller.connection_id})
            )

    described = anyio.run(scenario)
    tables = {t["name"]: t for t in described["tables"]}  # type: ignore[attr-defined]
    assert "employees" not in tables and "orders" in tables
    assert "email" not in {c["name"] for c in tables["customers"]["columns"]}
    layer = described["semantic_layer"]
    assert isinstance(layer, dict)
    assert layer["measures"][0]["name"] == "revenue"
    assert [t["name"] for t in layer["tables"]] == ["customers"]
    assert '"employees"' not in json.dumps(described) and '"email"' not in json.dumps(described)


def _keys(value: object) -> set[str]:
    """Every key of every object nested in `value`."""
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_describe_schema_items_carry_no_hidden_marks(
    client: TestClient, live_app: str, session: Session, caller: Caller
) -> None:
    # An agent reads the schema as a generator does: what is hidden is absent, and what is left
    # is not marked `hidden: false` (nor the answer `includes_hidden`), for a key that may
    # write the layer as well as for one that may only read.
    written = client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={
            "document": {
                "tables": [{"name": "customers", "columns": [{"name": "email", "hidden": True}]}]
            }
        },
        headers=caller.headers,
    )
    assert written.status_code == 200, written.text
    user = session.get(User, caller.user_id)
    assert user is not None
    for scopes in (["connections:read"], ["connections:read", "connections:write"]):
        key = factories.create_api_key(session, user, scopes=scopes)

        async def scenario(headers: dict[str, str] = key.headers) -> dict[str, object]:
            async with _http_client(live_app, headers) as mcp:
                return _payload(
                    await mcp.call_tool("describe_schema", {"connection_id": caller.connection_id})
                )

        described = anyio.run(scenario)
        tables = described["tables"]
        assert isinstance(tables, list) and tables and described["table_count"] == len(tables)
        keys = _keys(tables)
        assert "hidden" not in keys and "includes_hidden" not in _keys(described), scopes
        assert {"name", "columns", "type"} <= keys
        customers = next(t for t in tables if t["name"] == "customers")
        assert "email" not in {c["name"] for c in customers["columns"]}
