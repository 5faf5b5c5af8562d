"""An ask may answer with the checked SQL only (`execute: false`), recorded as a draft; every
answer that ran carries a plain-language summary and the SQL as the user would run it."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.chat.models import ChatMessage
from backend.observability.event_types import EventType
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import STAND_IN, Caller, StandInGenerator

SESSIONS = "/api/v1/chat/sessions"


def _session_id(client: TestClient, caller: Caller) -> str:
    response = client.post(
        SESSIONS, json={"connection_id": caller.connection_id}, headers=caller.headers
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_ask_without_running_returns_the_checked_sql_and_records_a_draft(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat_id = _session_id(client, caller)
    response = client.post(
        f"{SESSIONS}/{chat_id}/ask",
        json={"question": "customers per country", "generator": STAND_IN, "execute": False},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text
    draft = response.json()
    assert draft["executed"] is False
    assert draft["sql"].startswith("SELECT country, COUNT(*) AS customers FROM customers")
    assert draft["sql"].endswith("LIMIT 1000")
    assert (draft["rows"], draft["columns"], draft["chart"], draft["summary"]) == (
        [],
        [],
        None,
        None,
    )
    assert draft["explanation"]

    recorded = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == draft["query_id"])
    ).one()
    assert (recorded.source, recorded.success, recorded.row_count) == ("draft", True, None)
    answer = session.scalars(
        select(ChatMessage).where(
            ChatMessage.query_id == draft["query_id"], ChatMessage.message_type == "assistant"
        )
    ).one()
    assert answer.query_result == {"executed": False}
    assert answer.sql_query == draft["sql"]
    event = session.scalars(select(Event).where(Event.event_type == EventType.ASKED)).one()
    assert event.event_data is not None and event.event_data["executed"] is False

    # A draft has no rows to export; running it later is an ordinary user-written query.
    export = client.get(f"/api/v1/query/{draft['query_id']}/export", headers=caller.headers)
    assert export.status_code == 409, export.text
    # Running it later is an ordinary user-written query.
    ran = client.post(
        "/api/v1/query/sql",
        json={"connection_id": caller.connection_id, "sql": draft["sql"]},
        headers=caller.headers,
    )
    assert ran.status_code == 200, ran.text
    assert ran.json()["row_count"] > 1
    assert ran.json()["sql"] == draft["sql"]


def test_an_answer_that_ran_has_a_summary_of_its_rows(
    client: TestClient, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat_id = _session_id(client, caller)
    response = client.post(
        f"{SESSIONS}/{chat_id}/ask",
        json={"question": "customers per country", "generator": STAND_IN},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["executed"] is True
    top_country, top_count = body["rows"][0]
    assert body["summary"].startswith(f"Customers is highest for {top_country} ({top_count:,})"), (
        body["summary"]
    )
    history = client.get(f"{SESSIONS}/{chat_id}/messages", headers=caller.headers).json()
    assert history["items"][1]["query_result"]["summary"] == body["summary"]
