"""Chat sessions and asking over HTTP: answers, follow-ups, failures that are still recorded."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.chat import service as chat_service
from backend.chat.models import ChatMessage, ChatSession
from backend.chat.service import NewMessage
from backend.connections import service as connections_service
from backend.demo import DEMO_DB_PATH
from backend.observability.models import Event, PerformanceMetric, QueryAnalytics
from tests.chat.conftest import (
    FOLLOW_UP_2023,
    STAND_IN,
    Caller,
    StandInGenerator,
    make_api_key_headers,
    set_config,
)

SESSIONS = "/api/v1/chat/sessions"


def _new_session(client: TestClient, caller: Caller, **body: Any) -> dict[str, Any]:
    body.setdefault("connection_id", caller.connection_id)
    response = client.post(SESSIONS, json=body, headers=caller.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _ask(client: TestClient, caller: Caller, session_id: str, question: str, **body: Any) -> Any:
    body.setdefault("generator", STAND_IN)
    return client.post(
        f"{SESSIONS}/{session_id}/ask", json={"question": question, **body}, headers=caller.headers
    )


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    return dict(error)


def test_session_lifecycle_create_read_rename_delete(client: TestClient, caller: Caller) -> None:
    created = _new_session(client, caller, title="Sales")
    assert created["title"] == "Sales"
    assert created["message_count"] == 0
    assert created["last_message_at"] is None
    url = f"{SESSIONS}/{created['id']}"

    assert client.get(url, headers=caller.headers).json()["connection_id"] == caller.connection_id
    renamed = client.patch(url, json={"title": "Revenue"}, headers=caller.headers)
    assert renamed.status_code == 200
    assert renamed.json()["title"] == "Revenue"

    assert client.delete(url, headers=caller.headers).status_code == 204
    _error(client.get(url, headers=caller.headers), 404, "chat_session_not_found")
    listed = client.get(SESSIONS, headers=caller.headers).json()
    assert created["id"] not in [s["id"] for s in listed["items"]]


def test_session_without_title_gets_a_default_and_bad_bodies_are_422(
    client: TestClient, caller: Caller
) -> None:
    created = _new_session(client, caller)
    assert created["title"] == "New chat"
    _error(
        client.post(SESSIONS, json={"title": ""}, headers=caller.headers), 422, "validation_error"
    )
    _error(_ask(client, caller, created["id"], "   "), 422, "validation_error")
    bad_connection = client.post(SESSIONS, json={"connection_id": "nope"}, headers=caller.headers)
    _error(bad_connection, 404, "connection_not_found")


def test_sessions_list_newest_activity_first_with_cursor(
    client: TestClient, caller: Caller, stand_in: StandInGenerator
) -> None:
    first = _new_session(client, caller, title="first")
    second = _new_session(client, caller, title="second")
    _new_session(client, caller, title="third")
    assert _ask(client, caller, first["id"], "how many orders are there?").status_code == 200

    page = client.get(SESSIONS, params={"limit": 2}, headers=caller.headers).json()
    assert [s["title"] for s in page["items"]] == ["first", "third"]
    assert page["next_cursor"]
    rest = client.get(
        SESSIONS, params={"limit": 2, "cursor": page["next_cursor"]}, headers=caller.headers
    ).json()
    assert [s["id"] for s in rest["items"]] == [second["id"]]
    assert rest["next_cursor"] is None
    _error(
        client.get(SESSIONS, params={"cursor": "garbage!"}, headers=caller.headers),
        400,
        "invalid_cursor",
    )


def test_another_users_session_is_not_found(
    client: TestClient, caller: Caller, other_caller: Caller, stand_in: StandInGenerator
) -> None:
    mine = _new_session(client, caller)
    url = f"{SESSIONS}/{mine['id']}"
    _error(client.get(url, headers=other_caller.headers), 404, "chat_session_not_found")
    _error(
        client.get(f"{url}/messages", headers=other_caller.headers), 404, "chat_session_not_found"
    )
    _error(
        _ask(client, other_caller, mine["id"], "how many orders are there?"),
        404,
        "chat_session_not_found",
    )
    assert client.get(SESSIONS, headers=other_caller.headers).json()["items"] == []
    # Nor may a session be pointed at someone else's connection.
    _error(
        client.patch(
            url, json={"connection_id": other_caller.connection_id}, headers=caller.headers
        ),
        404,
        "connection_not_found",
    )


def test_chat_needs_credentials(client: TestClient) -> None:
    _error(client.get(SESSIONS), 401, "unauthorized")


def test_ask_answers_with_sql_rows_chart_and_records_it(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat = _new_session(client, caller)
    response = _ask(client, caller, chat["id"], "customers per country")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sql"].startswith("SELECT country, COUNT(*) AS customers FROM customers")
    # The row cap is the LIMIT shown; the probe row the platform adds (1001) is not.
    assert body["sql"].endswith("LIMIT 1000")
    assert [c["name"] for c in body["columns"]] == ["country", "customers"]
    assert body["columns"][0]["type"] == "TEXT"
    assert body["row_count"] == len(body["rows"]) > 1
    assert body["truncated"] is False
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as demo:
        expected = demo.execute(
            "SELECT country, COUNT(*) FROM customers GROUP BY country ORDER BY 2 DESC, country"
        ).fetchall()
    assert [tuple(r) for r in body["rows"]] == expected
    assert body["chart_type"] == "bar"
    assert body["chart"]["$schema"].endswith("vega-lite/v5.json")
    # The chart refers to the rows (carried once) instead of copying them.
    assert body["chart"]["data"] == {"name": "rows"}
    assert body["chart"]["usermeta"]["row_fields"] == ["country", "customers"]
    assert (body["generator"], body["model"]) == (STAND_IN, "stand-in-1")
    assert (body["prompt_tokens"], body["completion_tokens"], body["total_tokens"]) == (10, 5, 15)
    assert body["explanation"]

    session.expire_all()
    messages = session.scalars(
        select(ChatMessage).where(ChatMessage.session_id == chat["id"]).order_by(ChatMessage.id)
    ).all()
    assert [(m.sequence_number, m.message_type) for m in messages] == [
        (1, "user"),
        (2, "assistant"),
    ]
    assert (messages[0].id, messages[1].id) == (body["user_message_id"], body["message_id"])
    assert messages[1].sql_query == body["sql"]
    assert messages[1].query_result is not None
    assert messages[1].query_result["rows"] == body["rows"]
    stored = session.get(ChatSession, chat["id"])
    assert stored is not None and stored.message_count == 2 and stored.last_message_at is not None

    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == body["query_id"])
    ).one()
    assert analytics.success and analytics.source == "ask"
    assert analytics.question == "customers per country"
    assert analytics.chart_type == "bar" and analytics.row_count == body["row_count"]
    assert analytics.generator == STAND_IN and analytics.total_tokens == 15
    assert analytics.connection_id == caller.connection_id
    assert analytics.chat_session_id == chat["id"]
    event = session.scalars(select(Event).where(Event.user_id == caller.user_id)).one()
    assert event.event_type == "asked"
    assert event.event_data is not None and event.event_data["query_id"] == body["query_id"]
    client.app.state.metric_writer.flush()  # type: ignore[attr-defined]
    stages = session.execute(
        select(PerformanceMetric.additional_data).where(
            PerformanceMetric.metric_name == "ask_stage_duration"
        )
    ).scalars()
    assert sorted((d["stage"], d["query_id"]) for d in stages) == [
        (stage, body["query_id"]) for stage in ("execute", "generate", "guard", "record")
    ]
    user = session.get(User, caller.user_id)
    assert user is not None and user.token_usage == 15


def test_follow_up_gets_the_earlier_turns(
    client: TestClient, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat = _new_session(client, caller)
    first = _ask(client, caller, chat["id"], "how many orders are there?").json()
    follow = _ask(client, caller, chat["id"], FOLLOW_UP_2023)
    assert follow.status_code == 200, follow.text
    history = stand_in.requests[-1].history
    assert [(t.question, t.sql) for t in history] == [("how many orders are there?", first["sql"])]
    assert stand_in.requests[0].history == []
    assert 0 < follow.json()["rows"][0][0] < first["rows"][0][0]
    # The earlier success is offered as an example too.
    assert [e.question for e in stand_in.requests[-1].examples] == ["how many orders are there?"]


def test_declined_question_is_422_and_still_recorded(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat = _new_session(client, caller)
    error = _error(
        _ask(client, caller, chat["id"], "what is the meaning of life?"),
        422,
        "question_not_understood",
    )
    assert error["details"]["recognised"] == {"tables": ["orders"]}
    session.expire_all()
    messages = session.scalars(
        select(ChatMessage).where(ChatMessage.session_id == chat["id"]).order_by(ChatMessage.id)
    ).all()
    assert [(m.sequence_number, m.message_type) for m in messages] == [(1, "user"), (2, "error")]
    assert messages[1].id == error["details"]["message_id"]
    assert messages[1].error_message
    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == error["details"]["query_id"])
    ).one()
    assert not analytics.success
    assert analytics.error_code == "question_not_understood"
    assert analytics.error_message
    assert session.scalars(select(Event.event_type)).all() == ["asked"]


def test_a_weak_reading_is_declined_with_suggestions_to_choose_from(
    client: TestClient, caller: Caller
) -> None:
    chat = _new_session(client, caller)
    response = _ask(
        client, caller, chat["id"], "which products have never been reviewed", generator="builtin"
    )
    details = _error(response, 422, "question_not_understood")["details"]
    assert 0 <= details["confidence"] < 1
    suggestions = details["suggestions"]
    assert suggestions and suggestions[0]["text"].startswith("Did you mean:")
    assert suggestions[0]["sql"].startswith("SELECT")
    assert all(set(s) <= {"text", "sql", "confidence"} for s in suggestions)
    assert details["recognised"]["doubts"]


@pytest.mark.parametrize(
    ("question", "status", "code", "rule"),
    [
        ("delete every order", 400, "sql_refused", "read_only_statement"),
        ("read the catalog", 400, "sql_refused", "catalog_access"),
        ("a broken query", 502, "target_database_error", None),
    ],
)
def test_refused_or_failing_sql_is_an_error_and_still_recorded(
    client: TestClient,
    session: Session,
    caller: Caller,
    stand_in: StandInGenerator,
    question: str,
    status: int,
    code: str,
    rule: str | None,
) -> None:
    chat = _new_session(client, caller)
    error = _error(_ask(client, caller, chat["id"], question), status, code)
    if rule is not None:
        assert error["details"]["rule"] == rule
    session.expire_all()
    analytics = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == error["details"]["query_id"])
    ).one()
    assert (analytics.success, analytics.error_code) == (False, code)
    assert analytics.sql_query
    stored = session.get(ChatSession, chat["id"])
    assert stored is not None and stored.message_count == 2


def test_a_slow_query_is_cut_off_with_504(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    set_config(session, "query.statement_timeout_seconds", 0.2)
    chat = _new_session(client, caller)
    _error(_ask(client, caller, chat["id"], "endless"), 504, "target_database_timeout")


def test_the_row_cap_truncates_and_says_so(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    set_config(session, "query.row_cap", 5)
    chat = _new_session(client, caller)
    body = _ask(client, caller, chat["id"], "all orders").json()
    assert (body["row_count"], body["truncated"]) == (5, True)
    # The SQL shown carries the cap (5), not the probe row the executor fetched (6).
    assert body["sql"].endswith("LIMIT 5")


def test_a_session_without_a_connection_uses_the_callers_only_one(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    created = _new_session(client, caller, connection_id=None, title="First questions")
    assert created["connection_id"] == caller.connection_id
    # A session stored without one (before this rule) asks the only connection and keeps it.
    older = chat_service.create_chat_session(
        session, user_id=caller.user_id, title="older", connection_id=None
    )
    session.commit()
    answered = _ask(client, caller, older.id, "how many orders are there?")
    assert answered.status_code == 200, answered.text
    session.expire_all()
    assert session.get(ChatSession, older.id).connection_id == caller.connection_id  # type: ignore[union-attr]


def test_ask_without_a_connection_or_with_unknown_generator_is_422(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    # With two connections, neither is chosen for the caller.
    connections_service.ensure_sqlite_connection(
        session, user_id=caller.user_id, connection_name="second", path=str(DEMO_DB_PATH)
    )
    session.commit()
    bare = _new_session(client, caller, connection_id=None)
    assert bare["connection_id"] is None
    _error(_ask(client, caller, bare["id"], "how many orders are there?"), 422, "no_connection")
    # A single ask may name the connection instead.
    ok = _ask(
        client, caller, bare["id"], "how many orders are there?", connection_id=caller.connection_id
    )
    assert ok.status_code == 200
    _error(
        _ask(
            client, caller, bare["id"], "x", connection_id=caller.connection_id, generator="gpt-9"
        ),
        422,
        "unknown_generator",
    )


def test_scopes_and_api_key_connection_limits_apply(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat = _new_session(client, caller)
    reader = Caller(
        caller.user_id,
        caller.email,
        make_api_key_headers(session, caller, scopes=["chat:read"]),
        caller.connection_id,
    )
    assert client.get(f"{SESSIONS}/{chat['id']}", headers=reader.headers).status_code == 200
    error = _error(_ask(client, reader, chat["id"], "how many orders are there?"), 403, "forbidden")
    assert error["details"]["missing_scopes"] == ["chat:write"]

    elsewhere = Caller(
        caller.user_id,
        caller.email,
        make_api_key_headers(
            session, caller, scopes=["chat:read", "chat:write"], connection_ids=["another"]
        ),
        caller.connection_id,
    )
    _error(_ask(client, elsewhere, chat["id"], "how many orders are there?"), 403, "forbidden")


def test_messages_are_listed_in_order_with_a_cursor(
    client: TestClient, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat = _new_session(client, caller)
    for question in ("how many orders are there?", "monthly orders", "nonsense"):
        _ask(client, caller, chat["id"], question)
    url = f"{SESSIONS}/{chat['id']}/messages"
    page = client.get(url, params={"limit": 4}, headers=caller.headers).json()
    assert [m["sequence_number"] for m in page["items"]] == [1, 2, 3, 4]
    assert [m["message_type"] for m in page["items"]] == ["user", "assistant"] * 2
    assert page["items"][3]["query_result"]["chart_type"] == "line"
    rest = client.get(url, params={"cursor": page["next_cursor"]}, headers=caller.headers).json()
    assert [(m["sequence_number"], m["message_type"]) for m in rest["items"]] == [
        (5, "user"),
        (6, "error"),
    ]
    assert rest["next_cursor"] is None
    assert (
        client.get(f"{SESSIONS}/{chat['id']}", headers=caller.headers).json()["message_count"] == 6
    )


def test_concurrent_appends_get_contiguous_sequence_numbers(
    app: FastAPI, session: Session, caller: Caller
) -> None:
    chat = chat_service.create_chat_session(
        session, user_id=caller.user_id, title="busy", connection_id=None
    )
    session.commit()
    workers, rounds = 4, 5

    def append(worker: int) -> None:
        for i in range(rounds):
            own: Session = app.state.session_factory()
            try:
                target = own.get(ChatSession, chat.id)
                assert target is not None
                chat_service.append_messages(
                    own,
                    target,
                    [
                        NewMessage(message_type="user", content=f"{worker}-{i}"),
                        NewMessage(message_type="assistant", content=f"{worker}-{i}"),
                    ],
                )
                own.commit()
            finally:
                own.close()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(append, range(workers)))

    session.expire_all()
    rows = session.scalars(
        select(ChatMessage)
        .where(ChatMessage.session_id == chat.id)
        .order_by(ChatMessage.sequence_number)
    ).all()
    assert [r.sequence_number for r in rows] == list(range(1, 2 * workers * rounds + 1))
    # Each exchange's two messages are adjacent: nobody slipped in between.
    assert all(rows[i].content == rows[i + 1].content for i in range(0, len(rows), 2))
    stored = session.get(ChatSession, chat.id)
    assert stored is not None and stored.message_count == 2 * workers * rounds


def test_concurrent_asks_over_http_keep_the_numbering_contiguous(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    chat = _new_session(client, caller)
    questions = ["how many orders are there?", "customers per country", "nonsense"] * 3

    with ThreadPoolExecutor(3) as pool:
        statuses = list(
            pool.map(lambda q: _ask(client, caller, chat["id"], q).status_code, questions)
        )

    assert sorted(statuses) == [200] * 6 + [422] * 3
    session.expire_all()
    rows = session.scalars(
        select(ChatMessage)
        .where(ChatMessage.session_id == chat["id"])
        .order_by(ChatMessage.sequence_number)
    ).all()
    assert [r.sequence_number for r in rows] == list(range(1, 19))
    assert [r.message_type for r in rows[::2]] == ["user"] * 9
    assert all(rows[i].query_id == rows[i + 1].query_id for i in range(0, 18, 2))
    stored = session.get(ChatSession, chat["id"])
    assert stored is not None and stored.message_count == 18


def test_the_contract_lists_the_chat_and_query_paths(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/v1/chat/sessions",
        "/api/v1/chat/sessions/{session_id}",
        "/api/v1/chat/sessions/{session_id}/messages",
        "/api/v1/chat/sessions/{session_id}/ask",
        "/api/v1/query/sql",
    } <= set(paths)
    assert "400" in paths["/api/v1/chat/sessions/{session_id}/ask"]["post"]["responses"]
