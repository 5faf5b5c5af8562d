"""`POST /chat/sessions/{id}/ask/stream`: an ask as Server-Sent Events over real HTTP (a real
uvicorn on loopback, httpx streaming), recorded exactly like a plain ask; a client that goes
away mid-LLM-wait stops the work and the ask is recorded as cancelled."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.chat.models import ChatMessage
from backend.core.config import Settings
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller, make_caller
from tests.nl2sql.provider_server import (
    OPENAI,
    ProviderServer,
    provider_server,
    provider_settings,
)

SESSIONS = "/api/v1/chat/sessions"
STAGES = ["understood", "sql", "guard", "rows", "chart", "done"]


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as running:
        yield running


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    return provider_settings(settings, server, timeout_seconds=30.0)


@pytest.fixture
def asker(session: Session, settings: Settings) -> Caller:
    caller = make_caller(session, settings)
    session.close()
    return caller


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    event = None
    for line in lines:
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            assert event is not None
            yield event, json.loads(line.removeprefix("data: "))
            event = None


def _stream(http: httpx.Client, caller: Caller, chat_id: str, **body: Any) -> list[Any]:
    with http.stream(
        "POST", f"{SESSIONS}/{chat_id}/ask/stream", json=body, headers=caller.headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(_events(response.iter_lines()))


def _analytics(session: Session, query_id: str) -> QueryAnalytics | None:
    session.expire_all()
    return session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == query_id)
    ).one_or_none()


def test_streamed_ask_sends_each_stage_then_the_plain_answer_and_records_it_the_same(
    base_url: str, session: Session, asker: Caller
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        chat_id = asker.open_chat(http)
        events = _stream(http, asker, chat_id, question="Number of orders per status")
        plain = http.post(
            f"{SESSIONS}/{chat_id}/ask",
            json={"question": "Number of orders per status"},
            headers=asker.headers,
        )
    assert plain.status_code == 200, plain.text

    assert [name for name, _ in events] == STAGES
    data = dict(events)
    done = data["done"]
    query_id = done["query_id"]
    assert all(payload["query_id"] == query_id for payload in data.values())
    assert data["understood"]["generator"] == "builtin"
    assert data["sql"]["sql"].upper().startswith("SELECT")
    assert data["guard"]["sql"] == done["sql"] and "orders" in data["guard"]["tables"]
    assert data["rows"]["rows"] == done["rows"] and data["rows"]["columns"] == done["columns"]
    assert data["chart"]["chart"] == done["chart"]
    # The answer is the plain ask's answer, field for field (ids and timings aside).
    varying = {"message_id", "user_message_id", "query_id", "execution_time_ms"}
    assert {k: v for k, v in done.items() if k not in varying} == {
        k: v for k, v in plain.json().items() if k not in varying
    }
    row = _analytics(session, query_id)
    assert row is not None and row.success and row.source == "ask"
    assert row.chat_session_id == chat_id and row.row_count == done["row_count"]
    messages = session.scalars(select(ChatMessage).where(ChatMessage.query_id == query_id)).all()
    assert sorted(m.message_type for m in messages) == ["assistant", "user"]
    events_recorded = [
        e
        for e in session.scalars(select(Event).where(Event.event_type == "asked"))
        if e.event_data and e.event_data.get("query_id") == query_id
    ]
    assert len(events_recorded) == 1


def test_a_failed_streamed_ask_ends_with_an_error_event_in_the_one_shape_and_is_recorded(
    base_url: str, session: Session, asker: Caller
) -> None:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        chat_id = asker.open_chat(http)
        events = _stream(http, asker, chat_id, question="purple elephants dancing quietly")
        unknown = _stream(http, asker, "no-such-session", question="How many customers?")

    assert [name for name, _ in events] == ["understood", "error"]
    error = events[-1][1]
    assert set(error) == {"error"} and set(error["error"]) == {"code", "message", "details"}
    assert error["error"]["code"] == "question_not_understood"
    row = _analytics(session, error["error"]["details"]["query_id"])
    assert row is not None and row.success is False
    assert row.error_code == "question_not_understood"
    # Failing before the ask starts (someone else's or no session) is an error event too.
    assert [name for name, _ in unknown] == ["error"]
    assert unknown[0][1]["error"]["code"] == "chat_session_not_found"


def test_a_client_that_disconnects_mid_llm_wait_stops_the_ask_and_it_is_recorded_cancelled(
    base_url: str, session: Session, asker: Caller, server: ProviderServer
) -> None:
    delay = 6.0
    reply = OPENAI.reply("SELECT COUNT(*) AS n FROM customers", model="test-model")
    reply.delay_seconds = delay
    server.add(reply)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        chat_id = asker.open_chat(http)
        with http.stream(
            "POST",
            f"{SESSIONS}/{chat_id}/ask/stream",
            json={"question": "how many customers", "generator": "openai"},
            headers=asker.headers,
        ) as response:
            stream = _events(response.iter_lines())
            first = next(stream)
            assert first[0] == "understood"
            query_id = first[1]["query_id"]
            deadline = time.monotonic() + 20
            while not server.requests:  # the ask is waiting on the LLM
                assert time.monotonic() < deadline, list(stream)
                time.sleep(0.02)
        disconnected_at = time.monotonic()
    # The connection is closed (leaving the block mid-body closes it).

    row = None
    while row is None and time.monotonic() - disconnected_at < delay - 1:
        time.sleep(0.05)
        row = _analytics(session, query_id)
    assert row is not None, "the cancelled ask was not recorded before the LLM would answer"
    assert row.success is False and row.error_code == "cancelled"
    assert row.chat_session_id == chat_id and row.generator == "openai"
    messages = session.scalars(select(ChatMessage).where(ChatMessage.query_id == query_id)).all()
    assert sorted(m.message_type for m in messages) == ["error", "user"]
    # Once the LLM would have answered, nothing else was recorded for the ask.
    time.sleep(max(0.0, delay + 0.5 - (time.monotonic() - disconnected_at)))
    session.expire_all()
    rows = session.scalars(select(QueryAnalytics).where(QueryAnalytics.user_id == asker.user_id))
    assert [(r.query_id, r.error_code) for r in rows] == [(query_id, "cancelled")]


def _asgi_ask_from_a_client_already_gone(app: Any, path: str, body: bytes, headers: Any) -> int:
    """Send one request straight to the ASGI app whose client has gone by the time the
    response starts: `receive` gives the body, then `http.disconnect` (what uvicorn gives after
    the peer closed); returns the status the app started its response with (0 if none)."""
    import asyncio

    messages = [
        {"type": "http.request", "body": body, "more_body": False},
        {"type": "http.disconnect"},
    ]
    started: list[int] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if len(messages) > 1 else messages[0]

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }

    asyncio.run(app(scope, receive, send))
    return started[0] if started else 0


def test_a_streamed_ask_whose_client_left_before_the_body_began_is_recorded_cancelled(
    app: Any, base_url: str, session: Session, asker: Caller
) -> None:
    # The ask's read runs before the response; a client gone by then never sees the body, whose
    # work therefore never starts. It was lost: not answered, not recorded at all. (The app is
    # started by `base_url`'s server; the request goes to it directly to be gone at that point.)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        chat_id = asker.open_chat(http)
    body = json.dumps({"question": "How many customers are there?"}).encode()
    headers = {**asker.headers, "Content-Type": "application/json"}
    _asgi_ask_from_a_client_already_gone(app, f"{SESSIONS}/{chat_id}/ask/stream", body, headers)

    session.expire_all()
    rows = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.user_id == asker.user_id)
    ).all()
    assert [(r.success, r.error_code, r.chat_session_id) for r in rows] == [
        (False, "cancelled", chat_id)
    ]
    messages = session.scalars(
        select(ChatMessage).where(ChatMessage.query_id == rows[0].query_id)
    ).all()
    assert sorted(m.message_type for m in messages) == ["error", "user"]
