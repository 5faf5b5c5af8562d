"""While an ask waits on a slow LLM it holds no platform connection, transaction or lock.

A real uvicorn serves the app; a real OpenAI-compatible server on loopback answers every
question after a delay. More asks wait at once than the platform pool has connections (5 + 10
on SQLite, 10 + 20 on PostgreSQL), each on a connection whose schema is not cached yet (so each
first ask also writes the schema cache); meanwhile sign-ins and other writes must go through
promptly, and the pool must be empty.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import PASSWORD, make_caller
from tests.nl2sql.provider_server import (
    OPENAI,
    ProviderServer,
    provider_server,
    provider_settings,
)

CONCURRENT_ASKS = 32
LLM_DELAY_SECONDS = 6.0
GOOD_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country"


@pytest.fixture
def settings(settings: Settings, server: ProviderServer) -> Settings:
    return provider_settings(settings, server, timeout_seconds=30.0)


def _wait_for(condition: Any, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _our_transactions(session: Session) -> list[tuple[Any, ...]]:
    """Other backends of this database that sit inside a transaction, or hold a lock on a
    transaction id (what a row lock held across the wait would show)."""
    return list(
        session.execute(
            text(
                "SELECT a.pid, a.state, a.query FROM pg_stat_activity a "
                "WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
                "AND (a.state LIKE 'idle in transaction%' OR a.state = 'active' "
                "OR EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid "
                "AND l.locktype = 'transactionid' AND l.granted))"
            )
        ).all()
    )


def test_slow_llm_asks_hold_no_connection_and_leave_sign_ins_fast(
    app: FastAPI,
    base_url: str,
    session: Session,
    settings: Settings,
    server: ProviderServer,
) -> None:
    caller = make_caller(session, settings)
    session.close()
    http = httpx.Client(base_url=base_url, timeout=60)
    chats = []
    for _ in range(CONCURRENT_ASKS):
        created = http.post(
            "/api/v1/chat/sessions",
            json={"connection_id": caller.connection_id},
            headers=caller.headers,
        )
        assert created.status_code == 201, created.text
        chats.append(created.json()["id"])
    for _ in range(CONCURRENT_ASKS):
        reply = OPENAI.reply(GOOD_SQL, model="test-model")
        reply.delay_seconds = LLM_DELAY_SECONDS
        server.add(reply)

    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def ask(chat_id: str) -> None:
        with httpx.Client(base_url=base_url, timeout=60) as own:
            response = own.post(
                f"/api/v1/chat/sessions/{chat_id}/ask",
                json={"question": "customers per country", "generator": "openai"},
                headers=caller.headers,
            )
        with lock:
            answers.append(response)

    threads = [threading.Thread(target=ask, args=(chat_id,)) for chat_id in chats]
    for thread in threads:
        thread.start()
    _wait_for(
        lambda: len(server.requests) == CONCURRENT_ASKS,
        timeout=LLM_DELAY_SECONDS + 20,
        what="every ask to reach the LLM",
    )
    assert answers == [], "an ask came back before every ask had reached the LLM"

    # Every ask is waiting on the LLM now: the platform pool is empty (the metric writer may
    # hold one connection for a moment).
    pool = app.state.engine.pool
    samples = []
    for _ in range(5):
        samples.append(pool.checkedout())
        time.sleep(0.05)
    assert min(samples) == 0 and max(samples) <= 1, samples

    # Sign-ins and other writes go through while every ask still waits: none of them waits
    # for an LLM answer (no reply has left the stand-in when they are done). The failures this
    # guards against were a 10 s lock wait ending in "database is locked" and a 30 s wait for
    # the pool ending in a 500, both behind the asks' 6 s LLM wait; a bound in seconds would
    # also fail on a machine merely busy.
    login = http.post(
        "/api/v1/auth/login",
        json={"email": caller.email, "password": PASSWORD},
    )
    assert login.status_code == 200, login.text
    created = http.post(
        "/api/v1/chat/sessions", json={"title": "meanwhile"}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    me = http.get("/api/v1/auth/me", headers=caller.headers)
    assert me.status_code == 200, me.text
    assert server.replied == 0, "a sign-in or write waited for an LLM answer"

    if app.state.engine.dialect.name == "postgresql":
        with app.state.session_factory() as probe:
            assert _our_transactions(probe) == []
    assert answers == [], "the checks above must run while every ask waits"

    for thread in threads:
        thread.join(timeout=60)
    http.close()
    assert [r.status_code for r in answers] == [200] * CONCURRENT_ASKS, [
        r.text for r in answers if r.status_code != 200
    ][:3]
    with app.state.session_factory() as check:
        recorded = check.query(QueryAnalytics).filter(QueryAnalytics.user_id == caller.user_id)
        assert recorded.count() == CONCURRENT_ASKS
        assert all(row.success for row in recorded)


@pytest.fixture
def keep_alive_server() -> Iterator[ProviderServer]:
    with provider_server(keep_alive=True) as running:
        yield running


def test_llm_asks_reuse_one_provider_connection(
    app: FastAPI, session: Session, settings: Settings, keep_alive_server: ProviderServer
) -> None:
    app.state.settings = settings.model_copy(update={"openai_base_url": keep_alive_server.base_url})
    caller = make_caller(session, settings)
    for _ in range(3):
        keep_alive_server.add(OPENAI.reply(GOOD_SQL, model="test-model"))
    with TestClient(app) as client:
        for _ in range(3):
            chat = client.post(
                "/api/v1/chat/sessions",
                json={"connection_id": caller.connection_id},
                headers=caller.headers,
            ).json()["id"]
            answer = client.post(
                f"/api/v1/chat/sessions/{chat}/ask",
                json={"question": "customers per country", "generator": "openai"},
                headers=caller.headers,
            )
            assert answer.status_code == 200, answer.text
    ports = [r.client_port for r in keep_alive_server.requests]
    assert len(ports) == 3 and len(set(ports)) == 1, ports
