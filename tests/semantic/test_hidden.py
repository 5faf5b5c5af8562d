"""Hidden tables and columns never reach a prompt, a generator or an answer, and the layer's
definitions reach the LLM prompt: asserted on what the loopback provider server received."""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.demo import DEMO_DB_PATH
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import Caller, StandInGenerator
from tests.nl2sql.provider_server import ANTHROPIC, OPENAI, Provider, ProviderServer

SESSIONS = "/api/v1/chat/sessions"
LAYER: dict[str, Any] = {
    "tables": [
        {
            "name": "customers",
            "synonyms": ["clients"],
            "description": "People and companies who buy from the shop.",
            "columns": [{"name": "email", "hidden": True}],
        },
        {"name": "employees", "hidden": True},
    ],
    "measures": [
        {
            "name": "revenue",
            "synonyms": ["takings"],
            "table": "payments",
            "expression": "SUM(payments.amount)",
            "filter": "payments.paid_at IS NOT NULL",
            "time_column": "payments.paid_at",
        }
    ],
    "filters": [
        {"name": "shipped order", "table": "orders", "condition": "orders.shipped_date IS NOT NULL"}
    ],
    "today": "2024-06-30",
    "fiscal_year_start_month": 4,
    "instructions": ["Amounts are in USD before tax."],
}


def _demo_values(sql: str) -> list[str]:
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as conn:
        return [str(row[0]) for row in conn.execute(sql)]


EMAILS = _demo_values("SELECT email FROM customers ORDER BY id LIMIT 5")
SALARY_TITLES = _demo_values("SELECT DISTINCT title FROM employees")


def _put_layer(client: TestClient, caller: Caller) -> None:
    response = client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={"document": LAYER},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text


def _ask(client: TestClient, caller: Caller, question: str, **body: Any) -> Any:
    chat = client.post(
        SESSIONS, json={"connection_id": caller.connection_id}, headers=caller.headers
    )
    assert chat.status_code == 201
    return client.post(
        f"{SESSIONS}/{chat.json()['id']}/ask",
        json={"question": question, **body},
        headers=caller.headers,
    )


def _assert_nothing_hidden(text: str) -> None:
    lowered = text.lower()
    # `suppliers.contact_email` is visible; `customers.email` is not.
    assert re.search(r"\bemail\b", lowered) is None
    assert re.search(r"\b(employees|salary)\b", lowered) is None
    for value in EMAILS:
        assert value.lower() not in lowered


