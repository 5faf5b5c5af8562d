"""The proposed draft: on the demo database (declared keys) and on a schema without foreign keys."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.connections import service as connections_service
from backend.semantic.models import SemanticLayerHead
from tests.chat.conftest import Caller

NO_KEYS_SCHEMA = """
CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    is_enterprise INTEGER NOT NULL,
    has_trial BOOLEAN,
    mrr NUMERIC(10, 2),
    created_at DATE NOT NULL,
    churned_at DATE
);
CREATE TABLE invoices (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL,
    amount REAL NOT NULL,
    issue_date DATE NOT NULL,
    channel TEXT NOT NULL
);
CREATE TABLE categories (id INTEGER PRIMARY KEY, title TEXT);
CREATE TABLE products (id INTEGER PRIMARY KEY, category_id INTEGER, price REAL, is_beta INTEGER);
INSERT INTO accounts VALUES (1, 'Acme', 1, 0, 99.5, '2024-01-02', NULL);
INSERT INTO accounts VALUES (2, 'Globex', 0, 1, 10, '2024-02-03', '2024-05-01');
INSERT INTO invoices VALUES (1, 1, 100, '2024-03-01', 'mobile_app');
INSERT INTO invoices VALUES (2, 2, 50, '2024-04-01', 'web');
INSERT INTO categories VALUES (1, 'Tools');
INSERT INTO products VALUES (1, 1, 9.5, 7);
"""


def _draft(client: TestClient, caller: Caller) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer/draft", headers=caller.headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["connection_id"] == caller.connection_id
    return body["document"]  # type: ignore[no-any-return]


def _no_keys_connection(session: Session, caller: Caller, db_dir: Path) -> Caller:
    path = db_dir / "saas.sqlite"
    with sqlite3.connect(path) as conn:
        conn.executescript(NO_KEYS_SCHEMA)
    connection = connections_service.ensure_sqlite_connection(
        session, user_id=caller.user_id, connection_name="saas", path=str(path)
    )
    session.commit()
    return Caller(
        user_id=caller.user_id,
        email=caller.email,
        headers=caller.headers,
        connection_id=connection.id,
    )


def test_draft_of_the_demo_database_is_valid_deterministic_and_not_stored(
    client: TestClient, session: Session, caller: Caller
) -> None:
    document = _draft(client, caller)
    assert _draft(client, caller) == document
    measures = {m["name"]: m for m in document["measures"]}
    assert measures["number of orders"]["expression"] == "COUNT(*)"
    assert measures["number of orders"]["time_column"] == "orders.order_date"
    assert measures["total amount"]["expression"] == "SUM(payments.amount)"
    assert measures["total shipping cost"]["expression"] == "SUM(orders.shipping_cost)"
    # The demo declares its foreign keys: nothing to propose.
    assert document["joins"] == []
    columns = {(t["name"], c["name"]): c for t in document["tables"] for c in t.get("columns", [])}
    assert columns[("orders", "order_date")]["description"] == "Date."
    assert columns[("payments", "amount")]["description"] == "Money amount."
    assert columns[("payments", "method")]["values"]["bank transfer"] == "bank_transfer"
    assert "Label" in columns[("products", "name")]["description"]
    assert session.get(SemanticLayerHead, caller.connection_id) is None

    kept = client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={"document": document, "note": "accepted the draft"},
        headers=caller.headers,
    )
    assert kept.status_code == 200, kept.text


def test_draft_without_foreign_keys_proposes_joins_flags_money_and_active_filters(
    client: TestClient, session: Session, caller: Caller, db_dir: Path
) -> None:
    saas = _no_keys_connection(session, caller, db_dir)
    document = _draft(client, saas)

    joins = {
        (j["from_table"], j["from_column"], j["to_table"], j["to_column"])
        for j in document["joins"]
    }
    assert joins == {
        ("invoices", "account_id", "accounts", "id"),
        ("products", "category_id", "categories", "id"),
    }
    columns = {
        (t["name"], c["name"]): c.get("description")
        for t in document["tables"]
        for c in t.get("columns", [])
    }
    assert columns[("accounts", "is_enterprise")].startswith("Flag")
    assert columns[("accounts", "has_trial")].startswith("Flag")
    # Named like a flag, but its values are not 0/1.
    assert not (columns.get(("products", "is_beta")) or "").startswith("Flag")
    assert columns[("accounts", "mrr")] == "Money amount."
    assert columns[("accounts", "churned_at")].startswith("Date: when the account churned")
    assert columns[("accounts", "name")].startswith("Label")
    filters = {f["name"]: f for f in document["filters"]}
    assert filters["active account"]["condition"] == "accounts.churned_at IS NULL"
    measures = {m["name"]: m for m in document["measures"]}
    assert measures["total mrr"]["expression"] == "SUM(accounts.mrr)"
    assert measures["total mrr"]["time_column"] == "accounts.created_at"
    assert measures["total amount"]["time_column"] == "invoices.issue_date"
    assert measures["total price"]["expression"] == "SUM(products.price)"
    invoice_columns = next(t for t in document["tables"] if t["name"] == "invoices")["columns"]
    channel = next(c for c in invoice_columns if c["name"] == "channel")
    assert channel["values"] == {"mobile app": "mobile_app"}

    kept = client.put(
        f"/api/v1/connections/{saas.connection_id}/semantic-layer",
        json={"document": document},
        headers=caller.headers,
    )
    assert kept.status_code == 200, kept.text
