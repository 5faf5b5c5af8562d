"""Faults of the LLM side, against a real provider server on loopback: hanging, 429/5xx,
malformed, huge, lying about tokens, text that cannot be stored. Each ends in its documented
status, is recorded (analytics row + event), and the next ask works.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth import quota
from backend.auth.models import User
from backend.chat.models import ChatMessage
from backend.core.config import Settings
from backend.core.db import utcnow
from backend.core.text import REPLACEMENT
from tests.chat.conftest import Caller, set_config
from tests.nl2sql.provider_server import Provider, ProviderServer, Reply, provider_settings
from tests.nl2sql.test_llm_ask import (
    GOOD_SQL,
    _analytics,
    _ask,
    _ask_event,
    _failure,
    _reply,
)


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    """Both providers on the loopback server; retries after 10 ms (what is tested is how many
    calls are made and how the failure ends, not how long the back-off is: test_llm_ask)."""
    return provider_settings(settings, server, timeout_seconds=1.0, llm_backoff_base_seconds=0.01)


LIES = [10**12, -5, "150", 1.5, True, None, 2**70]


def _next_ask_works(
    client: TestClient, caller: Caller, server: ProviderServer, p: Provider
) -> None:
    server.add(_reply(p, GOOD_SQL))
    response = _ask(client, caller, generator=p.name)
    assert response.status_code == 200, response.text


def _recorded_failure(session: Session, response: Any, status: int, code: str) -> dict[str, Any]:
    error, row = _failure(session, response, status, code)
    event = _ask_event(session, error["details"]["query_id"])
    assert event["success"] is False and event["error_code"] == code
    return error


@pytest.mark.parametrize(
    "replies,status,code",
    [
        ([Reply(200, {}, delay_seconds=2.0)], 504, "llm_timeout"),
        # Each byte arrives well within the read timeout, the whole answer far beyond it.
        ([Reply(200, {"pad": "x" * 200}, trickle_seconds=0.02)], 504, "llm_timeout"),
        ([Reply(503, {"error": {"message": "overloaded"}})] * 3, 502, "llm_provider_error"),
        (
            [Reply(429, {"error": {"message": "slow"}}, headers={"Retry-After": "0"})] * 3,
            502,
            "llm_provider_error",
        ),
        ([Reply(200, '{"choices": [')], 502, "llm_reply_invalid"),
        ([Reply(200, b"\xff\xfe\x00garbage")], 502, "llm_reply_invalid"),
        ([Reply(200, {"content": "x" * (5 * 1024 * 1024)})], 502, "llm_reply_invalid"),
    ],
    ids=["hanging", "trickling", "5xx", "429", "truncated-json", "binary", "huge-body"],
)
def test_a_provider_fault_has_its_status_is_recorded_and_the_next_ask_works(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
    replies: list[Reply],
    status: int,
    code: str,
) -> None:
    server.add(*replies)

    error = _recorded_failure(session, _ask(client, caller, generator=provider.name), status, code)

    if code == "llm_reply_invalid" and len(replies[0].body or "") > 1024 * 1024:
        assert error["details"]["max_reply_bytes"] == 4 * 1024 * 1024
    server.script.clear()
    _next_ask_works(client, caller, server, provider)


def test_token_counts_a_provider_lies_about_are_estimated_not_trusted(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
) -> None:
    spent = 0
    for lie in LIES:
        reply = _reply(provider, GOOD_SQL)
        usage = reply.body["usage"]
        for key in ("prompt_tokens", "input_tokens", "completion_tokens", "output_tokens"):
            if key in usage:
                usage[key] = lie
        server.add(reply)

        response = _ask(client, caller, generator=provider.name)

        assert response.status_code == 200, (lie, response.text)
        body = response.json()
        assert 0 < body["prompt_tokens"] < 100_000 and 0 < body["completion_tokens"] < 1_000
        row = _analytics(session, body["query_id"])
        assert row.total_tokens == body["prompt_tokens"] + body["completion_tokens"]
        spent += row.total_tokens
        event = _ask_event(session, body["query_id"])
        assert event["estimated_usage"] == ["prompt_tokens", "completion_tokens"], lie
    user = session.get(User, caller.user_id)
    assert user is not None and user.token_usage == spent
    _next_ask_works(client, caller, server, provider)


def test_large_counts_fit_the_columns_on_every_platform_database(
    session: Session, caller: Caller
) -> None:
    quota.add_token_usage(session, caller.user_id, 3 * 10**9)
    quota.add_token_usage(session, caller.user_id, 3 * 10**9)
    session.commit()

    user = session.get(User, caller.user_id)
    assert user is not None and user.token_usage == 6 * 10**9


def test_nul_and_surrogates_from_the_provider_are_recorded_as_replacement_characters(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
) -> None:
    text = f"Counts\x00 customers \ud800 per country.\n```sql\n{GOOD_SQL}\n```"
    reply = _reply(provider, text)
    reply.body["model"] = "test-model\x00" + "m" * 500
    server.add(reply)

    response = _ask(client, caller, generator=provider.name)

    assert response.status_code == 200, response.text
    body = response.json()
    assert "\x00" not in body["explanation"] and REPLACEMENT in body["explanation"]
    row = _analytics(session, body["query_id"])
    assert row.success and row.llm_model is not None and len(row.llm_model) <= 100
    messages = list(
        session.scalars(select(ChatMessage).where(ChatMessage.query_id == body["query_id"]))
    )
    assert [m.message_type for m in messages] == ["user", "assistant"]
    assert "\x00" not in messages[1].content and REPLACEMENT in messages[1].content
    _ask_event(session, body["query_id"])


def test_text_from_the_target_database_is_recorded_and_exported(
    client: TestClient, session: Session, caller: Caller
) -> None:
    response = client.post(
        "/api/v1/query/sql",
        json={
            "connection_id": caller.connection_id,
            "sql": "SELECT 'a' || char(0) || 'b' AS v, country FROM customers LIMIT 3",
        },
        headers=caller.headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"][0][0] == "a\x00b"  # the answer is the database's own text
    assert _analytics(session, body["query_id"]).success
    export = client.get(
        f"/api/v1/query/{body['query_id']}/export", params={"format": "csv"}, headers=caller.headers
    )
    assert export.status_code == 200, export.text
    assert len(export.text.strip().splitlines()) == 4


def test_the_quota_period_starts_again_and_the_429_says_when(
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    provider: Provider,
) -> None:
    set_config(session, "quota.tokens_per_role", {"viewer": 100, "admin": None})
    last_month = utcnow().replace(day=1) - timedelta(days=3)
    session.execute(
        update(User)
        .where(User.id == caller.user_id)
        .values(token_usage=10**6, token_period_start=last_month)
    )
    session.commit()

    server.add(_reply(provider, GOOD_SQL))
    fresh = _ask(client, caller, generator=provider.name)
    assert fresh.status_code == 200, fresh.text  # a new month: last month's usage is gone
    session.expire_all()
    user = session.get(User, caller.user_id)
    assert user is not None and user.token_usage == 150

    refused = _ask(client, caller, generator=provider.name)
    assert refused.status_code == 429, refused.text
    retry_after = int(refused.headers["Retry-After"])
    assert 0 < retry_after <= 31 * 24 * 3600
    details = refused.json()["error"]["details"]
    assert details["period"] == "month" and details["retry_after_seconds"] == retry_after

    offline = _ask(client, caller, generator="builtin", question="how many customers")
    assert offline.status_code == 200, offline.text  # the offline engine spends no tokens
