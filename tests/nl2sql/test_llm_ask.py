"""Asking over HTTP with the `openai` and `anthropic` generators, against a real provider
server on loopback: answers, repairs, back-off, timeouts, malformed replies, choice, recording.

Every failure must end in a clear status with the one error shape AND a recorded failure
(query_analytics.success = false with its error_code), never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.core.config import Settings
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller, set_config
from tests.nl2sql.provider_server import (
    ANTHROPIC,
    OPENAI,
    Provider,
    ProviderServer,
    Reply,
    provider_settings,
)

SESSIONS = "/api/v1/chat/sessions"
GOOD_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country ORDER BY country"
PRICES = {"test-model": {"prompt": 0.5, "completion": 1.5}}


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    """The app's settings pointing both providers at the loopback server."""
    return provider_settings(settings, server, timeout_seconds=1.0)


def _ask(
    client: TestClient, caller: Caller, question: str = "customers per country", **body: Any
) -> Any:
    chat_id = caller.open_chat(client)
    return client.post(
        f"{SESSIONS}/{chat_id}/ask", json={"question": question, **body}, headers=caller.headers
    )


def _analytics(session: Session, query_id: str) -> QueryAnalytics:
    session.expire_all()
    return session.scalars(select(QueryAnalytics).where(QueryAnalytics.query_id == query_id)).one()


def _ask_event(session: Session, query_id: str) -> dict[str, Any]:
    for event in session.scalars(select(Event).where(Event.event_type == "asked")):
        if event.event_data and event.event_data.get("query_id") == query_id:
            return dict(event.event_data)
    raise AssertionError(f"no asked event for {query_id}")


def _reply(provider: Provider, text: str) -> Reply:
    return provider.reply(text, model="test-model")


def _failure(
    session: Session, response: Any, status: int, code: str
) -> tuple[dict[str, Any], QueryAnalytics]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    row = _analytics(session, error["details"]["query_id"])
    assert row.success is False and row.error_code == code
    return error, row


def test_ask_with_each_provider_answers_and_records_tokens_and_cost(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
) -> None:
    set_config(session, "llm.price_table", PRICES)
    server.add(_reply(provider, f"```sql\n{GOOD_SQL}\n```"))

    response = _ask(client, caller, generator=provider.name)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["generator"] == provider.name and body["requested_generator"] == provider.name
    assert body["generator_note"] is None and body["template_id"] is None
    assert body["model"] == "test-model" and body["attempts"] == 1
    assert (body["prompt_tokens"], body["completion_tokens"]) == (120, 30)
    assert ["Australia", 31] in body["rows"]
    assert body["cost_estimate"] == pytest.approx((120 * 0.5 + 30 * 1.5) / 1000)
    assert [r.path for r in server.requests] == [provider.path]
    # The prompt holds the schema of the connection.
    assert "customers" in str(server.requests[0].body)

    row = _analytics(session, body["query_id"])
    assert row.success and row.source == "ask" and row.generator == provider.name
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (120, 30, 150)
    assert row.llm_model == "test-model"
    assert row.llm_cost_estimate == pytest.approx(0.105)
    user = session.get(User, caller.user_id)
    assert user is not None and user.token_usage == 150


def test_repair_after_a_guard_refusal(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
) -> None:
    server.add(_reply(provider, "DELETE FROM customers"), _reply(provider, GOOD_SQL))

    response = _ask(client, caller, generator=provider.name)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["attempts"] == 2
    assert (body["prompt_tokens"], body["completion_tokens"]) == (240, 60)
    assert len(server.requests) == 2
    repair_prompt = str(server.requests[1].body)
    assert "DELETE FROM customers" in repair_prompt and "not DELETE" in repair_prompt
    event = _ask_event(session, body["query_id"])
    assert [a["sql"] for a in event["attempts"]] == ["DELETE FROM customers", GOOD_SQL]
    assert "not DELETE" in event["attempts"][0]["error"] and event["attempts"][1]["error"] is None
    row = _analytics(session, body["query_id"])
    assert row.success and row.total_tokens == 300