@pytest.mark.parametrize("provider", [OPENAI, ANTHROPIC], ids=lambda p: p.name)
def test_llm_prompt_has_definitions_and_no_hidden_items_and_the_answer_neither(
    client: TestClient, caller: Caller, server: ProviderServer, provider: Provider
) -> None:
    _put_layer(client, caller)
    # The model answers with SELECT *: the guard narrows it to the visible columns.
    server.add(
        provider.reply(
            "```sql\nSELECT * FROM customers ORDER BY id LIMIT 5\n```", model="test-model"
        )
    )

    response = _ask(
        client, caller, "revenue from clients last fiscal year", generator=provider.name
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert "first_name" in [c["name"] for c in body["columns"]]
    _assert_nothing_hidden(json.dumps(body))
    assert len(server.requests) == 1
    prompt = json.dumps(server.requests[0].body)
    _assert_nothing_hidden(prompt)
    for expected in (
        'Measure \\"revenue\\"',
        "SUM(payments.amount)",
        "payments.paid_at IS NOT NULL",
        "clients",
        "Today is 2024-06-30",
        "fiscal year starts in April",
        "Amounts are in USD before tax.",
    ):
        assert expected in prompt, expected


def test_llm_sql_reading_a_hidden_column_is_refused_and_repaired(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    _put_layer(client, caller)
    server.add(
        OPENAI.reply(
            "```sql\nSELECT first_name, email FROM customers LIMIT 3\n```", model="test-model"
        ),
        OPENAI.reply(
            "```sql\nSELECT first_name FROM customers ORDER BY id LIMIT 3\n```", model="test-model"
        ),
    )
    response = _ask(client, caller, "names of clients", generator="openai")
    assert response.status_code == 200, response.text
    assert response.json()["attempts"] == 2
    _assert_nothing_hidden(json.dumps(response.json()))
    repair_prompt = json.dumps(server.requests[1].body)
    assert "hidden by the connection's semantic layer" in repair_prompt


def test_llm_that_insists_on_a_hidden_table_ends_in_a_clear_400_that_is_recorded(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    _put_layer(client, caller)
    server.add(*[OPENAI.reply("```sql\nSELECT title FROM employees\n```", model="test-model")] * 5)
    response = _ask(client, caller, "job titles", generator="openai")
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "sql_reads_hidden" and error["details"]["rule"] == "hidden_table"
    for title in SALARY_TITLES:
        assert title not in response.text
    row = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == error["details"]["query_id"])
    ).one()
    assert row.success is False and row.error_code == "sql_reads_hidden"


def test_query_sql_refuses_hidden_items_and_narrows_star(
    client: TestClient, caller: Caller
) -> None:
    _put_layer(client, caller)

    def run(sql: str) -> Any:
        return client.post(
            "/api/v1/query/sql",
            json={"connection_id": caller.connection_id, "sql": sql},
            headers=caller.headers,
        )

    for sql, rule in (
        ("SELECT email FROM customers", "hidden_column"),
        ("SELECT c.id FROM customers AS c WHERE c.email LIKE '%@%'", "hidden_column"),
        ("SELECT COUNT(*) FROM employees", "hidden_table"),
        (
            "SELECT o.id FROM orders AS o JOIN employees AS e ON e.id = o.employee_id",
            "hidden_table",
        ),
    ):
        response = run(sql)
        assert response.status_code == 400, sql
        assert response.json()["error"]["code"] == "sql_reads_hidden"
        assert response.json()["error"]["details"]["rule"] == rule
    star = run("SELECT * FROM customers ORDER BY id LIMIT 3")
    assert star.status_code == 200, star.text
    assert [c["name"] for c in star.json()["columns"]][:3] == ["id", "first_name", "last_name"]
    _assert_nothing_hidden(json.dumps(star.json()))
    # Without the layer the same SQL reads the column again.
    client.put(
        f"/api/v1/connections/{caller.connection_id}/semantic-layer",
        json={"document": {}},
        headers=caller.headers,
    )
    assert run("SELECT email FROM customers LIMIT 1").status_code == 200


def test_export_of_an_earlier_query_is_refused_once_its_column_is_hidden(
    client: TestClient, caller: Caller
) -> None:
    ran = client.post(
        "/api/v1/query/sql",
        json={"connection_id": caller.connection_id, "sql": "SELECT email FROM customers"},
        headers=caller.headers,
    )
    assert ran.status_code == 200
    _put_layer(client, caller)
    export = client.get(f"/api/v1/query/{ran.json()['query_id']}/export", headers=caller.headers)
    assert export.status_code == 400
    assert export.json()["error"]["code"] == "sql_reads_hidden"


def test_offline_generators_get_the_visible_schema_and_the_public_layer(
    client: TestClient, caller: Caller, stand_in: StandInGenerator
) -> None:
    _put_layer(client, caller)
    response = _ask(client, caller, "all orders", generator="stand-in")
    assert response.status_code == 200, response.text
    request = stand_in.requests[-1]
    assert request.schema.table("employees") is None
    customers = request.schema.table("customers")
    assert customers is not None and customers.column("email") is None
    assert request.semantic is not None
    assert [t.name for t in request.semantic.tables] == ["customers"]
    assert request.semantic.tables[0].columns == []
    assert request.semantic.measures[0].name == "revenue"
    # No foreign key of the visible schema leads to the hidden table.
    orders = request.schema.table("orders")
    assert orders is not None
    assert all(fk.referred_table != "employees" for fk in orders.foreign_keys)
    _assert_nothing_hidden(json.dumps(response.json()))


def test_the_builtin_engine_never_answers_with_a_hidden_column(
    client: TestClient, caller: Caller
) -> None:
    _put_layer(client, caller)
    response = _ask(client, caller, "list the customers", generator="builtin")
    if response.status_code == 200:
        _assert_nothing_hidden(json.dumps(response.json()))
    else:
        assert response.status_code in (400, 422), response.text
        assert response.json()["error"]["code"] != "internal_error"


def test_earlier_answers_that_read_a_now_hidden_column_never_reach_the_prompt(
    client: TestClient, caller: Caller, server: ProviderServer
) -> None:
    chat = client.post(
        SESSIONS, json={"connection_id": caller.connection_id}, headers=caller.headers
    )
    chat_id = chat.json()["id"]
    server.add(
        OPENAI.reply(
            "```sql\nSELECT first_name, email FROM customers LIMIT 3\n```", model="test-model"
        ),
        OPENAI.reply("```sql\nSELECT first_name FROM customers LIMIT 3\n```", model="test-model"),
    )
    first = client.post(
        f"{SESSIONS}/{chat_id}/ask",
        json={"question": "contact list of clients", "generator": "openai"},
        headers=caller.headers,
    )
    assert first.status_code == 200, first.text
    _put_layer(client, caller)
    second = client.post(
        f"{SESSIONS}/{chat_id}/ask",
        json={"question": "and only their first names", "generator": "openai"},
        headers=caller.headers,
    )
    assert second.status_code == 200, second.text
    prompt = json.dumps(server.requests[1].body)
    # The first question is still there as context, without the SQL that read the column.
    assert "contact list of clients" in prompt
    _assert_nothing_hidden(prompt)
