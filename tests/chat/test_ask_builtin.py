"""Done-when check: a new user asks the demo database ten varied questions with the default engine.

Each answer is compared with a reference query: every reference column must appear among the
answer's columns with the same multiset of values (numbers to 2 decimals), so an engine may
add columns or order rows differently and still be right. Also: concurrent asks from several
clients leave exactly one analytics row and one event per ask, failures included.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.demo import DEMO_DB_PATH
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller, make_caller

# (question, reference SQL on the demo database)
QUESTIONS = [
    ("How many customers are there?", "SELECT COUNT(*) FROM customers"),
    ("Number of orders per status", "SELECT status, COUNT(*) FROM orders GROUP BY status"),
    ("What is the average unit price of products?", "SELECT AVG(unit_price) FROM products"),
    ("Top 5 products by unit price", "SELECT name FROM products ORDER BY unit_price DESC LIMIT 5"),
    ("Customers in France", "SELECT first_name, last_name FROM customers WHERE country = 'France'"),
    (
        "How many orders were placed in 2023?",
        "SELECT COUNT(*) FROM orders WHERE strftime('%Y', order_date) = '2023'",
    ),
    ("Total payment amount by method", "SELECT method, SUM(amount) FROM payments GROUP BY method"),
    (
        "Products never ordered",
        "SELECT name FROM products WHERE id NOT IN (SELECT product_id FROM order_items)",
    ),
    ("Distinct customer segments", "SELECT DISTINCT segment FROM customers"),
    (
        "Monthly number of orders",
        "SELECT COUNT(*) FROM orders GROUP BY strftime('%Y-%m', order_date)",
    ),
]


def _normal(value: Any) -> Any:
    return round(float(value), 2) if isinstance(value, int | float) else value


def _columns(rows: list[list[Any]] | list[tuple[Any, ...]], width: int) -> list[Counter[Any]]:
    return [Counter(_normal(row[i]) for row in rows) for i in range(width)]


def test_ten_questions_on_the_demo_database_get_correct_answers_with_charts(
    client: TestClient, caller: Caller
) -> None:
    chat = client.post(
        "/api/v1/chat/sessions",
        json={"connection_id": caller.connection_id},
        headers=caller.headers,
    ).json()
    with sqlite3.connect(f"file:{DEMO_DB_PATH}?mode=ro", uri=True) as demo:
        for question, reference in QUESTIONS:
            response = client.post(
                f"/api/v1/chat/sessions/{chat['id']}/ask",
                json={"question": question},
                headers=caller.headers,
            )
            assert response.status_code == 200, (question, response.text)
            body = response.json()
            expected = demo.execute(reference).fetchall()
            assert body["row_count"] == len(expected), (question, body["sql"])
            got = _columns(body["rows"], len(body["columns"]))
            for column in _columns(expected, len(expected[0])):
                assert column in got, (question, body["sql"])
            assert body["generator"] == "builtin"
            assert body["chart_type"] in ("kpi", "line", "bar", "scatter", "table")
            assert body["chart"]["data"] == {"name": "rows"}
            assert len(body["chart"]["usermeta"]["row_fields"]) == len(body["columns"])


def test_concurrent_asks_from_several_clients_leave_one_analytics_row_each(
    client: TestClient, session: Session, settings: Settings
) -> None:
    callers = [make_caller(session, settings) for _ in range(3)]
    chats = {
        c.user_id: client.post(
            "/api/v1/chat/sessions", json={"connection_id": c.connection_id}, headers=c.headers
        ).json()["id"]
        for c in callers
    }
    # Two answerable questions and one the engine declines, per client.
    questions = [q for q, _ in QUESTIONS[:2]] + ["purple elephants dancing quietly"]
    jobs = [(c, q) for c in callers for q in questions]

    def ask(job: tuple[Caller, str]) -> tuple[int, str]:
        caller, question = job
        response = client.post(
            f"/api/v1/chat/sessions/{chats[caller.user_id]}/ask",
            json={"question": question},
            headers=caller.headers,
        )
        body = response.json()
        if response.status_code == 200:
            return response.status_code, body["query_id"]
        return response.status_code, body["error"]["details"]["query_id"]

    with ThreadPoolExecutor(6) as pool:
        outcomes = list(pool.map(ask, jobs))

    assert sorted(status for status, _ in outcomes) == [200] * 6 + [422] * 3
    query_ids = [query_id for _, query_id in outcomes]
    assert len(set(query_ids)) == len(jobs)
    user_ids = [c.user_id for c in callers]
    per_query = dict(
        session.execute(
            select(QueryAnalytics.query_id, func.count())
            .where(QueryAnalytics.user_id.in_(user_ids))
            .group_by(QueryAnalytics.query_id)
        ).all()
    )
    assert per_query == dict.fromkeys(query_ids, 1)
    asked_events = session.scalars(
        select(Event).where(Event.user_id.in_(user_ids), Event.event_type == "asked")
    ).all()
    assert sorted(e.event_data["query_id"] for e in asked_events if e.event_data) == sorted(
        query_ids
    )
