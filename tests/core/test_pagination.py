"""Every list pages the same way: one cursor format, one documented error for a bad cursor.

Before, five implementations answered a bad cursor with 400 `bad_request`, 400
`invalid_cursor`, 422 `invalid_cursor` or 422 `validation_error` depending on the list, and a
well-formed cursor with a naive timestamp reached the database (500 on the user, API key and
connection lists).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.core.config import Settings
from backend.core.pagination import InvalidCursor, decode_cursor, encode_cursor
from tests import factories
from tests.contract.fuzzing import seed

API = "/api/v1"


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


BAD_CURSORS = [
    "garbage!",
    "not-a-cursor",
    _b64({"a": 1}),
    _b64([]),
    _b64(["2024-01-01T00:00:00", "x"]),  # a naive timestamp
    _b64(["2024-01-01T00:00:00+00:00", "x", "y", "z"]),
    _b64([1.5]),
    _b64([True]),
    _b64([2**70]),
    "%%%%",
    "\u00e9t\u00e9",
]


@pytest.fixture
def lists(client: TestClient, session: Session, settings: Settings) -> dict[str, Any]:
    seeded = seed(client, session, settings)
    viewer = factories.token_headers(session, settings, seeded.viewer)
    admin = factories.token_headers(session, settings, seeded.admin)
    chat = seeded.keep["session_id"]
    return {
        "viewer": viewer,
        "admin": admin,
        "paths": [
            ("/connections", viewer),
            ("/chat/sessions", viewer),
            (f"/chat/sessions/{chat}/messages", viewer),
            ("/templates", viewer),
            ("/api-keys", viewer),
            ("/analytics/queries", viewer),
            ("/admin/users", admin),
            ("/admin/audit-logs", admin),
            ("/admin/events", admin),
        ],
    }


def test_every_list_answers_a_bad_cursor_with_the_same_400(
    client: TestClient, lists: dict[str, Any]
) -> None:
    for path, headers in lists["paths"]:
        for cursor in BAD_CURSORS:
            response = client.get(f"{API}{path}", params={"cursor": cursor}, headers=headers)
            assert response.status_code == 400, (path, cursor, response.text)
            assert response.json()["error"]["code"] == "invalid_cursor", (path, cursor)


def test_every_list_walks_its_pages_with_the_cursors_it_hands_out(
    client: TestClient, lists: dict[str, Any]
) -> None:
    for path, headers in lists["paths"]:
        everything = client.get(f"{API}{path}", params={"limit": 100}, headers=headers).json()
        assert everything["next_cursor"] is None, path
        assert len(everything["items"]) >= 2, path
        seen: list[Any] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 1}
            if cursor:
                params["cursor"] = cursor
            page = client.get(f"{API}{path}", params=params, headers=headers)
            assert page.status_code == 200, (path, page.text)
            body = page.json()
            seen += body["items"]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        key = "id" if "id" in everything["items"][0] else "sequence_number"
        assert [i[key] for i in seen] == [i[key] for i in everything["items"]], path


def test_the_contract_documents_the_cursor_error_on_every_list(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", [])}
            if "cursor" in names:
                assert "400" in operation["responses"], (method, path)


def test_cursors_round_trip_and_refuse_the_wrong_kinds(user: User) -> None:
    assert user.created_at is not None
    token = encode_cursor(user.created_at, user.id, 7)
    assert decode_cursor(token, type(user.created_at), str, int) == (user.created_at, user.id, 7)
    with pytest.raises(InvalidCursor):
        decode_cursor(token, int, str, int)
    with pytest.raises(InvalidCursor):
        decode_cursor(encode_cursor("x\x00y"), str)
