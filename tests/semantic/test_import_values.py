"""A semantic-layer import takes only what a JSON document could hold: YAML's `!!binary` (whose
bytes would carry a NUL past the text checks and into the stored layer) and `!!set` are a 422,
and a value YAML itself refuses (a date like 2024-13-45) is named as YAML, not JSON."""

from __future__ import annotations

import pytest
import yaml
from fastapi.testclient import TestClient

from backend.semantic import documents
from tests.chat.conftest import Caller


def _import(client: TestClient, caller: Caller, content: bytes) -> dict[str, object]:
    response = client.post(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer/import",
        files={"file": ("layer.yaml", content, "application/yaml")},
        headers=caller.headers,
    )
    assert response.status_code == 422, response.text
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    return error


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        # base64 of b"customers\x00x": a NUL inside what becomes a description
        (b"tables:\n- name: customers\n  description: !!binary Y3VzdG9tZXJzAHg=\n", "!!binary"),
        (b"instructions: !!set {Amounts are in USD, Fiscal year starts in April}\n", "!!set"),
        (b"tables: !!omap [{customers: x}]\n", "tuple"),
    ],
)
def test_values_json_cannot_hold_are_refused_and_nothing_is_stored(
    client: TestClient, caller: Caller, content: bytes, kind: str
) -> None:
    error = _import(client, caller, content)
    assert error["code"] == "semantic_layer_unreadable"
    details = error["details"]
    assert isinstance(details, dict) and kind in details["reason"]
    layer = client.get(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer", headers=caller.headers
    )
    assert layer.status_code == 404


def test_a_value_yaml_refuses_is_reported_as_yaml(client: TestClient, caller: Caller) -> None:
    error = _import(client, caller, b"today: 2024-13-45\n")
    details = error["details"]
    assert isinstance(details, dict)
    assert details["reason"] == "not valid YAML: month must be in 1..12"


def test_yaml_is_read_by_libyaml_where_pyyaml_has_it() -> None:
    if yaml.__with_libyaml__:
        assert documents.YAML_LOADER is yaml.CSafeLoader
    layer = documents.read_layer(b"today: 2024-06-30\ninstructions: [a, b]\n")
    assert str(layer.today) == "2024-06-30" and layer.instructions == ["a", "b"]
