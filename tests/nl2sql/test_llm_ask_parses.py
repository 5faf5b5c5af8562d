"""An LLM ask parses what is new to it, not its few-shot examples again on every ask.

The examples of an LLM prompt are mostly the caller's earlier answers, recorded with the
platform's row cap (`LIMIT 1001`), which the prompt shows without it. Taking the cap out
parsed each example's SQL on every ask (five examples: five sqlglot parses before the LLM was
even called); an answer's SQL is now parsed for that once per process, and SQL with no literal
of the cap in it not at all. Through the real ask path (HTTP, the loopback provider).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlglot.parser import Parser

from backend.core.config import Settings
from tests.chat.conftest import Caller
from tests.nl2sql.provider_server import OPENAI, ProviderServer, provider_settings

ANSWERS = [
    "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country",
    "SELECT status, COUNT(*) AS orders FROM orders GROUP BY status",
    "SELECT name, unit_price FROM products ORDER BY unit_price DESC LIMIT 5",
    "SELECT method, SUM(amount) AS total FROM payments GROUP BY method",
]


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    return provider_settings(settings, server, timeout_seconds=5.0)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every sqlglot parse made on a request's threads, by the SQL it parsed (sqlglot's own
    parser still parses)."""
    seen: list[str] = []
    parse = Parser.parse

    def counted(self: Parser, raw_tokens: Any, sql: str | None = None) -> Any:
        if not threading.current_thread().name.startswith("nlsql-"):
            seen.append(sql or "")
        return parse(self, raw_tokens, sql)

    monkeypatch.setattr(Parser, "parse", counted)
    yield seen


def _ask(client: TestClient, caller: Caller, chat: str, question: str) -> dict[str, Any]:
    response = client.post(
        f"/api/v1/chat/sessions/{chat}/ask",
        json={"question": question, "generator": "openai"},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_an_llm_ask_parses_only_the_llms_sql_once_its_examples_were_seen(
    client: TestClient, caller: Caller, server: ProviderServer, parses: list[str]
) -> None:
    chat = caller.open_chat(client)
    for index, sql in enumerate(ANSWERS):
        server.add(OPENAI.reply(sql))
        _ask(client, caller, chat, f"question number {index} about the shop")
    # The same earlier answers are this ask's examples, as they were the last ask's.
    server.add(OPENAI.reply(ANSWERS[0]))
    _ask(client, caller, chat, "customers per country please")
    parses.clear()
    server.add(OPENAI.reply(ANSWERS[1]))
    _ask(client, caller, chat, "orders per status please")

    prompt = server.requests[-1].body["messages"]
    shown = "\n".join(str(m["content"]) for m in prompt)
    assert ANSWERS[0] in shown, shown  # the examples are still there, without the cap
    assert "LIMIT 1001" not in shown, shown
    # One parse: the guard's, of the LLM's reply (was one more per example).
    assert parses == [ANSWERS[1]], parses
