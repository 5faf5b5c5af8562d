"""An offline ask parses its SQL once: the engine parses it the guard's way to judge it, and the
guard checks that very tree instead of parsing the same text again.

* Through the real ask path (HTTP, the builtin engine), one sqlglot parse per ask.
* What the guard answers from the handed tree is what it answers from the text: the engine
  reads the tree without changing it.
* The guard takes a handed tree only for exactly the text and dialect it was parsed from, and
  only once; otherwise it parses afresh. A handed tree is refused like the text it came from.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from sqlglot.parser import Parser

from backend.connections import schema_cache
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.nl2sql.engines.base import GenerationRequest
from backend.nl2sql.engines.builtin import BuiltinGenerator
from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.guard import ParsedSql, guard_sql, parse_sql
from tests.chat.conftest import make_caller

QUESTIONS = [
    "How many customers are there?",
    "Number of orders per status",
    "Top 5 products by unit price",
    "Customers in France",
    "Total payment amount by method",
]


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every sqlglot parse made on a request's threads (not the app's background threads),
    by the SQL it parsed; sqlglot's own parser still does the parsing."""
    seen: list[str] = []
    parse = Parser.parse

    def counted(self: Parser, raw_tokens: Any, sql: str | None = None) -> Any:
        if not threading.current_thread().name.startswith("nlsql-"):
            seen.append(sql or "")
        return parse(self, raw_tokens, sql)

    monkeypatch.setattr(Parser, "parse", counted)
    yield seen


def _snapshot(session: Session, connection_id: str, settings: Settings) -> SchemaSnapshot:
    connection = session.get(DatabaseConnection, connection_id)
    assert connection is not None
    return schema_cache.read_snapshot(connection, settings=settings)


def test_an_offline_ask_parses_its_sql_once(
    client: TestClient, session: Session, settings: Settings, parses: list[str]
) -> None:
    caller = make_caller(session, settings)
    created = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    ask = f"/api/v1/chat/sessions/{created.json()['id']}/ask"
    # The first ask introspects and caches the schema; the engine loads what it loads once.
    first = client.post(ask, json={"question": QUESTIONS[0]}, headers=caller.headers)
    assert first.status_code == 200, first.text
    for question in QUESTIONS:
        parses.clear()
        response = client.post(ask, json={"question": question}, headers=caller.headers)
        assert response.status_code == 200, response.text
        assert response.json()["generator"] == "builtin"
        assert len(parses) == 1, (question, parses)


def test_the_guard_answers_the_same_from_the_engines_tree_as_from_the_text(
    session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    snapshot = _snapshot(session, caller.connection_id, settings)
    generator = BuiltinGenerator()
    for question in QUESTIONS:
        generation = generator.generate(
            GenerationRequest(question=question, schema=snapshot, dialect="sqlite", row_cap=1000)
        )
        assert isinstance(generation.parsed, ParsedSql), question
        from_text = guard_sql(generation.sql, snapshot=snapshot, row_cap=1001, shown_row_cap=1000)
        from_tree = guard_sql(
            generation.sql,
            snapshot=snapshot,
            row_cap=1001,
            shown_row_cap=1000,
            parsed=generation.parsed,
        )
        assert from_tree == from_text, question
        assert generation.parsed.statement is None  # taken by the guard


def test_the_guard_takes_a_handed_tree_only_for_its_own_text_and_once(
    session: Session, settings: Settings, parses: list[str]
) -> None:
    caller = make_caller(session, settings)
    snapshot = _snapshot(session, caller.connection_id, settings)
    counted = "SELECT COUNT(*) FROM orders"
    other = "SELECT name FROM customers"

    parsed = parse_sql(counted, "sqlite")
    parses.clear()
    # Other text, or another dialect: the guard parses what it was given.
    assert guard_sql(other, snapshot=snapshot, row_cap=10, parsed=parsed).tables == ["customers"]
    assert guard_sql(counted, snapshot=snapshot, dialect="postgresql", row_cap=10, parsed=parsed)
    assert len(parses) == 2
    # Its own text (stripped as the guard strips it): taken, no parse.
    assert guard_sql(f"  {counted}\n", snapshot=snapshot, row_cap=10, parsed=parsed).tables == [
        "orders"
    ]
    assert len(parses) == 2
    # Taken once: the same text again is parsed afresh and capped the same way.
    again = guard_sql(counted, snapshot=snapshot, row_cap=10, parsed=parsed)
    assert len(parses) == 3
    assert again.sql == "SELECT COUNT(*) FROM orders LIMIT 10" and again.limit_applied


@pytest.mark.parametrize(
    ("sql", "rule"),
    [
        ("DELETE FROM orders", "read_only_statement"),
        ("SELECT 1; SELECT 2", "single_statement"),
        ("SELECT name FROM sqlite_master", "catalog_access"),
        ("SELECT * FROM no_such_table", "unknown_table"),
    ],
)
def test_a_handed_tree_is_refused_like_its_text(
    session: Session, settings: Settings, sql: str, rule: str
) -> None:
    caller = make_caller(session, settings)
    snapshot = _snapshot(session, caller.connection_id, settings)
    for parsed in (None, parse_sql(sql, "sqlite")):
        with pytest.raises(GuardRefused) as refused:
            guard_sql(sql, snapshot=snapshot, row_cap=10, parsed=parsed)
        assert refused.value.details["rule"] == rule