def test_repair_after_a_database_error(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    bad = "SELECT no_such_column FROM customers"
    server.add(_reply(OPENAI, bad), _reply(OPENAI, GOOD_SQL))

    response = _ask(client, caller, generator="openai")

    assert response.status_code == 200, response.text
    assert response.json()["attempts"] == 2
    assert "no_such_column" in str(server.requests[1].body)
    event = _ask_event(session, response.json()["query_id"])
    assert "no such column" in event["attempts"][0]["error"]


def test_repairs_are_bounded_and_the_last_failure_is_recorded(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    server.add(*[_reply(ANTHROPIC, "DELETE FROM customers") for _ in range(5)])

    response = _ask(client, caller, generator="anthropic")

    error, row = _failure(session, response, 400, "sql_refused")
    assert len(server.requests) == 3  # the first attempt and two repairs
    assert row.total_tokens == 450 and row.generator == "anthropic"
    event = _ask_event(session, error["details"]["query_id"])
    assert len(event["attempts"]) == 3 and event["success"] is False
    user = session.get(User, caller.user_id)
    assert user is not None and user.token_usage == 450


def test_a_429_is_retried_after_its_back_off(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    server.add(
        Reply(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0"}),
        _reply(OPENAI, GOOD_SQL),
    )

    response = _ask(client, caller, generator="openai")

    assert response.status_code == 200, response.text
    assert len(server.requests) == 2
    # The default back-off (0.5 s) is longer than Retry-After: 0, so it is what was waited.
    assert server.requests[1].received_at - server.requests[0].received_at >= 0.45


def test_persistent_429s_end_in_a_recorded_provider_error(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    server.add(*[Reply(429, {"error": {"message": "slow"}}, headers={"Retry-After": "0"})] * 3)

    response = _ask(client, caller, generator="openai")

    _failure(session, response, 502, "llm_provider_error")
    assert len(server.requests) == 3


def test_a_timeout_ends_in_504_and_a_recorded_failure(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer, provider: Provider
) -> None:
    server.add(Reply(200, {}, delay_seconds=2.0))

    response = _ask(client, caller, generator=provider.name)

    _failure(session, response, 504, "llm_timeout")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, "this is not json"),
        Reply(200, {"unexpected": "shape"}),
    ],
    ids=["not-json", "wrong-shape"],
)
def test_a_malformed_reply_ends_in_502_and_a_recorded_failure(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer, reply: Reply
) -> None:
    server.add(reply)

    response = _ask(client, caller, generator="anthropic")

    _failure(session, response, 502, "llm_reply_invalid")


def test_a_reply_without_sql_is_a_recorded_failure(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    server.add(_reply(OPENAI, "I am sorry, I cannot help with that."))

    response = _ask(client, caller, generator="openai")

    _failure(session, response, 502, "llm_reply_invalid")


def test_preference_then_system_default_choose_the_generator(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    set_config(session, "nl2sql.default_generator", "openai")
    server.add(_reply(OPENAI, GOOD_SQL))
    by_default = _ask(client, caller)
    assert by_default.status_code == 200, by_default.text
    assert by_default.json()["generator"] == "openai"
    assert server.requests[-1].path == OPENAI.path

    patched = client.patch(
        "/api/v1/auth/me",
        json={"preferences": {"generator": "anthropic"}},
        headers=caller.headers,
    )
    assert patched.status_code == 200, patched.text
    server.add(_reply(ANTHROPIC, GOOD_SQL))
    preferred = _ask(client, caller)
    assert preferred.status_code == 200, preferred.text
    assert preferred.json()["generator"] == "anthropic"
    assert server.requests[-1].path == ANTHROPIC.path

    server.add(_reply(OPENAI, GOOD_SQL))
    per_request = _ask(client, caller, generator="openai")
    assert per_request.json()["generator"] == "openai"
    event = _ask_event(session, per_request.json()["query_id"])
    assert event["generator_source"] == "request"


def test_an_llm_without_an_api_key_falls_back_to_builtin_and_says_so(
    app: Any,
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"anthropic_api_key": None})

    response = _ask(client, caller, generator="anthropic")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["generator"] == "builtin" and body["requested_generator"] == "anthropic"
    assert "no API key" in body["generator_note"]
    assert server.requests == []
    assert _analytics(session, body["query_id"]).generator == "builtin"
    assert _ask_event(session, body["query_id"])["fallback"] is True


def test_a_key_stored_in_system_config_configures_the_generator(
    app: Any, client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"anthropic_api_key": None})
    set_config(session, "llm.anthropic_api_key", "sk-from-config-0123456789")
    server.add(_reply(ANTHROPIC, GOOD_SQL))

    response = _ask(client, caller, generator="anthropic")

    assert response.status_code == 200, response.text
    assert response.json()["generator"] == "anthropic"
    assert server.requests[0].headers["x-api-key"] == "sk-from-config-0123456789"


def test_the_token_quota_is_checked_before_generation(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    set_config(session, "quota.tokens_per_role", {"viewer": 100, "admin": None})
    server.add(_reply(OPENAI, GOOD_SQL))
    first = _ask(client, caller, generator="openai")
    assert first.status_code == 200, first.text  # 150 tokens: now over the quota of 100

    second = _ask(client, caller, generator="openai")

    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == "token_quota_exceeded"
    assert len(server.requests) == 1


def test_earlier_successes_and_public_templates_become_examples(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    created = client.post(
        "/api/v1/templates",
        json={
            "name": "Orders",
            "question_template": "how many orders are there",
            "sql_template": "SELECT COUNT(*) AS orders FROM orders",
        },
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    server.add(_reply(OPENAI, GOOD_SQL), _reply(OPENAI, GOOD_SQL))
    assert _ask(client, caller, "customers per country", generator="openai").status_code == 200

    assert (
        _ask(client, caller, "customers by country please", generator="openai").status_code == 200
    )

    prompt = str(server.requests[-1].body)
    assert "how many orders are there" in prompt  # the template
    assert "customers per country" in prompt  # the earlier success on this connection


def test_the_default_model_setting_goes_with_the_default_generator(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    set_config(session, "nl2sql.default_generator", "anthropic")
    set_config(session, "nl2sql.default_model", "claude-special")
    server.add(_reply(ANTHROPIC, GOOD_SQL), _reply(OPENAI, GOOD_SQL))

    assert _ask(client, caller).status_code == 200
    assert _ask(client, caller, generator="openai").status_code == 200

    assert server.requests[0].body["model"] == "claude-special"
    # Another generator than the default keeps its own configured model.
    assert server.requests[1].body["model"] == "test-model"
