"""Fixtures of the feedback tests: the chat tests' callers and stand-in engine, and helpers that
ask a question and return the answer."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.chat.conftest import STAND_IN, Caller, caller, other_caller, stand_in

SESSIONS = "/api/v1/chat/sessions"


def new_chat(client: TestClient, caller: Caller) -> str:
    response = client.post(
        SESSIONS, json={"connection_id": caller.connection_id}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def ask(
    client: TestClient,
    caller: Caller,
    question: str = "customers per country",
    *,
    chat_id: str | None = None,
    status: int = 200,
    **body: Any,
) -> dict[str, Any]:
    """Ask with the stand-in engine (unless `generator` is given); returns the JSON answer."""
    chat_id = chat_id or new_chat(client, caller)
    body.setdefault("generator", STAND_IN)
    response = client.post(
        f"{SESSIONS}/{chat_id}/ask", json={"question": question, **body}, headers=caller.headers
    )
    assert response.status_code == status, response.text
    answer: dict[str, Any] = response.json()
    answer.setdefault("chat_id", chat_id)
    return answer


def feedback_url(message_id: int) -> str:
    return f"/api/v1/chat/messages/{message_id}/feedback"


def examples_url(connection_id: str) -> str:
    return f"/api/v1/connections/{connection_id}/examples"


__all__ = ["caller", "other_caller", "stand_in"]
