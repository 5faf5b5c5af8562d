"""`GET /connections/{id}/schema` and the semantic layer's hidden items: marked `hidden` for a
caller who manages the layer, absent for a reader (and for anyone asking for the generator's
view)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.chat.conftest import Caller

LAYER: dict[str, Any] = {
    "tables": [
        {"name": "customers", "columns": [{"name": "email", "hidden": True}]},
        {"name": "employees", "hidden": True},
    ]
}


def _schema(client: TestClient, caller: Caller, headers: dict[str, str], query: str = "") -> Any:
    response = client.get(
        f"/api/v1/connections/{caller.connection_id}/schema{query}", headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def _tables(schema: Any) -> dict[str, Any]:
    return {t["name"]: t for t in schema["tables"]}


def _api_key(client: TestClient, caller: Caller, *scopes: str) -> dict[str, str]:
    created = client.post(
        "/api/v1/api-keys",
        json={"key_name": "-".join(scopes), "scopes": list(scopes)},
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    return {"X-API-Key": created.json()["key"]}


def _assert_marked(schema: Any) -> None:
    assert schema["includes_hidden"] is True
    tables = _tables(schema)
    assert tables["employees"]["hidden"] is True
    assert tables["customers"]["hidden"] is False
    columns = {c["name"]: c["hidden"] for c in tables["customers"]["columns"]}
    assert columns["email"] is True and columns["first_name"] is False
    assert schema["table_count"] == len(schema["tables"])


def _assert_absent(schema: Any) -> None:
    assert schema["includes_hidden"] is False
    tables = _tables(schema)
    assert "employees" not in tables
    assert "email" not in {c["name"] for c in tables["customers"]["columns"]}
    assert not any(t["hidden"] or any(c["hidden"] for c in t["columns"]) for t in tables.values())
    assert schema["table_count"] == len(schema["tables"])


def test_the_layers_manager_sees_hidden_items_marked_and_a_reader_never_sees_them(
    client: TestClient, caller: Caller
) -> None:
    before = _tables(_schema(client, caller, caller.headers))
    assert "employees" in before and before["employees"]["hidden"] is False
    put = client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={"document": LAYER},
        headers=caller.headers,
    )
    assert put.status_code == 200, put.text

    _assert_marked(_schema(client, caller, caller.headers))
    _assert_marked(
        _schema(client, caller, _api_key(client, caller, "connections:read", "connections:write"))
    )
    refreshed = client.post(
        f"/api/v1/connections/{caller.connection_id}/refresh-schema", headers=caller.headers
    )
    assert refreshed.status_code == 200, refreshed.text
    _assert_marked(refreshed.json())

    # What every generator sees, on request.
    _assert_absent(_schema(client, caller, caller.headers, "?include_hidden=false"))
    # A reader that cannot manage the layer never sees them, even when it asks.
    reader = _api_key(client, caller, "connections:read")
    _assert_absent(_schema(client, caller, reader))
    _assert_absent(_schema(client, caller, reader, "?include_hidden=true"))
