"""Running templates over HTTP (`POST /templates/{id}/run`) and answering questions from them:
values are bound by the driver, never pasted; runs are recorded and counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.observability.models import Event, QueryAnalytics
from backend.templates.models import QueryTemplate
from tests.chat.conftest import Caller, caller, other_caller, set_config
from tests.nl2sql.provider_server import API_KEY, ProviderServer, openai_reply, provider_server

__all__ = ["caller", "other_caller"]

URL = "/api/v1/templates"
BY_COUNTRY: dict[str, Any] = {
    "name": "Customers of a country",
    "question_template": "customers in {country}",
    "sql_template": (
        "SELECT first_name, last_name, country FROM customers WHERE country = :country "
        "ORDER BY id LIMIT :top"
    ),
    "parameters": [
        {"name": "country", "type": "string"},
        {"name": "top", "type": "integer", "default": 500},
    ],
}
INJECTIONS = [
    "x'; DROP TABLE customers; --",
    "Germany' OR '1'='1",
    "Germany' UNION SELECT name, sql, type FROM sqlite_master --",
]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as running:
        yield running


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    """An LLM generator is configured (the loopback server), so template-first is observable."""
    return settings.model_copy(
        update={"openai_base_url": server.base_url, "openai_api_key": SecretStr(API_KEY)}
    )


def _create(client: TestClient, caller: Caller, **changes: Any) -> dict[str, Any]:
    body = {**BY_COUNTRY, "connection_id": caller.connection_id, **changes}
    response = client.post(URL, json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _run(client: TestClient, caller: Caller, template_id: str, **body: Any) -> Any:
    return client.post(f"{URL}/{template_id}/run", json=body, headers=caller.headers)


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return dict(error)


def test_a_run_binds_its_parameters_and_is_recorded_and_counted(
    client: TestClient, session: Session, caller: Caller
) -> None:
    template = _create(client, caller)

    response = _run(client, caller, template["id"], parameters={"country": "Germany", "top": 3})

    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["name"] for c in body["columns"]] == ["first_name", "last_name", "country"]
    assert body["row_count"] == 3 and {r[2] for r in body["rows"]} == {"Germany"}
    assert ":country" in body["sql"] and "Germany" not in body["sql"]
    session.expire_all()
    row = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == body["query_id"])
    ).one()
    assert row.success and row.source == "template" and row.generator == "template"
    assert row.connection_id == caller.connection_id and row.row_count == 3
    event = session.scalars(select(Event).where(Event.event_type == "template_ran")).one()
    assert event.event_data is not None
    assert event.event_data["template_id"] == template["id"]
    assert event.event_data["parameters"] == {"country": "Germany", "top": 3}
    stored = session.get(QueryTemplate, template["id"])
    assert stored is not None and stored.usage_count == 1


def test_a_default_fills_a_missing_value(client: TestClient, caller: Caller) -> None:
    template = _create(client, caller)
    response = _run(client, caller, template["id"], parameters={"country": "Germany"})
    assert response.status_code == 200, response.text
    assert response.json()["row_count"] == 94  # every German customer: the default top is 500


@pytest.mark.parametrize("value", INJECTIONS)
def test_sql_in_a_parameter_value_is_only_data(
    client: TestClient, caller: Caller, value: str
) -> None:
    template = _create(client, caller)

    response = _run(client, caller, template["id"], parameters={"country": value})

    assert response.status_code == 200, response.text
    assert response.json()["rows"] == []
    # The table is still there and whole.
    again = _run(client, caller, template["id"], parameters={"country": "Germany"})
    assert again.json()["row_count"] == 94


def test_a_value_with_a_quote_matches_as_text(client: TestClient, caller: Caller) -> None:
    template = _create(
        client,
        caller,
        question_template="customers named {last_name}",
        sql_template="SELECT COUNT(*) AS n FROM customers WHERE last_name = :last_name",
        parameters=[{"name": "last_name", "type": "string"}],
    )
    names = client.post(
        "/api/v1/query/sql",
        json={
            "connection_id": caller.connection_id,
            "sql": "SELECT last_name, COUNT(*) FROM customers GROUP BY last_name ORDER BY 2 DESC",
        },
        headers=caller.headers,
    ).json()["rows"]
    name, count = names[0]
    response = _run(client, caller, template["id"], parameters={"last_name": name})
    assert response.json()["rows"] == [[count]]


def test_bad_parameters_are_422_and_nothing_runs(
    client: TestClient, session: Session, caller: Caller
) -> None:
    template = _create(client, caller)

    missing = _error(
        _run(client, caller, template["id"], parameters={}), 422, "template_parameter_invalid"
    )
    assert missing["details"]["errors"][0]["parameter"] == "country"
    _error(
        _run(client, caller, template["id"], parameters={"country": "DE", "top": "many"}),
        422,
        "template_parameter_invalid",
    )
    _error(
        _run(client, caller, template["id"], parameters={"country": "DE", "extra": 1}),
        422,
        "template_parameter_invalid",
    )
    session.expire_all()
    assert session.scalars(select(QueryAnalytics)).all() == []


def test_the_connection_is_the_templates_or_the_requests(
    client: TestClient, caller: Caller, other_caller: Caller
) -> None:
    unbound = _create(client, caller, connection_id=None, is_public=True)
    _error(
        _run(client, caller, unbound["id"], parameters={"country": "Germany"}), 422, "no_connection"
    )
    ran = _run(
        client,
        caller,
        unbound["id"],
        connection_id=caller.connection_id,
        parameters={"country": "Germany", "top": 1},
    )
    assert ran.status_code == 200, ran.text

    # Another user's public template is readable, but its SQL runs only on connections its
    # owner may use: never on the other user's, and the owner's is not theirs to name.
    _error(
        _run(
            client,
            other_caller,
            unbound["id"],
            connection_id=other_caller.connection_id,
            parameters={"country": "Germany", "top": 1},
        ),
        403,
        "template_not_applicable",
    )
    _error(
        _run(
            client,
            other_caller,
            unbound["id"],
            connection_id=caller.connection_id,
            parameters={"country": "Germany"},
        ),
        404,
        "connection_not_found",
    )
    private = _create(client, caller)
    _error(
        _run(client, other_caller, private["id"], parameters={"country": "Germany"}),
        404,
        "template_not_found",
    )
    bound = _create(client, caller)
    _error(
        _run(
            client,
            caller,
            bound["id"],
            connection_id=other_caller.connection_id,
            parameters={"country": "Germany"},
        ),
        409,
        "template_connection_mismatch",
    )


def test_a_question_matching_a_template_is_answered_from_it(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    template = _create(client, caller)
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()

    response = client.post(
        f"/api/v1/chat/sessions/{chat['id']}/ask",
        json={"question": "Customers in France?", "generator": "openai"},
        headers=caller.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["generator"] == "template" and body["template_id"] == template["id"]
    assert body["parameters"] == {"country": "France", "top": 500}
    assert body["row_count"] == 81 and body["prompt_tokens"] == 0
    assert server.requests == []  # the configured LLM was never asked
    session.expire_all()
    row = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == body["query_id"])
    ).one()
    assert row.source == "template" and row.generator == "template" and row.success
    stored = session.get(QueryTemplate, template["id"])
    assert stored is not None and stored.usage_count == 1


def test_a_bound_limit_is_capped_by_the_row_cap(
    client: TestClient, session: Session, caller: Caller
) -> None:
    set_config(session, "query.row_cap", 5)
    template = _create(client, caller)

    response = _run(client, caller, template["id"], parameters={"country": "Germany", "top": 90})

    assert response.status_code == 200, response.text
    assert response.json()["row_count"] == 5 and response.json()["truncated"] is True
    string_limit = _create(
        client,
        caller,
        parameters=[{"name": "country", "type": "string"}, {"name": "top", "type": "string"}],
    )
    _error(
        _run(client, caller, string_limit["id"], parameters={"country": "Germany", "top": "9"}),
        400,
        "sql_refused",
    )


def test_another_users_public_template_never_answers_nor_reaches_my_prompt(
    client: TestClient,
    session: Session,
    caller: Caller,
    other_caller: Caller,
    server: ProviderServer,
) -> None:
    # B publishes a template whose answer is a marker; A asks that very question.
    planted = {
        "name": "planted",
        "question_template": "how many customers are there",
        "sql_template": "SELECT 424242 AS count",
        "is_public": True,
    }
    response = client.post(URL, json=planted, headers=other_caller.headers)
    assert response.status_code == 201, response.text
    mine = {
        **planted,
        "name": "mine",
        "question_template": "list the countries",
        "sql_template": "SELECT DISTINCT country FROM customers",
    }
    assert client.post(URL, json=mine, headers=caller.headers).status_code == 201
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()
    ask = f"/api/v1/chat/sessions/{chat['id']}/ask"

    offline = client.post(
        ask, json={"question": "how many customers are there"}, headers=caller.headers
    )
    assert offline.status_code == 200, offline.text
    assert offline.json()["generator"] != "template" and offline.json()["rows"] != [[424242]]

    server.add(openai_reply("```sql\nSELECT COUNT(*) AS count FROM customers\n```"))
    llm = client.post(
        ask,
        json={"question": "how many customers are there", "generator": "openai"},
        headers=caller.headers,
    )
    assert llm.status_code == 200, llm.text
    assert llm.json()["generator"] == "openai" and llm.json()["rows"] != [[424242]]
    prompt = json.dumps(server.requests[-1].body)
    assert "424242" not in prompt  # B's template is not an example in A's prompt
    assert "SELECT DISTINCT country FROM customers" in prompt  # A's own template is

    # B, on B's own connection, is answered by B's template.
    theirs = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": other_caller.connection_id},
        headers=other_caller.headers,
    ).json()
    answered = client.post(
        f"/api/v1/chat/sessions/{theirs['id']}/ask",
        json={"question": "how many customers are there"},
        headers=other_caller.headers,
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["generator"] == "template" and answered.json()["rows"] == [[424242]]
