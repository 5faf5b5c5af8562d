"""What an LLM ask asks of the platform database, statement by statement.

* Its read phase runs a fixed number of statements: the one for the caller, the chat session,
  the connection and the versions of what is cached by version; the session's recent turns;
  the connection's verified examples; the caller's earlier answers less those judged wrong.
* Its recording, token usage included, is one statement on PostgreSQL sent outside a
  transaction (the analytics row, the event, both messages and the user's token count as
  data-modifying CTEs: no BEGIN and COMMIT round trips, and no row lock of the chat session or
  the user held from one statement to the next) and five on SQLite.
* A question asked again counts once among the prompt's examples.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.core.config import Settings
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import Caller, set_config
from tests.nl2sql.provider_server import OPENAI, ProviderServer, provider_settings
from tests.support.statements import platform_statements

READS_PER_LLM_ASK = 4
RECORDING_STATEMENTS = {"postgresql": 1, "sqlite": 5}
GOOD_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country"


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    return provider_settings(settings, server, timeout_seconds=5.0)


def _ask(client: TestClient, caller: Caller, chat: str, question: str) -> Any:
    return client.post(
        f"/api/v1/chat/sessions/{chat}/ask",
        json={"question": question, "generator": "openai"},
        headers=caller.headers,
    )


def _token_usage(session: Session, user_id: str) -> int:
    session.expire_all()
    return int(session.scalar(select(User.token_usage).where(User.id == user_id)) or 0)


@pytest.mark.parametrize("period", ["never", "day"])
def test_an_llm_ask_runs_a_fixed_number_of_platform_statements(
    app: FastAPI,
    client: TestClient,
    session: Session,
    caller: Caller,
    server: ProviderServer,
    period: str,
) -> None:
    set_config(session, "quota.period", period)
    chat = caller.open_chat(client)
    # The first ask introspects and caches the schema (writes of its own).
    server.add(OPENAI.reply(GOOD_SQL, prompt_tokens=100, completion_tokens=20))
    assert _ask(client, caller, chat, "customers per country").status_code == 200
    before = _token_usage(session, caller.user_id)
    backend = app.state.engine.dialect.name
    server.add(OPENAI.reply(GOOD_SQL, prompt_tokens=100, completion_tokens=20))
    with platform_statements(app.state.engine) as seen:
        response = _ask(client, caller, chat, "customers in each country")
    assert response.status_code == 200, response.text

    reads = [s for s in seen if s[0] == "SELECT"]
    writes = [s for s in seen if s[0] != "SELECT"]
    assert len(reads) == READS_PER_LLM_ASK, seen
    assert len(writes) == RECORDING_STATEMENTS[backend], seen
    if backend == "postgresql":
        assert all(autocommit for _, autocommit in seen), seen
        assert writes[0][0] == "WITH", seen
    # The token usage went in with the recording.
    assert _token_usage(session, caller.user_id) == before + 120
    row = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == response.json()["query_id"])
    ).one()
    assert (row.prompt_tokens, row.completion_tokens, row.success) == (100, 20, True)


def test_a_question_asked_again_is_one_example(
    client: TestClient, caller: Caller, server: ProviderServer
) -> None:
    chat = caller.open_chat(client)
    for _ in range(3):
        server.add(OPENAI.reply(GOOD_SQL))
        assert _ask(client, caller, chat, "customers per country").status_code == 200
    server.add(OPENAI.reply(GOOD_SQL))
    assert _ask(client, caller, chat, "customers for every country").status_code == 200

    system = server.requests[-1].body["messages"][0]["content"]
    assert system.count("Q: customers per country") == 1, system
