"""An answer keeps a bounded preview of its rows in its chat message, not the whole result."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.chat.models import ChatMessage
from tests.chat.conftest import STAND_IN, Caller, StandInGenerator, set_config

SESSIONS = "/api/v1/chat/sessions"


def test_the_message_keeps_a_preview_of_the_rows_within_its_byte_bound(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    set_config(session, "chat.preview_max_bytes", 2_000)
    chat = client.post(
        SESSIONS, json={"connection_id": caller.connection_id}, headers=caller.headers
    ).json()
    answer = client.post(
        f"{SESSIONS}/{chat['id']}/ask",
        json={"question": "all orders", "generator": STAND_IN},
        headers=caller.headers,
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert len(json.dumps(body["rows"])) > 10_000

    session.expire_all()
    stored = session.scalars(
        select(ChatMessage).where(
            ChatMessage.session_id == chat["id"], ChatMessage.message_type == "assistant"
        )
    ).one()
    preview = stored.query_result
    assert preview is not None
    assert len(json.dumps(preview["rows"])) <= 2_000 + 100
    assert 0 < preview["preview_row_count"] == len(preview["rows"]) < body["row_count"]
    assert preview["row_count"] == body["row_count"]
    assert preview["rows"] == body["rows"][: len(preview["rows"])]
    assert (preview["truncated"], preview["truncated_reason"]) == (
        body["truncated"],
        body["truncated_reason"],
    )
    # The history shows the same preview.
    listed = client.get(f"{SESSIONS}/{chat['id']}/messages", headers=caller.headers).json()
    assert listed["items"][-1]["query_result"]["rows"] == preview["rows"]
