"""The semantic-layer API over HTTP: versions, edits, files, validation, audit and access."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.core.config import Settings
from backend.observability.models import AuditLog, Event
from backend.semantic.documents import MAX_IMPORT_BYTES
from backend.semantic.models import SemanticLayerHead, SemanticLayerVersion
from tests.chat.conftest import Caller, make_api_key_headers, make_caller
from tests.factories import token_headers

CONNECTIONS = "/api/v1/connections"

LAYER: dict[str, Any] = {
    "tables": [
        {
            "name": "customers",
            "description": "People and companies who buy from the shop.",
            "synonyms": ["clients", "buyers"],
            "columns": [
                {"name": "email", "hidden": True},
                {"name": "segment", "values": {"smb": "small business"}},
            ],
        }
    ],
    "measures": [
        {
            "name": "revenue",
            "synonyms": ["sales"],
            "table": "payments",
            "expression": "SUM(payments.amount)",
            "filter": "payments.paid_at IS NOT NULL",
            "time_column": "payments.paid_at",
        }
    ],
    "filters": [
        {"name": "shipped order", "table": "orders", "condition": "orders.shipped_date IS NOT NULL"}
    ],
    "joins": [
        {
            "from_table": "payments",
            "from_column": "order_id",
            "to_table": "orders",
            "to_column": "id",
        }
    ],
    "today": "2024-06-30",
    "fiscal_year_start_month": 4,
    "instructions": ["Amounts are in USD before tax."],
}


def _url(caller: Caller, tail: str = "") -> str:
    return f"{CONNECTIONS}/{caller.connection_id}/semantic-layer{tail}"


def _put(client: TestClient, caller: Caller, document: dict[str, Any], note: str = "x") -> Any:
    return client.put(
        _url(caller), json={"document": document, "note": note}, headers=caller.headers
    )


def _errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    body = response.json()["error"]
    assert body["code"] == "semantic_layer_invalid", body
    return {e["field"]: e["message"] for e in body["details"]["errors"]}


def test_a_connection_without_a_layer_answers_404_and_lists_no_versions(
    client: TestClient, caller: Caller
) -> None:
    response = client.get(_url(caller), headers=caller.headers)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "semantic_layer_not_found"
    listed = client.get(_url(caller, "/versions"), headers=caller.headers)
    assert listed.status_code == 200 and listed.json() == {"items": [], "next_cursor": None}


def test_put_stores_versions_that_read_back_and_never_change(
    client: TestClient, session: Session, caller: Caller
) -> None:
    first = _put(client, caller, LAYER, note="first definitions")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["version"] == 1 and body["is_current"] and body["source"] == "put"
    assert body["note"] == "first definitions" and body["author_id"] == caller.user_id
    assert body["document"]["measures"][0]["expression"] == "SUM(payments.amount)"
    assert body["document"]["today"] == "2024-06-30"

    second_doc = {**LAYER, "instructions": ["Amounts are in EUR."]}
    second = _put(client, caller, second_doc, note="currency")
    assert second.status_code == 200 and second.json()["version"] == 2

    current = client.get(_url(caller), headers=caller.headers).json()
    assert current["version"] == 2 and current["document"]["instructions"] == [
        "Amounts are in EUR."
    ]
    old = client.get(_url(caller), params={"version": 1}, headers=caller.headers).json()
    assert old["version"] == 1 and not old["is_current"]
    assert old["document"]["instructions"] == ["Amounts are in USD before tax."]
    missing = client.get(_url(caller), params={"version": 9}, headers=caller.headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "semantic_layer_version_not_found"

    rows = session.scalars(
        select(SemanticLayerVersion)
        .where(SemanticLayerVersion.connection_id == caller.connection_id)
        .order_by(SemanticLayerVersion.version)
    ).all()
    assert [r.version for r in rows] == [1, 2]
    assert rows[0].document["instructions"] == ["Amounts are in USD before tax."]


def test_versions_page_newest_first_with_the_cursor(client: TestClient, caller: Caller) -> None:
    for index in range(5):
        assert _put(client, caller, {"instructions": [f"rule {index}"]}).status_code == 200
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get(_url(caller, "/versions"), params=params, headers=caller.headers).json()
        seen.extend(item["version"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]
    bad = client.get(_url(caller, "/versions"), params={"cursor": "nope"}, headers=caller.headers)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_cursor"


def test_revert_writes_a_new_version_with_the_old_document(
    client: TestClient, caller: Caller
) -> None:
    _put(client, caller, LAYER)
    _put(client, caller, {"instructions": ["only this"]})
    reverted = client.post(
        _url(caller, "/revert"), json={"version": 1, "note": "back"}, headers=caller.headers
    )
    assert reverted.status_code == 200, reverted.text
    body = reverted.json()
    assert body["version"] == 3 and body["source"] == "revert" and body["reverted_from"] == 1
    assert body["document"]["measures"][0]["name"] == "revenue"
    versions = client.get(_url(caller, "/versions"), headers=caller.headers).json()["items"]
    assert [(v["version"], v["is_current"]) for v in versions] == [
        (3, True),
        (2, False),
        (1, False),
    ]
    unknown = client.post(_url(caller, "/revert"), json={"version": 7}, headers=caller.headers)
    assert unknown.status_code == 404


def test_patch_adds_replaces_and_removes_definitions_by_name(
    client: TestClient, caller: Caller
) -> None:
    _put(client, caller, LAYER)
    patched = client.patch(
        _url(caller),
        json={
            "note": "tweak",
            "measures": [
                {"name": "Revenue", "table": "payments", "expression": "SUM(payments.amount)"},
                {"name": "order count", "table": "orders", "expression": "COUNT(*)"},
            ],
            "remove_filters": ["shipped order"],
            "today": None,
        },
        headers=caller.headers,
    )
    assert patched.status_code == 200, patched.text
    document = patched.json()["document"]
    assert [m["name"] for m in document["measures"]] == ["Revenue", "order count"]
    assert document["measures"][0].get("filter") is None
    assert document["filters"] == [] and document["today"] is None
    assert document["tables"][0]["name"] == "customers"  # untouched parts stay
    assert patched.json()["version"] == 2 and patched.json()["source"] == "patch"

    missing = client.patch(_url(caller), json={"remove_measures": ["nope"]}, headers=caller.headers)
    assert _errors(missing) == {"remove_measures[0]": "nothing named 'nope' to remove"}


def test_patch_sets_how_fiscal_years_are_named(client: TestClient, caller: Caller) -> None:
    _put(client, caller, LAYER)
    patched = client.patch(
        _url(caller), json={"fiscal_year_named_by": "end"}, headers=caller.headers
    )
    assert patched.status_code == 200, patched.text
    document = patched.json()["document"]
    assert document["fiscal_year_named_by"] == "end"
    assert document["fiscal_year_start_month"] == 4  # untouched
    exported = client.get(_url(caller, "/export?format=yaml"), headers=caller.headers)
    assert exported.status_code == 200 and "fiscal_year_named_by: end" in exported.text

    wrong = client.patch(
        _url(caller), json={"fiscal_year_named_by": "middle"}, headers=caller.headers
    )
    assert wrong.status_code == 422, wrong.text
    error = wrong.json()["error"]
    assert set(error) >= {"code", "message", "details"}
    assert "fiscal_year_named_by" in wrong.text


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        (
            {"measures": [{"name": "m", "table": "payments", "expression": "payments.amount"}]},
            "measures[0].expression",
            "aggregate",
        ),
        (
            {
                "measures": [
                    {
                        "name": "m",
                        "table": "payments",
                        "expression": "SUM(payments.amount)",
                        "filter": "payments.amount + 1",
                    }
                ]
            },
            "measures[0].filter",
            "condition",
        ),
        (
            {"measures": [{"name": "m", "table": "payments", "expression": "SUM(payments.nope)"}]},
            "measures[0].expression",
            "'nope'",
        ),
        (
            {
                "measures": [
                    {
                        "name": "m",
                        "table": "payments",
                        "expression": "SUM(amount) FROM payments; DROP TABLE orders",
                    }
                ]
            },
            "measures[0].expression",
            "one SQL expression",
        ),
        (
            {
                "measures": [
                    {"name": "m", "table": "payments", "expression": "SUM(load_extension('x'))"}
                ]
            },
            "measures[0].expression",
            "load_extension",
        ),
        (
            {"measures": [{"name": "m", "table": "payments", "expression": "SUM(("}]},
            "measures[0].expression",
            "does not parse",
        ),
        (
            {"measures": [{"name": "m", "table": "invoices", "expression": "COUNT(*)"}]},
            "measures[0].table",
            "'invoices'",
        ),
        (
            {
                "measures": [
                    {
                        "name": "m",
                        "table": "payments",
                        "expression": "COUNT(*)",
                        "time_column": "paid_at",
                    }
                ]
            },
            "measures[0].time_column",
            "table.column",
        ),
        (
            {
                "filters": [
                    {
                        "name": "f",
                        "table": "orders",
                        "condition": "(SELECT COUNT(*) FROM sqlite_master) > 0",
                    }
                ]
            },
            "filters[0].condition",
            "catalog",
        ),
        (
            {"filters": [{"name": "f", "table": "orders", "condition": "COUNT(*) > 1"}]},
            "filters[0].condition",
            "aggregate",
        ),
        (
            {
                "joins": [
                    {
                        "from_table": "orders",
                        "from_column": "customer",
                        "to_table": "customers",
                        "to_column": "id",
                    }
                ]
            },
            "joins[0].from_column",
            "'customer'",
        ),
        (
            {"tables": [{"name": "customers", "columns": [{"name": "mail"}]}]},
            "tables[0].columns[0].name",
            "'mail'",
        ),
        ({"tables": [{"name": "clients"}]}, "tables[0].name", "'clients'"),
        (
            {"tables": [{"name": "orders", "time_column": "shipped"}]},
            "tables[0].time_column",
            "'shipped'",
        ),
        (
            {
                "measures": [{"name": "n", "table": "orders", "expression": "COUNT(*)"}],
                "filters": [{"name": "N", "table": "orders", "condition": "orders.id > 1"}],
            },
            "filters[0].name",
            "already defined",
        ),
        (
            {
                "tables": [{"name": "customers", "columns": [{"name": "email", "hidden": True}]}],
                "measures": [
                    {
                        "name": "m",
                        "table": "customers",
                        "expression": "COUNT(DISTINCT customers.email)",
                    }
                ],
            },
            "measures[0].expression",
            "hidden",
        ),
        ({"instructions": ["x" * 2001]}, "instructions[0]", "longer than"),
        (
            {
                "measures": [
                    {"name": f"m{i}", "table": "orders", "expression": "COUNT(*)"}
                    for i in range(501)
                ]
            },
            "measures",
            "at most 500",
        ),
    ],
)
def test_a_bad_definition_is_a_422_naming_its_field(
    client: TestClient,
    session: Session,
    caller: Caller,
    change: dict[str, Any],
    field: str,
    fragment: str,
) -> None:
    errors = _errors(_put(client, caller, change))
    assert field in errors, errors
    assert fragment in errors[field]
    # Nothing was stored.
    assert (
        session.scalar(
            select(SemanticLayerHead).where(SemanticLayerHead.connection_id == caller.connection_id)
        )
        is None
    )


def test_export_and_import_round_trip_in_yaml_and_json(client: TestClient, caller: Caller) -> None:
    _put(client, caller, LAYER)
    as_yaml = client.get(_url(caller, "/export"), params={"format": "yaml"}, headers=caller.headers)
    assert as_yaml.status_code == 200
    assert as_yaml.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(as_yaml.text)["measures"][0]["name"] == "revenue"
    by_accept = client.get(
        _url(caller, "/export"), headers={**caller.headers, "Accept": "application/yaml"}
    )
    assert by_accept.text == as_yaml.text
    as_json = client.get(_url(caller, "/export"), headers=caller.headers)
    assert as_json.headers["content-type"].startswith("application/json")
    assert json.loads(as_json.text) == yaml.safe_load(as_yaml.text)

    original = client.get(_url(caller), headers=caller.headers).json()["document"]
    for name, text in (("layer.yaml", as_yaml.text), ("layer.json", as_json.text)):
        imported = client.post(
            _url(caller, "/import"),
            files={"file": (name, text.encode(), "application/octet-stream")},
            data={"note": f"from {name}"},
            headers=caller.headers,
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["source"] == "import"
        assert imported.json()["note"] == f"from {name}"
        assert imported.json()["document"] == original
    versions = client.get(_url(caller, "/versions"), headers=caller.headers).json()["items"]
    assert [v["version"] for v in versions] == [3, 2, 1]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"a: &x [1, 2]\nb: *x\n", "semantic_layer_unreadable"),
        (b"!!python/object/apply:os.system ['true']\n", "semantic_layer_unreadable"),
        (b"[" * 5000 + b"]" * 5000, "semantic_layer_unreadable"),
        (b"{" * 5000, "semantic_layer_unreadable"),
        (b"\xff\xfe\x00garbage", "semantic_layer_unreadable"),
        (b'instructions: ["\\0"]\n', "semantic_layer_unreadable"),
        (b"- just\n- a list\n", "semantic_layer_unreadable"),
        (b"tables: {a: 1}\n", "semantic_layer_invalid"),
        (b"unknown_field: 1\n", "semantic_layer_invalid"),
        (b"fiscal_year_start_month: 99999999999999999999999\n", "semantic_layer_unreadable"),
        (b"x: " + b"y" * (MAX_IMPORT_BYTES + 10), "semantic_layer_unreadable"),
    ],
)
def test_hostile_imports_are_a_422_and_store_nothing(
    client: TestClient, caller: Caller, content: bytes, code: str
) -> None:
    response = client.post(
        _url(caller, "/import"),
        files={"file": ("layer.yaml", content, "application/yaml")},
        headers=caller.headers,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == code
    assert client.get(_url(caller), headers=caller.headers).status_code == 404


def test_every_write_is_audited_and_records_an_event(
    client: TestClient, session: Session, caller: Caller
) -> None:
    _put(client, caller, LAYER, note="one")
    client.post(_url(caller, "/revert"), json={"version": 1}, headers=caller.headers)
    audits = session.scalars(
        select(AuditLog)
        .where(AuditLog.action == "semantic_layer.write")
        .where(AuditLog.resource_id == caller.connection_id)
        .order_by(AuditLog.id)
    ).all()
    assert [a.new_values["version"] for a in audits if a.new_values] == [1, 2]
    assert audits[0].user_id == caller.user_id and audits[0].old_values == {"version": None}
    assert audits[0].new_values is not None and audits[0].new_values["hidden_columns"] == 1
    assert audits[1].new_values is not None and audits[1].new_values["reverted_from"] == 1
    events = session.scalars(
        select(Event).where(Event.event_type == "semantic_layer_changed").order_by(Event.id)
    ).all()
    mine = [
        e.event_data
        for e in events
        if e.event_data and e.event_data["connection_id"] == caller.connection_id
    ]
    assert [(d["version"], d["source"]) for d in mine] == [(1, "put"), (2, "revert")]
    # A refused write leaves no trace of a version.
    _put(client, caller, {"tables": [{"name": "nope"}]})
    session.expire_all()
    assert (
        session.scalar(
            select(SemanticLayerHead.current_version).where(
                SemanticLayerHead.connection_id == caller.connection_id
            )
        )
        == 2
    )


def test_a_read_only_key_reads_but_cannot_write(
    client: TestClient, session: Session, caller: Caller
) -> None:
    _put(client, caller, LAYER)
    reader = make_api_key_headers(session, caller, scopes=["connections:read"])
    assert client.get(_url(caller), headers=reader).status_code == 200
    assert client.get(_url(caller, "/export"), headers=reader).status_code == 200
    for method, tail, kwargs in (
        ("put", "", {"json": {"document": LAYER}}),
        ("patch", "", {"json": {"instructions": []}}),
        ("post", "/revert", {"json": {"version": 1}}),
        ("post", "/import", {"files": {"file": ("l.yaml", b"instructions: []\n")}}),
    ):
        response = client.request(method.upper(), _url(caller, tail), headers=reader, **kwargs)
        assert response.status_code == 403, (method, tail, response.text)
        assert response.json()["error"]["details"]["missing_scopes"] == ["connections:write"]
    no_read = make_api_key_headers(session, caller, scopes=["chat:read"])
    assert client.get(_url(caller), headers=no_read).status_code == 403
    elsewhere = make_api_key_headers(
        session, caller, scopes=["connections:read", "connections:write"], connection_ids=["x"]
    )
    assert client.get(_url(caller), headers=elsewhere).status_code == 403


def test_another_users_connection_is_404_and_an_admin_may_edit_it(
    client: TestClient, session: Session, settings: Settings, caller: Caller, other_caller: Caller
) -> None:
    _put(client, caller, LAYER)
    for method in ("GET", "PUT"):
        response = client.request(
            method, _url(caller), json={"document": LAYER}, headers=other_caller.headers
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "connection_not_found"
    assert client.post(_url(caller, "/draft"), headers=other_caller.headers).status_code == 404

    admin = make_caller(session, settings, role="admin")
    admin_user = session.get(User, admin.user_id)
    assert admin_user is not None
    headers = token_headers(session, settings, admin_user)
    written = client.put(
        _url(caller), json={"document": {"instructions": ["set by the admin"]}}, headers=headers
    )
    assert written.status_code == 200, written.text
    assert written.json()["author_id"] == admin.user_id


def test_deleting_the_connection_deletes_its_layer(
    client: TestClient, session: Session, caller: Caller
) -> None:
    _put(client, caller, LAYER)
    _put(client, caller, {"instructions": ["second"]})
    deleted = client.delete(f"{CONNECTIONS}/{caller.connection_id}", headers=caller.headers)
    assert deleted.status_code == 204
    session.expire_all()
    assert (
        session.scalars(
            select(SemanticLayerVersion).where(
                SemanticLayerVersion.connection_id == caller.connection_id
            )
        ).all()
        == []
    )
    assert session.get(SemanticLayerHead, caller.connection_id) is None
