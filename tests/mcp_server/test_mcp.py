"""The MCP server through the SDK's own client: streamable HTTP on a real uvicorn, and stdio
through a spawned `nlsql mcp`. Tools see what the key may see, refuse what its scopes do not
allow, and an agent's ask is recorded like the HTTP one."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp_types import CallToolResult
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.connections import service as connections_service
from backend.core.config import Settings
from backend.demo import DEMO_DB_PATH
from backend.feedback.models import AnswerFeedback
from backend.observability.event_types import AuditAction, EventType
from backend.observability.models import AuditLog, Event, QueryAnalytics
from tests import factories
from tests.support.live_server import serve_on_loopback

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = {
    "list_connections",
    "describe_schema",
    "ask",
    "run_sql",
    "list_templates",
    "run_template",
    "rate_answer",
}
STATUS_COUNTS = {"cancelled": 193, "delivered": 2436, "processing": 230, "returned": 79}


@dataclass
class Agent:
    user: User
    connection_id: str
    other_connection_id: str


@pytest.fixture
def agent(session: Session) -> Agent:
    user = factories.create_user(session, full_name="Agent Owner")
    demo = connections_service.ensure_sqlite_connection(
        session, user_id=user.id, connection_name="demo", path=str(DEMO_DB_PATH)
    )
    other = connections_service.ensure_sqlite_connection(
        session, user_id=user.id, connection_name="second", path=str(DEMO_DB_PATH)
    )
    session.commit()
    return Agent(user=user, connection_id=demo.id, other_connection_id=other.id)


@pytest.fixture
def live_app(app: FastAPI) -> Iterator[str]:
    with serve_on_loopback(app) as url:
        yield url


def _http_client(base_url: str, headers: dict[str, str]) -> Client:
    transport = streamable_http_client(
        base_url + "/mcp", http_client=create_mcp_http_client(headers=headers)
    )
    return Client(transport)


def _payload(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def _error(result: CallToolResult) -> dict[str, Any]:
    assert result.is_error, result.structured_content
    text = result.content[0].text  # type: ignore[union-attr]
    # The SDK prefixes "Error executing tool NAME: " to the API's error body.
    body: dict[str, Any] = json.loads(text[text.index("{") :])["error"]
    return body


def _asks(session: Session, user: User) -> list[QueryAnalytics]:
    session.expire_all()
    return list(
        session.scalars(
            select(QueryAnalytics)
            .where(QueryAnalytics.user_id == user.id)
            .order_by(QueryAnalytics.id)
        )
    )


def test_http_tools_act_within_the_keys_scopes_and_connections(
    live_app: str, session: Session, agent: Agent
) -> None:
    limited = factories.create_api_key(
        session,
        agent.user,
        scopes=["connections:read", "chat:write", "query:sql"],
        connection_ids=[agent.connection_id],
    )
    read_only = factories.create_api_key(session, agent.user, scopes=["connections:read"])

    async def scenario() -> None:
        async with _http_client(live_app, limited.headers) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == TOOLS

            connections = _payload(await client.call_tool("list_connections", {}))
            assert [c["id"] for c in connections["items"]] == [agent.connection_id]

            schema = _payload(
                await client.call_tool("describe_schema", {"connection_id": agent.connection_id})
            )
            assert "orders" in {t["name"] for t in schema["tables"]}
            # The engine's value index of the stored snapshot stays out of what agents read.
            described = {c["name"]: c for t in schema["tables"] for c in t["columns"]}
            assert described["company_name"]["sample_values"]
            assert not any("indexed_values" in c for c in described.values())

            hidden = await client.call_tool(
                "describe_schema", {"connection_id": agent.other_connection_id}
            )
            assert _error(hidden)["code"] == "forbidden"

            answer = _payload(
                await client.call_tool(
                    "ask",
                    {
                        "question": "Number of orders per status",
                        "connection_id": agent.connection_id,
                    },
                )
            )
            assert "orders" in answer["sql"].lower()
            shown = {row[0]: row[1] for row in answer["rows"] if isinstance(row[0], str)}
            for status, count in STATUS_COUNTS.items():
                assert shown.get(status) == count, answer["rows"]

            drafted = _payload(
                await client.call_tool(
                    "ask",
                    {
                        "question": "How many orders are there?",
                        "session_id": answer["session_id"],
                        "execute": False,
                    },
                )
            )
            assert (drafted["executed"], drafted["rows"]) == (False, [])
            assert drafted["session_id"] == answer["session_id"]

            refused = await client.call_tool(
                "run_sql", {"connection_id": agent.connection_id, "sql": "DELETE FROM orders"}
            )
            assert _error(refused)["code"] == "sql_refused"

            counted = _payload(
                await client.call_tool(
                    "run_sql",
                    {"connection_id": agent.connection_id, "sql": "SELECT COUNT(*) FROM orders"},
                )
            )
            assert counted["rows"] == [[3200]]

        async with _http_client(live_app, read_only.headers) as client:
            denied = await client.call_tool(
                "ask",
                {"question": "How many orders?", "connection_id": agent.connection_id},
            )
            assert _error(denied)["details"]["missing_scopes"] == ["chat:write"]

        async with _http_client(live_app, {}) as client:
            anonymous = await client.call_tool("list_connections", {})
            assert _error(anonymous)["code"] == "unauthorized"

    anyio.run(scenario)
    rows = _asks(session, agent.user)
    # The ask, the draft, the refused and the counted SQL; nothing for calls refused by scope.
    assert [(r.source, r.success) for r in rows] == [
        ("ask", True),
        ("draft", True),
        ("sql", False),
        ("sql", True),
    ]


def test_an_agents_ask_is_recorded_like_the_http_ask(
    live_app: str, session: Session, settings: Settings, agent: Agent
) -> None:
    key = factories.create_api_key(session, agent.user, connection_ids=[agent.connection_id])
    question = "Number of orders per status"
    with httpx.Client(base_url=live_app, headers=key.headers) as http:
        chat = http.post(
            "/api/v1/chat/sessions", json={"connection_id": agent.connection_id}
        ).json()
        by_http = http.post(f"/api/v1/chat/sessions/{chat['id']}/ask", json={"question": question})
        assert by_http.status_code == 200, by_http.text

    async def scenario() -> dict[str, Any]:
        async with _http_client(live_app, key.headers) as client:
            return _payload(
                await client.call_tool(
                    "ask", {"question": question, "connection_id": agent.connection_id}
                )
            )

    by_agent = anyio.run(scenario)
    assert by_agent["rows"] == by_http.json()["rows"]
    assert by_agent["session_id"] != chat["id"]

    http_row, agent_row = _asks(session, agent.user)
    for column in ("source", "success", "generator", "connection_id", "sql_query", "row_count"):
        assert getattr(agent_row, column) == getattr(http_row, column), column
    assert agent_row.chat_session_id == by_agent["session_id"]
    events = list(
        session.scalars(
            select(Event).where(Event.user_id == agent.user.id, Event.event_type == EventType.ASKED)
        )
    )
    assert len(events) == 2
    assert set(events[0].event_data or {}) == set(events[1].event_data or {})


def _stdio_env(settings: Settings, api_key: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NLSQL_")}
    env.update(
        PYTHONPATH=str(REPO_ROOT),
        NLSQL_DATA_DIR=str(settings.data_dir),
        NLSQL_DATABASE_URL=str(settings.database_url),
        NLSQL_JWT_SECRET=settings.jwt_secret_value,
        NLSQL_FERNET_KEYS=",".join(k.get_secret_value() for k in settings.fernet_keys),
        NLSQL_RUN_MIGRATIONS_ON_START="false",
        NLSQL_MCP_API_KEY=api_key,
    )
    return env


def test_stdio_server_answers_with_the_key_it_was_started_with(
    session: Session, settings: Settings, agent: Agent
) -> None:
    key = factories.create_api_key(
        session,
        agent.user,
        scopes=["connections:read", "chat:write"],
        connection_ids=[agent.connection_id],
    )
    parameters = StdioServerParameters(
        command=sys.executable,
        args=["-m", "backend.cli", "mcp"],
        env=_stdio_env(settings, key.key),
        cwd=str(settings.data_dir),
    )

    async def scenario() -> None:
        async with Client(parameters, read_timeout_seconds=120) as client:
            listed = await client.list_tools()
            assert {tool.name for tool in listed.tools} == TOOLS
            connections = _payload(await client.call_tool("list_connections", {}))
            assert [c["id"] for c in connections["items"]] == [agent.connection_id]
            answer = _payload(
                await client.call_tool(
                    "ask",
                    {
                        "question": "How many orders are there?",
                        "connection_id": agent.connection_id,
                    },
                )
            )
            assert answer["rows"] == [[3200]]
            denied = await client.call_tool(
                "run_sql", {"connection_id": agent.connection_id, "sql": "SELECT 1"}
            )
            assert _error(denied)["details"]["missing_scopes"] == ["query:sql"]
            rated = _payload(
                await client.call_tool(
                    "rate_answer", {"message_id": answer["message_id"], "rating": 5}
                )
            )
            assert (rated["rating"], rated["replaced"]) == (5, False)
            assert rated["example"]["approved"] is True

    anyio.run(scenario)
    rows = _asks(session, agent.user)
    assert [(r.source, r.success, r.connection_id) for r in rows] == [
        ("ask", True, agent.connection_id)
    ]
    feedback = session.scalars(select(AnswerFeedback)).one()
    assert (feedback.user_id, feedback.rating) == (agent.user.id, 5)


def test_templates_are_listed_and_run_with_bound_parameters(
    live_app: str, session: Session, agent: Agent
) -> None:
    key = factories.create_api_key(session, agent.user)
    template = {
        "name": "Orders in a status",
        "question_template": "How many orders are {status}?",
        "sql_template": "SELECT COUNT(*) AS orders FROM orders WHERE status = :status",
        "parameters": [{"name": "status", "type": "string"}],
        "connection_id": agent.connection_id,
    }
    with httpx.Client(base_url=live_app, headers=key.headers) as http:
        created = http.post("/api/v1/templates", json=template)
        assert created.status_code == 201, created.text

    async def scenario() -> None:
        async with _http_client(live_app, key.headers) as client:
            listed = _payload(await client.call_tool("list_templates", {}))
            assert [t["id"] for t in listed["items"]] == [created.json()["id"]]
            ran = _payload(
                await client.call_tool(
                    "run_template",
                    {"template_id": created.json()["id"], "parameters": {"status": "returned"}},
                )
            )
            assert ran["rows"] == [[STATUS_COUNTS["returned"]]]

    anyio.run(scenario)
    assert [(r.source, r.success) for r in _asks(session, agent.user)] == [("template", True)]


def test_an_agent_rates_an_answer_like_the_http_twin(
    live_app: str, session: Session, agent: Agent
) -> None:
    key = factories.create_api_key(
        session, agent.user, scopes=["chat:write"], connection_ids=[agent.connection_id]
    )
    reader = factories.create_api_key(session, agent.user, scopes=["chat:read"])

    async def scenario() -> None:
        async with _http_client(live_app, key.headers) as client:
            answer = _payload(
                await client.call_tool(
                    "ask",
                    {
                        "question": "How many orders are there?",
                        "connection_id": agent.connection_id,
                    },
                )
            )
            refused = await client.call_tool(
                "rate_answer",
                {
                    "message_id": answer["message_id"],
                    "rating": 1,
                    "corrected_sql": "DELETE FROM orders",
                },
            )
            assert _error(refused)["code"] == "sql_refused"
            out_of_range = await client.call_tool(
                "rate_answer", {"message_id": answer["message_id"], "rating": 9}
            )
            assert _error(out_of_range)["code"] == "validation_error"
            question = await client.call_tool(
                "rate_answer", {"message_id": answer["user_message_id"], "rating": 5}
            )
            assert _error(question)["code"] == "message_not_an_answer"
            first = _payload(
                await client.call_tool(
                    "rate_answer", {"message_id": answer["message_id"], "rating": 5}
                )
            )
            corrected = _payload(
                await client.call_tool(
                    "rate_answer",
                    {
                        "message_id": answer["message_id"],
                        "rating": 2,
                        "comment": "Only delivered ones.",
                        "corrected_sql": "SELECT COUNT(*) FROM orders WHERE status = 'delivered'",
                    },
                )
            )
            assert (first["replaced"], corrected["replaced"]) == (False, True)
            assert corrected["id"] == first["id"] and corrected["example"]["approved"] is True

        async with _http_client(live_app, reader.headers) as client:
            denied = await client.call_tool(
                "rate_answer", {"message_id": answer["message_id"], "rating": 5}
            )
            assert _error(denied)["details"]["missing_scopes"] == ["chat:write"]

    anyio.run(scenario)
    session.expire_all()
    feedback = session.scalars(select(AnswerFeedback)).one()
    assert (feedback.rating, feedback.comment) == (2, "Only delivered ones.")
    actions = session.scalars(
        select(AuditLog.action).where(AuditLog.resource_id == feedback.id).order_by(AuditLog.id)
    ).all()
    assert actions == [AuditAction.FEEDBACK_GIVEN, AuditAction.FEEDBACK_REPLACED]
    rated = session.scalars(
        select(Event).where(Event.event_type == EventType.ANSWER_RATED).order_by(Event.id)
    ).all()
    assert [e.event_data and e.event_data["rating"] for e in rated] == [5, 2]
