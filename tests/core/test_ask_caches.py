"""What an ask keeps per process, and what it never keeps.

An ask keeps parsed copies of a connection's schema snapshot, semantic layer and visible
templates, keyed by their versions as the shared database has them, read in the ask's one read
statement. A write made by another process (here: through an engine of its own, not the
app's) is seen by the very next ask, with no time to wait out. The caller's session, user and
API key are read on every ask: a revoked session or key is refused on the next request, even
though the bearer token's signature check is remembered.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, delete, update
from sqlalchemy.orm import Session

from backend.auth.models import ApiKey, UserSession
from backend.connections.models import DatabaseSchema
from backend.core import security
from backend.core.config import Settings
from backend.core.db import create_app_engine, create_session_factory
from backend.templates.models import QueryTemplate
from tests.chat.conftest import make_api_key_headers, make_caller

CUSTOMERS = "How many customers are there?"


@pytest.fixture
def other_process(settings: Settings) -> Iterator[Engine]:
    """An engine of its own on the platform database: another process's writes."""
    engine = create_app_engine(str(settings.database_url))
    yield engine
    engine.dispose()


def _ask(
    client: TestClient, chat: str, question: str, headers: dict[str, str]
) -> dict[str, object]:
    response = client.post(
        f"/api/v1/chat/sessions/{chat}/ask", json={"question": question}, headers=headers
    )
    body: dict[str, object] = response.json()
    body["status"] = response.status_code
    return body


def test_a_snapshot_changed_by_another_process_is_seen_by_the_next_ask(
    client: TestClient, session: Session, settings: Settings, other_process: Engine
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    assert _ask(client, chat, CUSTOMERS, caller.headers)["status"] == 200
    assert _ask(client, chat, CUSTOMERS, caller.headers)["status"] == 200
    with other_process.begin() as conn:
        conn.execute(
            delete(DatabaseSchema).where(
                DatabaseSchema.connection_id == caller.connection_id,
                DatabaseSchema.table_name == "customers",
            )
        )
    # The snapshot no longer knows the table: the next ask cannot read it (it was kept for
    # 30 s by a process that had parsed the snapshot before).
    refused = _ask(client, chat, CUSTOMERS, caller.headers)
    assert refused["status"] in (400, 422), refused


def test_a_template_added_by_another_process_answers_the_next_ask(
    client: TestClient, session: Session, settings: Settings, other_process: Engine
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    question = "how many rows does the orders table hold"
    first = _ask(client, chat, question, caller.headers)
    assert first.get("template_id") is None, first
    with create_session_factory(other_process)() as writer:
        template = QueryTemplate(
            user_id=caller.user_id,
            connection_id=caller.connection_id,
            name="orders held",
            question_template=question,
            sql_template="SELECT COUNT(*) AS orders FROM orders",
        )
        writer.add(template)
        writer.commit()
        template_id = template.id
    answered = _ask(client, chat, question, caller.headers)
    assert answered["status"] == 200, answered
    assert answered["template_id"] == template_id
    assert answered["generator"] == "template"

    # Deleted by the other process: the next ask no longer matches it.
    with other_process.begin() as conn:
        conn.execute(delete(QueryTemplate).where(QueryTemplate.id == template_id))
    after = _ask(client, chat, question, caller.headers)
    assert after.get("template_id") is None, after


def test_a_session_ended_by_another_process_is_refused_on_the_next_ask(
    client: TestClient, session: Session, settings: Settings, other_process: Engine
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    assert _ask(client, chat, CUSTOMERS, caller.headers)["status"] == 200
    with other_process.begin() as conn:
        conn.execute(
            update(UserSession).where(UserSession.user_id == caller.user_id).values(is_active=False)
        )
    refused = _ask(client, chat, CUSTOMERS, caller.headers)
    assert refused["status"] == 401, refused
    assert refused["error"]["code"] == "unauthorized", refused  # type: ignore[index]


def test_a_key_revoked_by_another_process_is_refused_on_the_next_ask(
    client: TestClient, session: Session, settings: Settings, other_process: Engine
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    headers = make_api_key_headers(session, caller, scopes=["chat:write"])
    assert _ask(client, chat, CUSTOMERS, headers)["status"] == 200
    with other_process.begin() as conn:
        conn.execute(update(ApiKey).where(ApiKey.user_id == caller.user_id).values(is_active=False))
    refused = _ask(client, chat, CUSTOMERS, headers)
    assert refused["status"] == 401, refused


def test_an_ask_of_another_users_session_or_connection_is_not_found(
    app: FastAPI, client: TestClient, session: Session, settings: Settings
) -> None:
    owner, stranger = make_caller(session, settings), make_caller(session, settings)
    chat = owner.open_chat(client)
    assert _ask(client, chat, CUSTOMERS, stranger.headers)["status"] == 404
    own_chat = stranger.open_chat(client)
    response = client.post(
        f"/api/v1/chat/sessions/{own_chat}/ask",
        json={"question": CUSTOMERS, "connection_id": owner.connection_id},
        headers=stranger.headers,
    )
    assert response.status_code == 404, response.text


def test_a_remembered_token_is_refused_once_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "s" * 48
    now = int(security.time.time())
    token = security.jwt.encode(
        {"sub": "u", "iss": "nlsql", "typ": "access", "iat": now, "exp": now + 60},
        secret,
        algorithm=security.JWT_ALGORITHM,
    )
    claims = security.decode_jwt(token, secret=secret, issuer="nlsql", token_type="access")
    assert claims["sub"] == "u"
    # Remembered: asked again, the same claims (a copy: the caller may not change the cache).
    claims["sub"] = "changed"
    again = security.decode_jwt(token, secret=secret, issuer="nlsql", token_type="access")
    assert again["sub"] == "u"
    with pytest.raises(security.TokenError):
        security.decode_jwt(token, secret="t" * 48, issuer="nlsql", token_type="access")
    with pytest.raises(security.TokenError):
        security.decode_jwt(token, secret=secret, issuer="nlsql", token_type="refresh")

    class _Later:
        @staticmethod
        def time() -> float:
            return now + 61.0

    monkeypatch.setattr(security, "time", _Later)
    with pytest.raises(security.TokenError):
        security.decode_jwt(token, secret=secret, issuer="nlsql", token_type="access")
