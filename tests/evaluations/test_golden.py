"""A connection's golden set over HTTP: add, upload (JSON, CSV, YAML), import, list, delete;
hostile or invalid input answered with a 4xx in the one error shape, nothing half-stored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.evaluations.models import GoldenQuestion
from backend.evaluations.schemas import UPLOAD_MAX_CHARS
from backend.observability.models import AuditLog
from tests.chat.conftest import Caller, make_api_key_headers
from tests.evaluations.conftest import GOLDEN, base, upload


def _count(session: Session) -> int:
    session.expire_all()
    return int(session.scalar(select(func.count()).select_from(GoldenQuestion)) or 0)


def _error(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code, body
    return dict(body["error"]["details"])


def test_uploads_in_each_format_add_guarded_questions_and_skip_known_ones(
    client: TestClient, session: Session, caller: Caller
) -> None:
    added = upload(client, caller, json.dumps(GOLDEN))
    assert added.status_code == 201, added.text
    body = added.json()
    assert [q["question"] for q in body["added"]] == [g["question"] for g in GOLDEN]
    assert body["skipped"] == 0
    assert all(q["source"] == "upload" and q["ordered"] is False for q in body["added"])

    csv_text = (
        "question,sql,ordered\n"
        '"Customers by name","SELECT name FROM customers ORDER BY name",\n'
        "how many customers are there?,SELECT COUNT(*) FROM customers,no\n"
    )
    added = upload(client, caller, csv_text, "csv")
    assert added.status_code == 201, added.text
    # The gold's ORDER BY makes a question ordered unless it says otherwise.
    assert [(q["question"], q["ordered"]) for q in added.json()["added"]] == [
        ("Customers by name", True)
    ]
    assert added.json()["skipped"] == 1

    yaml_text = (
        "questions:\n"
        "  - question: Products per category\n"
        "    sql: SELECT category, COUNT(*) FROM products GROUP BY category\n"
        "    ordered: false\n"
    )
    added = upload(client, caller, yaml_text, "yaml")
    assert added.status_code == 201, added.text
    assert len(added.json()["added"]) == 1

    listed = client.get(f"{base(caller)}/golden-questions?limit=3", headers=caller.headers)
    assert listed.status_code == 200
    first = listed.json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    rest = client.get(
        f"{base(caller)}/golden-questions",
        params={"cursor": first["next_cursor"]},
        headers=caller.headers,
    ).json()
    assert len(rest["items"]) == 3 and rest["next_cursor"] is None
    assert _count(session) == 6
    actions = set(
        session.scalars(select(AuditLog.action).where(AuditLog.user_id == caller.user_id))
    )
    assert "golden.add" in actions


@pytest.mark.parametrize(
    ("kind", "content", "status", "code", "details"),
    [
        ("json", '[{"question": "q"', 422, "golden_upload_invalid", {"reason": "unparseable"}),
        ("json", '{"a": 1}', 422, "golden_upload_invalid", {"reason": "not_a_list"}),
        ("json", "[]", 422, "golden_upload_invalid", {"reason": "not_a_list"}),
        (
            "json",
            json.dumps([GOLDEN[0], {"question": "", "sql": "SELECT 1"}]),
            422,
            "golden_upload_invalid",
            {"reason": "invalid_item", "index": 1, "field": "question"},
        ),
        (
            "json",
            json.dumps([{"question": "q", "sql": "SELECT 1", "extra": {"a": 1}}]),
            422,
            "golden_upload_invalid",
            {"reason": "invalid_item", "index": 0, "field": "extra"},
        ),
        ("json", "[" * 100_000, 422, "golden_upload_invalid", {"reason": "unparseable"}),
        (
            "json",
            json.dumps([{"question": "q\u0000", "sql": "SELECT 1"}]),
            422,
            "golden_upload_invalid",
            {"reason": "invalid_item"},
        ),
        (
            "yaml",
            '- {question: "q\\0", sql: SELECT 1}',
            422,
            "golden_upload_invalid",
            {"reason": "invalid_item", "index": 0, "field": "question"},
        ),
        ("txt", "[]", 422, "validation_error", {}),
        (
            "yaml",
            "a: &a [1, 2]\nb: &b [*a, *a, *a]\nquestions: [*b, *b]\n",
            422,
            "golden_upload_invalid",
            {"reason": "unparseable"},
        ),
        ("yaml", "!!python/object/apply:os.system ['true']", 422, "golden_upload_invalid", {}),
        ("csv", "q,s\nx,y\n", 422, "golden_upload_invalid", {"reason": "unparseable"}),
        (
            "csv",
            "question,sql,ordered\nq,SELECT 1,perhaps\n",
            422,
            "golden_upload_invalid",
            {"reason": "unparseable"},
        ),
        (
            "json",
            json.dumps([GOLDEN[0], {"question": "drop it", "sql": "DELETE FROM orders"}]),
            422,
            "golden_sql_refused",
            {"index": 1},
        ),
        (
            "json",
            json.dumps([{"question": "catalog", "sql": "SELECT name FROM sqlite_master"}]),
            422,
            "golden_sql_refused",
            {"index": 0},
        ),
        (
            "json",
            json.dumps([{"question": f"q{i}", "sql": "SELECT 1"} for i in range(1001)]),
            413,
            "golden_upload_too_large",
            {},
        ),
        ("json", "[" + " " * UPLOAD_MAX_CHARS + "]", 422, "validation_error", {}),
    ],
)
def test_a_bad_upload_is_refused_whole_with_the_item_named(
    client: TestClient,
    session: Session,
    caller: Caller,
    kind: str,
    content: str,
    status: int,
    code: str,
    details: dict[str, object],
) -> None:
    details_seen = _error(upload(client, caller, content, kind), status, code)
    for key, value in details.items():
        assert details_seen[key] == value, details_seen
    assert _count(session) == 0


def test_add_one_and_delete_and_the_errors_of_each(
    client: TestClient, session: Session, caller: Caller
) -> None:
    path = f"{base(caller)}/golden-questions"
    created = client.post(path, json=GOLDEN[0], headers=caller.headers)
    assert created.status_code == 201, created.text
    golden_id = created.json()["id"]
    assert created.json()["source"] == "manual"
    _error(client.post(path, json=GOLDEN[0], headers=caller.headers), 409, "golden_question_exists")
    refused = client.post(
        path, json={"question": "x", "sql": "SELECT * FROM nowhere"}, headers=caller.headers
    )
    assert _error(refused, 422, "golden_sql_refused")["rule"]
    _error(
        client.post(path, json={"question": "x"}, headers=caller.headers), 422, "validation_error"
    )
    assert client.delete(f"{path}/{golden_id}", headers=caller.headers).status_code == 204
    _error(
        client.delete(f"{path}/{golden_id}", headers=caller.headers),
        404,
        "golden_question_not_found",
    )
    assert _count(session) == 0


def test_import_from_templates_and_from_well_rated_answers(
    client: TestClient, session: Session, caller: Caller
) -> None:
    template = client.post(
        "/api/v1/templates",
        json={
            "name": "Orders per status",
            "question_template": "orders per status",
            "sql_template": "SELECT status, COUNT(*) FROM orders GROUP BY status",
        },
        headers=caller.headers,
    )
    assert template.status_code == 201, template.text
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()
    asked = client.post(
        f"/api/v1/chat/sessions/{chat['id']}/ask",
        json={"question": "how many customers are there?"},
        headers=caller.headers,
    )
    assert asked.status_code == 200, asked.text
    poorly = client.post(
        f"/api/v1/chat/sessions/{chat['id']}/ask",
        json={"question": "how many orders are there?"},
        headers=caller.headers,
    )
    assert poorly.status_code == 200, poorly.text
    unrated = client.post(
        f"/api/v1/chat/sessions/{chat['id']}/ask",
        json={"question": "how many products are there?"},
        headers=caller.headers,
    )
    assert unrated.status_code == 200, unrated.text
    # Only the well-rated answer is golden material; the rating also makes it a verified
    # example of the connection (the rater owns it).
    for answer, rating in ((asked, 5), (poorly, 2)):
        rated = client.post(
            f"/api/v1/chat/messages/{answer.json()['message_id']}/feedback",
            json={"rating": rating},
            headers=caller.headers,
        )
        assert rated.status_code == 201, rated.text

    path = f"{base(caller)}/golden-set/import"
    from_templates = client.post(path, json={"source": "templates"}, headers=caller.headers)
    assert from_templates.status_code == 201, from_templates.text
    assert [
        (q["question"], q["source"], q["source_ref"]) for q in from_templates.json()["added"]
    ] == [("orders per status", "template", template.json()["id"])]
    from_answers = client.post(path, json={"source": "answers"}, headers=caller.headers)
    assert from_answers.status_code == 201, from_answers.text
    answers = from_answers.json()["added"]
    assert [(q["question"], q["source"]) for q in answers] == [
        ("how many customers are there?", "answer")
    ]
    assert answers[0]["source_ref"] == asked.json()["query_id"]
    again = client.post(path, json={"source": "answers"}, headers=caller.headers).json()
    assert again == {"added": [], "skipped": 1}
    verified = client.post(path, json={"source": "verified"}, headers=caller.headers).json()
    assert verified == {"added": [], "skipped": 1}  # the same question, already golden
    _error(
        client.post(path, json={"source": "elsewhere"}, headers=caller.headers),
        422,
        "validation_error",
    )


def test_another_users_connection_is_not_found_and_scopes_are_enforced(
    client: TestClient, session: Session, caller: Caller, other_caller: Caller
) -> None:
    path = f"{base(caller)}/golden-questions"
    assert upload(client, caller, json.dumps(GOLDEN)).status_code == 201
    for response in (
        client.get(path, headers=other_caller.headers),
        client.post(path, json=GOLDEN[0], headers=other_caller.headers),
        upload(client, caller, json.dumps(GOLDEN), headers=other_caller.headers),
    ):
        _error(response, 404, "connection_not_found")
    reader = make_api_key_headers(session, caller, scopes=["connections:read"])
    assert client.get(path, headers=reader).status_code == 200
    _error(client.post(path, json=GOLDEN[0], headers=reader), 403, "forbidden")
    chat_only = make_api_key_headers(session, caller, scopes=["chat:write"])
    _error(client.get(path, headers=chat_only), 403, "forbidden")


def test_import_from_verified_examples_takes_only_approved_ones_of_the_connection(
    client: TestClient, session: Session, caller: Caller
) -> None:
    examples = f"/api/v1/connections/{caller.connection_id}/examples"
    added = client.post(
        examples,
        json={"question": "customers in France", "sql": "SELECT name FROM customers"},
        headers=caller.headers,
    )
    assert added.status_code == 201, added.text
    path = f"{base(caller)}/golden-set/import"
    imported = client.post(path, json={"source": "verified"}, headers=caller.headers)
    assert imported.status_code == 201, imported.text
    assert [(q["question"], q["source"], q["source_ref"]) for q in imported.json()["added"]] == [
        ("customers in France", "verified", added.json()["id"])
    ]
