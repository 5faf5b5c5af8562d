"""A provider that lies: bodies nested past the JSON parser's depth, SQL carrying characters no
request or record can hold, megabytes in a stop reason. Each ends in a clear status in the one
error shape (or an answer), with the ask recorded; never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.core.text import REPLACEMENT
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import Caller
from tests.nl2sql.provider_server import (
    OPENAI,
    Provider,
    ProviderServer,
    Reply,
    provider_settings,
)

GOOD_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country ORDER BY country"
DEEP = b'{"choices": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
"""Valid JSON a few hundred KiB long, nested far deeper than Python's parser recurses."""


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    return provider_settings(settings, server, timeout_seconds=2.0, llm_backoff_base_seconds=0.01)


def _ask(client: TestClient, caller: Caller, provider: Provider) -> Any:
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    )
    assert chat.status_code == 201, chat.text
    return client.post(
        f"/api/v1/chat/sessions/{chat.json()['id']}/ask",
        json={"question": "customers per country", "generator": provider.name},
        headers=caller.headers,
    )


def _recorded_failure(session: Session, response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"code", "message", "details"} and error["code"] == code
    session.expire_all()
    row = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == error["details"]["query_id"])
    ).one()
    assert row.success is False and row.error_code == code
    return error


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        (Reply(200, DEEP), "llm_reply_invalid"),
        (Reply(400, DEEP), "llm_provider_error"),
    ],
    ids=["2xx", "4xx"],
)
def test_json_nested_past_the_parser_is_a_502_not_a_500(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
    reply: Reply,
    code: str,
) -> None:
    server.add(reply)
    error = _recorded_failure(session, _ask(client, caller, provider), 502, code)
    assert error["details"]["provider"] == provider.name


def test_sql_with_a_lone_surrogate_is_repaired_not_a_500(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
) -> None:
    # The failing SQL goes back to the provider in the repair request, which must be encodable.
    server.add(
        provider.reply("SELECT no_such_column, '\ud800\x00' AS odd FROM customers"),
        provider.reply(GOOD_SQL),
    )
    response = _ask(client, caller, provider)
    assert response.status_code == 200, response.text
    assert len(server.requests) == 2
    repair = str(server.requests[1].body)
    assert "no_such_column" in repair and "\ud800" not in repair and "\x00" not in repair
    assert REPLACEMENT in repair


def test_a_huge_stop_reason_is_not_echoed(
    client: TestClient, session: Session, caller: Caller, server: ProviderServer
) -> None:
    server.add(
        Reply(
            200,
            {"choices": [{"message": {"content": ""}, "finish_reason": {"x": "y" * 500_000}}]},
        ),
        Reply(200, {"choices": [{"message": {"content": ""}, "finish_reason": "z" * 500_000}]}),
    )
    first = _recorded_failure(session, _ask(client, caller, OPENAI), 502, "llm_reply_invalid")
    assert first["details"]["finish_reason"] is None
    second = _recorded_failure(session, _ask(client, caller, OPENAI), 502, "llm_reply_invalid")
    assert len(second["details"]["finish_reason"]) <= 40


@pytest.mark.parametrize("text", [["SELECT 1"], {"sql": "SELECT 1"}, 7], ids=repr)
def test_a_text_part_that_is_not_text_is_a_502_not_the_users_400(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
    text: Any,
) -> None:
    # It was read as its Python repr ("['SELECT 1']"), SQL nothing parses: a 400 blaming the
    # question for the provider's broken reply.
    parts = [{"type": "text", "text": text}]
    body: dict[str, Any] = (
        {"choices": [{"message": {"content": parts}, "finish_reason": "stop"}]}
        if provider is OPENAI
        else {"content": parts, "stop_reason": "end_turn"}
    )
    server.add(Reply(200, body))
    error = _recorded_failure(session, _ask(client, caller, provider), 502, "llm_reply_invalid")
    assert error["details"]["provider"] == provider.name
    assert len(server.requests) == 1
