"""A rated answer becomes a verified example and a golden question as the query it stands
for, not as its first screenful: the platform's row cap (`LIMIT <cap>` shown, `LIMIT <cap + 1>`
executed) is taken out, the question's own LIMIT ("top 3") is kept. Before, a golden question
made from a truncated answer kept `LIMIT 1001`, and an evaluation of the very same query over
all its rows was judged wrong."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from backend.nl2sql.row_cap import without_row_cap
from tests.chat.conftest import Caller
from tests.evaluations.conftest import base, wait_for_run


def _ask_and_rate(client: TestClient, caller: Caller, session_id: str, question: str) -> Any:
    asked = client.post(
        f"/api/v1/chat/sessions/{session_id}/ask",
        json={"question": question},
        headers=caller.headers,
    )
    assert asked.status_code == 200, asked.text
    rated = client.post(
        f"/api/v1/chat/messages/{asked.json()['message_id']}/feedback",
        json={"rating": 5},
        headers=caller.headers,
    )
    assert rated.status_code == 201, rated.text
    return asked.json()


def test_a_truncated_rated_answer_is_golden_and_an_example_without_the_row_cap(
    client: TestClient, caller: Caller
) -> None:
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()
    listed = _ask_and_rate(client, caller, chat["id"], "list the order items")
    assert listed["truncated"] is True  # more rows than the cap: the gold must not stop there
    top = _ask_and_rate(client, caller, chat["id"], "top 3 products by price")
    assert "LIMIT 3" in top["sql"].upper()

    examples = client.get(f"{base(caller)}/examples", headers=caller.headers)
    assert examples.status_code == 200, examples.text
    by_question = {e["question"]: e["sql"] for e in examples.json()["items"]}
    assert "LIMIT" not in by_question["list the order items"].upper()
    assert "LIMIT 3" in by_question["top 3 products by price"].upper()

    imported = client.post(
        f"{base(caller)}/golden-set/import", json={"source": "answers"}, headers=caller.headers
    )
    assert imported.status_code == 201, imported.text
    golden = {q["question"]: q for q in imported.json()["added"]}
    assert "LIMIT" not in golden["list the order items"]["sql"].upper()
    assert "LIMIT 3" in golden["top 3 products by price"]["sql"].upper()

    started = client.post(
        f"{base(caller)}/evaluations",
        json={"golden_ids": [golden["list the order items"]["id"]]},
        headers=caller.headers,
    )
    assert started.status_code == 202, started.text
    run = wait_for_run(client, caller, started.json()["id"])
    assert run["status"] == "succeeded", run
    assert (run["right"], run["wrong"]) == (1, 0), run  # was wrong: 1001 gold rows vs all


def test_only_a_limit_of_the_cap_is_taken_out() -> None:
    cap = 1000
    assert without_row_cap("SELECT a FROM t LIMIT 1001", dialect="sqlite", row_cap=cap) == (
        "SELECT a FROM t"
    )
    assert without_row_cap("SELECT a FROM t LIMIT 1000", dialect="postgresql", row_cap=cap) == (
        "SELECT a FROM t"
    )
    for kept in (
        "SELECT a FROM t ORDER BY a DESC LIMIT 5",
        "SELECT a FROM t LIMIT 1000 OFFSET 20",
        "SELECT a FROM t LIMIT 999",
        "SELECT a FROM t; SELECT b FROM u",
        "not sql at all (",
    ):
        assert without_row_cap(kept, dialect="sqlite", row_cap=cap) == kept


def test_long_sql_loses_its_cap_too_but_is_not_kept_in_the_cache() -> None:
    """The process keeps short answers' SQL with the cap taken out; a long one is parsed each
    time, so recorded SQL of any size cannot grow the cache past its bound."""
    from backend.nl2sql import row_cap

    columns = ", ".join(f"c{i}" for i in range(2_000))
    long_sql = f"SELECT {columns} FROM t LIMIT 1000"
    assert len(long_sql) > row_cap.WITHOUT_ROW_CAP_CACHED_CHARS
    before = row_cap._cached_without_row_cap.cache_info().currsize
    stripped = without_row_cap(long_sql, dialect="sqlite", row_cap=1000)
    assert "LIMIT" not in stripped and stripped.startswith("SELECT c0, c1")
    assert row_cap._cached_without_row_cap.cache_info().currsize == before
    short = without_row_cap("SELECT kept FROM t LIMIT 1001", dialect="sqlite", row_cap=1000)
    assert short == "SELECT kept FROM t"
    assert row_cap._cached_without_row_cap.cache_info().currsize == min(
        before + 1, row_cap.WITHOUT_ROW_CAP_CACHE_ENTRIES
    )
