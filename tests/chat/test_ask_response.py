"""The ask's HTTP answer is encoded once, straight from the answer, and is byte for byte what
`AskResponse` would encode: the same fields in the same order, each of its declared JSON type.
The streamed ask's `done` event, a background job's result and the MCP tool share the fields."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.chat.schemas import AskResponse
from backend.core.config import Settings
from tests.chat.conftest import STAND_IN, StandInGenerator, make_caller

ASKS = [
    {"question": "Number of orders per status"},
    {"question": "Customers in France"},
    {"question": "How many customers are there?"},
    {"question": "customers per country", "generator": STAND_IN},
    {"question": "how many orders are there?", "generator": STAND_IN, "execute": False},
]


def test_the_ask_answer_is_what_the_response_model_encodes(
    client: TestClient, session: Session, settings: Settings, stand_in: StandInGenerator
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    for body in ASKS:
        response = client.post(
            f"/api/v1/chat/sessions/{chat}/ask", json=body, headers=caller.headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert len(response.headers["x-request-id"]) >= 8
        encoded = response.content
        assert list(json.loads(encoded)) == list(AskResponse.model_fields), body
        assert AskResponse.model_validate_json(encoded).model_dump_json().encode() == encoded
    assert stand_in.requests  # the stand-in answered its questions


def test_an_ask_the_engine_declines_keeps_the_one_error_shape(
    client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    response = client.post(
        f"/api/v1/chat/sessions/{chat}/ask",
        json={"question": "zebra quantum marmalade"},
        headers=caller.headers,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "question_not_understood"
    assert error["details"]["query_id"] and error["details"]["message_id"]
    assert len(response.headers["x-request-id"]) >= 8
