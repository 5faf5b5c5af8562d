"""Rating answers over HTTP: stored once per user and answer (a second rating replaces the first),
audited, an event, the corrected SQL guarded on the answer's connection, a good or corrected
answer made a verified example; only the asker rates; visible in the feedback review."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.chat.models import ChatMessage
from backend.feedback.models import AnswerFeedback, VerifiedExample
from backend.nl2sql.row_cap import without_row_cap
from backend.observability.event_types import AuditAction, EventType
from backend.observability.models import AuditLog, Event
from tests.chat.conftest import Caller, StandInGenerator, make_api_key_headers, make_caller
from tests.feedback.conftest import ask, examples_url, feedback_url


def _rate(
    client: TestClient,
    caller: Caller,
    message_id: int,
    headers: dict[str, str] | None = None,
    **body: Any,
) -> Any:
    return client.post(feedback_url(message_id), json=body, headers=headers or caller.headers)


def _feedback_rows(session: Session, message_id: int) -> list[AnswerFeedback]:
    session.expire_all()
    return list(
        session.scalars(select(AnswerFeedback).where(AnswerFeedback.message_id == message_id))
    )


def _audits(session: Session, resource_id: str) -> list[AuditLog]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditLog).where(AuditLog.resource_id == resource_id).order_by(AuditLog.id)
        )
    )


def test_a_good_rating_is_stored_audited_and_becomes_an_approved_example(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    answer = ask(client, caller, "customers per country")

    response = _rate(client, caller, answer["message_id"], rating=5, comment="  Spot on.  ")

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["rating"] == 5 and body["comment"] == "Spot on."
    assert body["query_id"] == answer["query_id"]
    assert body["connection_id"] == caller.connection_id
    assert body["generator"] == "stand-in" and body["llm_model"] == "stand-in-1"
    assert body["example"]["approved"] is True
    assert client.get(feedback_url(answer["message_id"]), headers=caller.headers).json() == body

    (row,) = _feedback_rows(session, answer["message_id"])
    assert (row.rating, row.user_id, row.corrected_sql) == (5, caller.user_id, None)
    (audit,) = _audits(session, row.id)
    assert audit.action == AuditAction.FEEDBACK_GIVEN and audit.user_id == caller.user_id
    assert audit.new_values is not None and audit.new_values["rating"] == 5
    event = session.scalars(select(Event).where(Event.event_type == EventType.ANSWER_RATED)).one()
    assert event.event_data is not None
    assert event.event_data["query_id"] == answer["query_id"]
    assert (event.event_data["rating"], event.event_data["replaced"]) == (5, False)

    examples = client.get(examples_url(caller.connection_id), headers=caller.headers).json()
    (example,) = examples["items"]
    assert example["id"] == body["example"]["id"]
    assert (example["question"], example["source"]) == ("customers per country", "feedback")
    # the query rated, without the platform's row cap (h-layer4)
    assert example["sql"] == without_row_cap(answer["sql"], dialect="sqlite", row_cap=1000)
    assert "LIMIT" not in example["sql"].upper()
    assert (example["owner_id"], example["approved_by"]) == (caller.user_id, caller.user_id)
    assert example["feedback_id"] == body["id"]


def test_a_second_rating_replaces_the_first_and_withdraws_its_example(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    answer = ask(client, caller)
    first = _rate(client, caller, answer["message_id"], rating=4)
    assert first.status_code == 201, first.text

    second = _rate(client, caller, answer["message_id"], rating=2, comment="Wrong table.")

    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["example"] is None
    (row,) = _feedback_rows(session, answer["message_id"])
    assert (row.rating, row.comment) == (2, "Wrong table.")
    assert session.scalars(select(VerifiedExample)).all() == []
    created, replaced = _audits(session, row.id)
    assert (created.action, replaced.action) == (
        AuditAction.FEEDBACK_GIVEN,
        AuditAction.FEEDBACK_REPLACED,
    )
    assert replaced.old_values is not None and replaced.new_values is not None
    assert (replaced.old_values["rating"], replaced.new_values["rating"]) == (4, 2)
    assert replaced.old_values["example_id"] == first.json()["example"]["id"]
    assert replaced.new_values["example_id"] is None


def test_a_corrected_sql_is_guarded_on_the_answers_connection_and_becomes_an_example(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    answer = ask(client, caller, "how many orders are there?")
    message_id = answer["message_id"]

    refused = _rate(client, caller, message_id, rating=1, corrected_sql="DELETE FROM orders")
    unknown = _rate(client, caller, message_id, rating=1, corrected_sql="SELECT * FROM nowhere")
    garbled = _rate(client, caller, message_id, rating=1, corrected_sql="SELEC 1 FROM")

    assert refused.status_code == 400 and refused.json()["error"]["code"] == "sql_refused"
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "sql_refused"
    assert garbled.status_code == 400
    assert garbled.json()["error"]["code"] in ("sql_not_parseable", "sql_refused")
    assert _feedback_rows(session, message_id) == []

    corrected = "SELECT COUNT(*) AS delivered FROM orders WHERE status = 'delivered';"
    response = _rate(client, caller, message_id, rating=2, corrected_sql=corrected)

    assert response.status_code == 201, response.text
    assert response.json()["corrected_sql"] == corrected.rstrip(";")
    example = session.scalars(select(VerifiedExample)).one()
    assert (example.source, example.approved) == ("correction", True)
    assert (example.question, example.sql) == ("how many orders are there?", corrected.rstrip(";"))


def test_only_the_asker_rates_and_only_answers_with_sql(
    client: TestClient,
    session: Session,
    settings: Any,
    caller: Caller,
    other_caller: Caller,
    stand_in: StandInGenerator,
) -> None:
    answer = ask(client, caller)
    declined = ask(client, caller, "what is the meaning of life", status=422)
    declined_id = declined["error"]["details"]["message_id"]

    by_other = _rate(client, other_caller, answer["message_id"], rating=5)
    question = _rate(client, caller, answer["user_message_id"], rating=5)
    no_sql = _rate(client, caller, declined_id, rating=5)
    missing = _rate(client, caller, 2_000_000_000, rating=5)
    beyond = _rate(client, caller, 2**63 - 1, rating=5)  # past the id column's range

    assert by_other.status_code == 404 and by_other.json()["error"]["code"] == "message_not_found"
    assert question.status_code == 422
    assert question.json()["error"]["code"] == "message_not_an_answer"
    assert no_sql.status_code == 422 and no_sql.json()["error"]["code"] == "message_not_an_answer"
    assert missing.status_code == 404
    assert beyond.status_code == 404 and beyond.json()["error"]["code"] == "message_not_found"
    other_get = client.get(feedback_url(answer["message_id"]), headers=other_caller.headers)
    assert other_get.status_code == 404
    unrated = client.get(feedback_url(answer["message_id"]), headers=caller.headers)
    assert unrated.status_code == 404 and unrated.json()["error"]["code"] == "feedback_not_found"
    for bad in ({"rating": 0}, {"rating": 6}, {}, {"rating": 3, "comment": "x" * 2001}):
        response = client.post(feedback_url(answer["message_id"]), json=bad, headers=caller.headers)
        assert response.status_code == 422, bad
        assert set(response.json()["error"]) == {"code", "message", "details"}

    read_only = make_api_key_headers(session, caller, scopes=["chat:read"])
    elsewhere = make_api_key_headers(
        session, caller, scopes=["chat:write"], connection_ids=[other_caller.connection_id]
    )
    denied = _rate(client, caller, answer["message_id"], headers=read_only, rating=5)
    fenced = _rate(client, caller, answer["message_id"], headers=elsewhere, rating=5)
    assert denied.status_code == 403
    assert denied.json()["error"]["details"]["missing_scopes"] == ["chat:write"]
    assert fenced.status_code == 403
    assert _feedback_rows(session, answer["message_id"]) == []

    scoped = make_api_key_headers(session, caller, scopes=["chat:write"])
    assert _rate(client, caller, answer["message_id"], headers=scoped, rating=3).status_code == 201


def test_the_feedback_review_counts_and_averages_per_generator_and_connection(
    client: TestClient,
    session: Session,
    settings: Any,
    caller: Caller,
    other_caller: Caller,
    stand_in: StandInGenerator,
) -> None:
    for who, rating in ((caller, 5), (caller, 2), (other_caller, 4)):
        answer = ask(client, who)
        assert _rate(client, who, answer["message_id"], rating=rating).status_code == 201

    own = client.get("/api/v1/analytics/feedback", headers=caller.headers).json()
    assert sorted(item["rating"] for item in own["items"]) == [2, 5]
    assert {item["user_id"] for item in own["items"]} == {caller.user_id}
    assert (
        client.get(
            "/api/v1/analytics/feedback",
            params={"user_id": other_caller.user_id},
            headers=caller.headers,
        ).status_code
        == 403
    )
    paged = client.get(
        "/api/v1/analytics/feedback", params={"limit": 1}, headers=caller.headers
    ).json()
    assert len(paged["items"]) == 1 and paged["next_cursor"]
    rest = client.get(
        "/api/v1/analytics/feedback",
        params={"limit": 1, "cursor": paged["next_cursor"]},
        headers=caller.headers,
    ).json()
    assert len(rest["items"]) == 1 and rest["items"][0]["id"] != paged["items"][0]["id"]

    mine = client.get("/api/v1/analytics/feedback/summary", headers=caller.headers).json()
    assert mine["total"]["count"] == 2 and mine["total"]["average_rating"] == 3.5
    (group,) = mine["groups"]
    assert group["key"] == "stand-in" and group["ratings"] == {
        "1": 0,
        "2": 1,
        "3": 0,
        "4": 0,
        "5": 1,
    }

    admin = make_caller(session, settings, role="admin")
    everyone = client.get(
        "/api/v1/analytics/feedback/summary",
        params={"group_by": "connection"},
        headers=admin.headers,
    ).json()
    assert everyone["total"]["count"] == 3
    by_connection = {g["key"]: g["count"] for g in everyone["groups"]}
    assert by_connection == {caller.connection_id: 2, other_caller.connection_id: 1}
    exported = client.get(
        "/api/v1/analytics/feedback/export", params={"rating": 5}, headers=admin.headers
    )
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.strip().splitlines()
    assert lines[0].startswith("id,created_at,updated_at,user_id,message_id")
    assert len(lines) == 2 and caller.user_id in lines[1]
    low = client.get(
        "/api/v1/analytics/feedback", params={"rating": 2}, headers=admin.headers
    ).json()
    assert [item["user_id"] for item in low["items"]] == [caller.user_id]


def test_a_draft_run_through_query_sql_shows_in_its_thread(
    client: TestClient,
    session: Session,
    caller: Caller,
    other_caller: Caller,
    stand_in: StandInGenerator,
) -> None:
    draft = ask(client, caller, "customers per country", execute=False)
    run_body = {"connection_id": caller.connection_id, "sql": draft["sql"]}

    by_other = client.post(
        "/api/v1/query/sql",
        json={
            **run_body,
            "connection_id": other_caller.connection_id,
            "message_id": draft["message_id"],
        },
        headers=other_caller.headers,
    )
    ran = client.post(
        "/api/v1/query/sql",
        json={**run_body, "message_id": draft["message_id"]},
        headers=caller.headers,
    )
    again = client.post(
        "/api/v1/query/sql",
        json={**run_body, "message_id": draft["message_id"]},
        headers=caller.headers,
    )

    assert by_other.status_code == 404
    assert ran.status_code == 200, ran.text
    assert again.status_code == 409 and again.json()["error"]["code"] == "message_not_a_draft"
    messages = client.get(
        f"/api/v1/chat/sessions/{draft['chat_id']}/messages", headers=caller.headers
    ).json()["items"]
    shown = next(m for m in messages if m["id"] == draft["message_id"])
    result = shown["query_result"]
    assert result.get("executed") is not False
    assert result["ran_query_id"] == ran.json()["query_id"]
    assert result["rows"] == ran.json()["rows"] and result["row_count"] > 0
    assert result["chart"] == ran.json()["chart"]
    assert shown["sql_query"] == ran.json()["sql"]
    event = session.scalars(select(Event).where(Event.event_type == EventType.SQL_RAN)).all()
    assert [e.event_data and e.event_data.get("message_id") for e in event][:1] == [
        draft["message_id"]
    ]


def test_a_reopened_answer_keeps_its_chart(
    client: TestClient, session: Session, caller: Caller, stand_in: StandInGenerator
) -> None:
    answer = ask(client, caller, "customers per country")
    stored = session.get(ChatMessage, answer["message_id"])
    assert stored is not None and stored.query_result is not None
    assert stored.query_result["chart"] == answer["chart"]
    assert answer["chart"]["mark"]

    # An answer stored before charts were kept gets one suggested from its stored rows.
    stored.query_result = {
        k: v for k, v in stored.query_result.items() if k not in ("chart", "chart_type")
    }
    session.commit()
    messages = client.get(
        f"/api/v1/chat/sessions/{answer['chat_id']}/messages", headers=caller.headers
    ).json()["items"]
    shown = next(m for m in messages if m["id"] == answer["message_id"])
    assert shown["query_result"]["chart"] == answer["chart"]
