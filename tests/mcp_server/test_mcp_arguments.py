"""A tool call's arguments are refused where the HTTP twin's request would be, on the stdio
transport too (no HTTP middleware stands in front of it): NUL and lone surrogates in any text,
integers beyond 64 bits, and the request schemas' lengths and blanks. The refusal is the API's
422 in the one error shape, and nothing is recorded."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from mcp import Client
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.chat.models import ChatSession
from backend.mcp_server import build_mcp_server, stdio_caller
from backend.observability.models import QueryAnalytics
from tests import factories
from tests.mcp_server.test_mcp import Agent, agent

__all__ = ["agent"]

SCOPES = ["connections:read", "chat:write", "query:sql", "templates:read"]


def _call(app: FastAPI, key: str, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    server = build_mcp_server(app, stdio_caller(key))

    async def scenario() -> dict[str, Any]:
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments)
            assert result.is_error, result.structured_content
            text = result.content[0].text  # type: ignore[union-attr]
            body: dict[str, Any] = json.loads(text[text.index("{") :])["error"]
            return body

    return anyio.run(scenario)


def _recorded(session: Session, agent: Agent) -> tuple[int, int]:
    session.expire_all()
    chats = session.scalar(
        select(func.count()).select_from(ChatSession).where(ChatSession.user_id == agent.user.id)
    )
    asks = session.scalar(
        select(func.count())
        .select_from(QueryAnalytics)
        .where(QueryAnalytics.user_id == agent.user.id)
    )
    return int(chats or 0), int(asks or 0)


@pytest.mark.parametrize(
    ("tool", "arguments", "field", "kind"),
    [
        ("ask", {"question": "how many orders\x00"}, "question", "nul_character"),
        ("ask", {"question": "how many \ud800 orders"}, "question", "lone_surrogate"),
        ("ask", {"question": "x" * 2001}, "question", "string_too_long"),
        ("ask", {"question": "   "}, "question", "value_error"),
        ("run_sql", {"sql": "SELECT '\x00'"}, "sql", "nul_character"),
        ("run_sql", {"sql": "SELECT 1 " + " " * 100_000}, "sql", "string_too_long"),
        ("list_connections", {"limit": 2**80}, "limit", "number_too_large"),
        ("rate_answer", {"message_id": 2**70, "rating": 5}, "message_id", "number_too_large"),
        (
            "run_template",
            {"template_id": "t", "parameters": {"name": "\ud800"}},
            "parameters",
            "lone_surrogate",
        ),
    ],
)
def test_arguments_the_http_api_refuses_are_refused(
    app: FastAPI,
    session: Session,
    agent: Agent,
    tool: str,
    arguments: dict[str, Any],
    field: str,
    kind: str,
) -> None:
    key = factories.create_api_key(session, agent.user, scopes=SCOPES)
    if tool in ("ask", "run_sql"):
        arguments = {**arguments, "connection_id": agent.connection_id}
    before = _recorded(session, agent)

    error = _call(app, key.key, tool, arguments)

    assert error["code"] == "validation_error", error
    assert set(error) == {"code", "message", "details"}
    first = error["details"]["errors"][0]
    assert first["loc"][0] == field and first["type"] == kind, first
    assert _recorded(session, agent) == before
