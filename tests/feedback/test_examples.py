"""Verified examples over HTTP (add, list, approve, delete, scopes, the guard), and examples in the
prompt: chosen by similarity to the question, from the caller's own or approved material only,
as the loopback LLM server receives them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.feedback.models import VerifiedExample
from backend.nl2sql.engines.base import Example
from backend.nl2sql.relevance import rank_examples, words
from backend.observability.event_types import AuditAction
from backend.observability.models import AuditLog
from tests.chat.conftest import Caller, StandInGenerator, make_api_key_headers, make_caller
from tests.feedback.conftest import ask, examples_url, feedback_url
from tests.nl2sql.provider_server import API_KEY, OPENAI, ProviderServer, provider_server

GOOD_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country"
UNRELATED = [
    ("Average order value by payment method", "SELECT AVG(total) FROM orders"),
    ("Latest ten reviews", "SELECT * FROM orders ORDER BY order_date DESC LIMIT 10"),
    ("Products never sold", "SELECT COUNT(*) FROM products"),
    ("Orders returned last year", "SELECT COUNT(*) FROM orders WHERE status = 'returned'"),
    ("Total stock value", "SELECT COUNT(*) FROM products"),
    ("Busiest weekday for deliveries", "SELECT COUNT(*) FROM orders"),
    ("Median basket size", "SELECT COUNT(*) FROM orders"),
]


@pytest.fixture
def server() -> Any:
    with provider_server() as running:
        yield running


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    return settings.model_copy(
        update={
            "openai_base_url": server.base_url,
            "openai_api_key": SecretStr(API_KEY),
            "openai_model": "test-model",
            "llm_timeout_seconds": 5.0,
        }
    )


def _add(client: TestClient, caller: Caller, question: str, sql: str, **extra: Any) -> Any:
    return client.post(
        extra.pop("url", examples_url(caller.connection_id)),
        json={"question": question, "sql": sql},
        headers=extra.pop("headers", caller.headers),
    )


def _prompt_after_asking(
    client: TestClient, server: ProviderServer, caller: Caller, question: str
) -> str:
    server.add(OPENAI.reply(GOOD_SQL, model="test-model"))
    answer = ask(client, caller, question, generator="openai")
    assert answer["generator"] == "openai"
    return str(server.requests[-1].body)


def test_examples_are_added_guarded_listed_approved_and_deleted(
    client: TestClient, session: Session, caller: Caller, other_caller: Caller
) -> None:
    added = _add(client, caller, "Customers in each country", GOOD_SQL + ";")
    refused = _add(client, caller, "Drop them", "DROP TABLE customers")
    assert added.status_code == 201, added.text
    example = added.json()
    assert (example["source"], example["approved"], example["sql"]) == ("manual", True, GOOD_SQL)
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "sql_refused"
    assert _add(client, other_caller, "Mine now", GOOD_SQL).status_code == 201  # their own
    for question, sql in UNRELATED[:2]:
        assert _add(client, caller, question, sql).status_code == 201

    url = examples_url(caller.connection_id)
    first = client.get(url, params={"limit": 2}, headers=caller.headers).json()
    rest = client.get(
        url, params={"limit": 2, "cursor": first["next_cursor"]}, headers=caller.headers
    ).json()
    listed = [e["question"] for e in first["items"] + rest["items"]]
    assert sorted(listed) == sorted(["Customers in each country", *(q for q, _ in UNRELATED[:2])])
    assert rest["next_cursor"] is None
    assert client.get(url, headers=other_caller.headers).status_code == 404
    assert client.get(url, params={"source": "feedback"}, headers=caller.headers).json() == {
        "items": [],
        "next_cursor": None,
    }

    reader = make_api_key_headers(session, caller, scopes=["connections:read"])
    assert client.get(url, headers=reader).status_code == 200
    denied = _add(client, caller, "Count", "SELECT 1", headers=reader)
    assert denied.status_code == 403

    approve = f"{url}/{example['id']}/approve"
    assert client.post(approve, headers=caller.headers).json()["approved"] is True
    assert client.post(approve, headers=other_caller.headers).status_code == 404
    assert client.delete(f"{url}/{example['id']}", headers=other_caller.headers).status_code == 404
    assert client.delete(f"{url}/{example['id']}", headers=caller.headers).status_code == 204
    assert client.delete(f"{url}/{example['id']}", headers=caller.headers).status_code == 404
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.resource_id == example["id"]).order_by(AuditLog.id)
    ).all()
    assert actions == [AuditAction.EXAMPLE_CREATED, AuditAction.EXAMPLE_DELETED]


def test_a_parameterless_template_can_become_an_example(
    client: TestClient, caller: Caller, other_caller: Caller
) -> None:
    template = client.post(
        "/api/v1/templates",
        json={
            "name": "Orders",
            "question_template": "How many orders are there?",
            "sql_template": "SELECT COUNT(*) AS orders FROM orders",
        },
        headers=caller.headers,
    ).json()
    url = examples_url(caller.connection_id)

    copied = client.post(f"{url}/from-template/{template['id']}", headers=caller.headers)
    foreign = client.post(
        f"{examples_url(other_caller.connection_id)}/from-template/{template['id']}",
        headers=other_caller.headers,
    )
    no_sql = client.post(url, json={"question": "Only a question"}, headers=caller.headers)
    blank = client.post(url, json={"question": "   ", "sql": "SELECT 1"}, headers=caller.headers)

    assert copied.status_code == 201, copied.text
    assert copied.json()["source"] == "template"
    assert copied.json()["question"] == "How many orders are there?"
    assert copied.json()["template_id"] == template["id"]
    assert foreign.status_code in (403, 404)
    assert no_sql.status_code == 422 and blank.status_code == 422


def test_feedback_becomes_an_example_in_the_next_prompt_chosen_by_relevance(
    client: TestClient,
    session: Session,
    server: ProviderServer,
    caller: Caller,
    other_caller: Caller,
    stand_in: StandInGenerator,
) -> None:
    # Older, unrelated material that recency alone would prefer: added after the rating.
    answer = ask(client, caller, "customers per country")
    rated = client.post(
        feedback_url(answer["message_id"]),
        json={"rating": 2, "corrected_sql": GOOD_SQL + " ORDER BY customers DESC"},
        headers=caller.headers,
    )
    assert rated.status_code == 201, rated.text
    for question, sql in UNRELATED:
        assert _add(client, caller, question, sql).status_code == 201
    # Another user's material on their own connection, with words close to the question.
    other_answer = ask(client, other_caller, "customers per country")
    other_rated = client.post(
        feedback_url(other_answer["message_id"]),
        json={"rating": 1, "corrected_sql": "SELECT 'other users secret' AS country_customers"},
        headers=other_caller.headers,
    )
    assert other_rated.status_code == 201, other_rated.text
    assert _add(client, other_caller, "Customers of each country (theirs)", GOOD_SQL).status_code
    # A pending example on the caller's connection from someone else (a shared connection).
    pending = VerifiedExample(
        connection_id=caller.connection_id,
        question="Customers counted per country, pending",
        sql=GOOD_SQL,
        source="manual",
        owner_id=other_caller.user_id,
        approved=False,
    )
    session.add(pending)
    session.commit()

    prompt = _prompt_after_asking(client, server, caller, "How many customers per country?")

    assert "ORDER BY customers DESC" in prompt  # the correction, most similar question
    assert "other users secret" not in prompt and "(theirs)" not in prompt
    assert "pending" not in prompt
    shown_unrelated = [q for q, _ in UNRELATED if q in prompt]
    assert len(shown_unrelated) < len(UNRELATED)

    approved = client.post(
        f"{examples_url(caller.connection_id)}/{pending.id}/approve", headers=caller.headers
    )
    assert approved.status_code == 200, approved.text
    prompt = _prompt_after_asking(client, server, caller, "Customers per country, pending?")
    assert "Customers counted per country, pending" in prompt

    other_prompt = _prompt_after_asking(client, server, other_caller, "customers per country")
    assert "ORDER BY customers DESC" not in other_prompt
    assert not any(q in other_prompt for q, _ in UNRELATED)


def test_a_poorly_rated_answer_is_not_reused_as_an_example(
    client: TestClient, server: ProviderServer, caller: Caller, stand_in: StandInGenerator
) -> None:
    good = ask(client, caller, "how many orders are there?")
    bad = ask(client, caller, "monthly orders")
    assert (
        client.post(
            feedback_url(bad["message_id"]), json={"rating": 1}, headers=caller.headers
        ).status_code
        == 201
    )
    del good

    prompt = _prompt_after_asking(client, server, caller, "orders per month and in total")

    assert "how many orders are there?" in prompt
    assert "monthly orders" not in prompt


def test_ranking_prefers_shared_words_and_keeps_the_given_order_otherwise() -> None:
    candidates = [
        Example(question="Total stock value", sql="A"),
        Example(question="Revenue per month", sql="B"),
        Example(question="revenue PER month", sql="dup"),
        Example(question="Customers per country", sql="C"),
        Example(question="Orders by customer country", sql="D"),
    ]

    ranked = rank_examples("How many customers in each country?", candidates, limit=3)

    assert [e.sql for e in ranked] == ["C", "D", "A"]
    assert [e.sql for e in rank_examples("revenue", candidates, limit=5)][:1] == ["B"]
    assert "dup" not in [e.sql for e in rank_examples("revenue", candidates, limit=5)]
    assert [e.sql for e in rank_examples("???", candidates, limit=2)] == ["A", "B"]
    assert rank_examples("anything", [], limit=3) == []
    assert words("Which countries have the most Customers?") == ("country", "most", "customer")


def test_the_offline_engine_never_reads_examples(
    client: TestClient, app: Any, server: ProviderServer, caller: Caller
) -> None:
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", seen)
    try:
        ask(client, caller, "How many orders are there?", generator="builtin")
        offline = [s for s in statements if "verified_examples" in s]
        statements.clear()
        _prompt_after_asking(client, server, caller, "How many orders are there?")
        llm = [s for s in statements if "verified_examples" in s]
    finally:
        event.remove(app.state.engine, "before_cursor_execute", seen)

    assert offline == []
    assert len(llm) == 1


def test_an_admins_example_on_a_users_connection_is_pending_until_the_owner_approves(
    client: TestClient,
    session: Session,
    settings: Settings,
    server: ProviderServer,
    caller: Caller,
    other_caller: Caller,
) -> None:
    admin = make_caller(session, settings, role="admin")
    url = examples_url(caller.connection_id)
    added = client.post(
        url,
        json={"question": "Customers tallied by country, curated", "sql": GOOD_SQL},
        headers=admin.headers,
    )
    assert added.status_code == 201, added.text
    example = added.json()
    assert (example["approved"], example["owner_id"]) == (False, admin.user_id)
    assert example["approved_by"] is None
    # Nobody else reaches the connection's examples.
    assert _add(client, other_caller, "Sneaky", GOOD_SQL, url=url).status_code == 404
    assert client.get(url, headers=other_caller.headers).status_code == 404

    pending = client.get(url, params={"approved": False}, headers=caller.headers).json()
    assert [e["id"] for e in pending["items"]] == [example["id"]]
    assert client.get(url, headers=admin.headers).json()["items"][0]["id"] == example["id"]
    prompt = _prompt_after_asking(client, server, caller, "Customers tallied by country?")
    assert "curated" not in prompt

    approve = f"{url}/{example['id']}/approve"
    refused = client.post(approve, headers=admin.headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "not_connection_owner"
    approved = client.post(approve, headers=caller.headers)
    assert approved.status_code == 200, approved.text
    assert (approved.json()["approved"], approved.json()["approved_by"]) == (True, caller.user_id)
    assert client.get(url, params={"approved": False}, headers=caller.headers).json()["items"] == []
    prompt = _prompt_after_asking(client, server, caller, "Customers tallied by country?")
    assert "Customers tallied by country, curated" in prompt
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.resource_id == example["id"]).order_by(AuditLog.id)
    ).all()
    assert actions == [AuditAction.EXAMPLE_CREATED, AuditAction.EXAMPLE_APPROVED]


def test_an_earlier_answer_in_the_prompt_has_no_platform_row_cap(
    client: TestClient, server: ProviderServer, caller: Caller, stand_in: StandInGenerator
) -> None:
    # (h-layer4) recorded as run, `LIMIT 1001` (the cap plus the probe row); a prompt that
    # showed it would teach the model to write the platform's cap into every query
    earlier = ask(client, caller, "how many orders are there?")
    assert "LIMIT" in earlier["sql"].upper()

    prompt = _prompt_after_asking(client, server, caller, "orders in total")

    shown = prompt[prompt.index("how many orders are there?") :][:200]
    assert "FROM orders" in shown
    assert "LIMIT" not in shown.upper()  # was `... FROM orders LIMIT 1001`
