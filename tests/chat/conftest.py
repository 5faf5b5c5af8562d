"""Callers for chat and query tests: users with tokens, the demo connection, a stand-in engine.

The stand-in generator replaces only the natural-language part (a few fixed questions mapped
to SQL); the guard, the executor, the charts and the recording under test are the real ones.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy.orm import Session

from backend.admin.models import SystemConfig
from backend.auth.models import User
from backend.connections import service as connections_service
from backend.core.config import Settings
from backend.demo import DEMO_DB_PATH
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.base import (
    Generation,
    GenerationRequest,
    QuestionNotUnderstood,
    SqlGenerator,
)
from tests.factories import create_api_key, create_user, token_headers

STAND_IN = "stand-in"

ANSWERS = {
    "how many orders are there?": "SELECT COUNT(*) AS orders FROM orders",
    "customers per country": (
        "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country "
        "ORDER BY customers DESC, country"
    ),
    "monthly orders": (
        "SELECT strftime('%Y-%m', order_date) AS month, COUNT(*) AS orders FROM orders "
        "GROUP BY month ORDER BY month"
    ),
    "all orders": "SELECT * FROM orders ORDER BY id",
    "delete every order": "DELETE FROM orders",
    "read the catalog": "SELECT name FROM sqlite_master",
    "a broken query": "SELECT no_such_column FROM orders",
    "endless": (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    ),
}
FOLLOW_UP_2023 = "and only for 2023?"
PASSWORD = "a-long-password-1"
"""The password of every `make_caller` user."""


class StandInGenerator(SqlGenerator):
    """Maps a few fixed questions to SQL and remembers every request it was given."""

    name = STAND_IN

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        question = request.question.lower()
        previous = request.history[-1].sql if request.history else None
        if (
            question == FOLLOW_UP_2023
            and previous is not None
            and previous.startswith(ANSWERS["how many orders are there?"])
        ):
            sql = "SELECT COUNT(*) AS orders FROM orders WHERE strftime('%Y', order_date) = '2023'"
            return Generation(sql=sql, explanation="Orders placed in 2023.")
        if question in ANSWERS:
            return Generation(
                sql=ANSWERS[question],
                explanation=f"Stand-in answer to {question!r}.",
                prompt_tokens=10,
                completion_tokens=5,
                model="stand-in-1",
            )
        raise QuestionNotUnderstood(
            "I could not understand this question.", recognised={"tables": {"orders"}}
        )


@pytest.fixture
def stand_in() -> Iterator[StandInGenerator]:
    generator = StandInGenerator()
    registry.register_generator(STAND_IN, lambda _settings: generator)
    yield generator
    registry.unregister_generator(STAND_IN)


@dataclass
class Caller:
    user_id: str
    email: str
    headers: dict[str, str]
    connection_id: str
    extra: dict[str, Any] = field(default_factory=dict)

    def open_chat(self, client: Any) -> str:
        """A new chat session on the caller's connection (through `client`, a TestClient or an
        httpx client); returns its id."""
        created = client.post(
            "/api/v1/chat/sessions",
            json={"connection_id": self.connection_id},
            headers=self.headers,
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def make_caller(session: Session, settings: Settings, *, role: str = "viewer") -> Caller:
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    user = create_user(session, email=email, password=PASSWORD, full_name="Test User", role=role)
    connection = connections_service.ensure_sqlite_connection(
        session, user_id=user.id, connection_name="demo", path=str(DEMO_DB_PATH)
    )
    session.commit()
    return Caller(
        user_id=user.id,
        email=email,
        headers=token_headers(session, settings, user),
        connection_id=connection.id,
    )


def make_api_key_headers(
    session: Session, caller: Caller, *, scopes: list[str], connection_ids: list[str] | None = None
) -> dict[str, str]:
    user = session.get(User, caller.user_id)
    assert user is not None
    return create_api_key(session, user, scopes=scopes, connection_ids=connection_ids).headers


def set_config(session: Session, key: str, value: Any) -> None:
    session.add(SystemConfig(config_key=key, config_value=value))
    session.commit()


@pytest.fixture
def caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)


@pytest.fixture
def other_caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)
