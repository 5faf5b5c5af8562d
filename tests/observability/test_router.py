"""The analytics API: own rows for users, anyone's for admins, filters, pages, CSV, summaries."""

from __future__ import annotations

import csv
import io
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from backend.observability import recorder
from backend.observability.models import AuditLog, Event, QueryAnalytics
from tests.observability.conftest import Account, MakeAccount

NOW = datetime.now(UTC).replace(microsecond=0)


def _row(user_id: str | None, **overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "query_id": str(uuid.uuid4()),
        "user_id": user_id,
        "question": "how many orders",
        "sql_query": "SELECT count(*) FROM orders",
        "execution_time": 10.0,
        "row_count": 1,
        "success": True,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "timestamp": NOW - timedelta(hours=1),
        "created_at": NOW,
        "source": "ask",
    }
    row.update(overrides)
    if "total_tokens" not in overrides:
        row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    return row


def _insert(session: Session, rows: list[dict[str, Any]]) -> None:
    session.execute(insert(QueryAnalytics), rows)
    session.commit()


def test_a_viewer_sees_only_their_own_rows(
    client: TestClient, session: Session, make_account: MakeAccount
) -> None:
    alice, bob = make_account(), make_account()
    _insert(session, [_row(alice.id, question="alice asks"), _row(bob.id, question="bob asks")])

    body = client.get("/api/v1/analytics/queries", headers=alice.headers).json()
    assert [item["question"] for item in body["items"]] == ["alice asks"]
    assert body["next_cursor"] is None

    denied = client.get(
        "/api/v1/analytics/queries", params={"user_id": bob.id}, headers=alice.headers
    )
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "forbidden"


def test_an_admin_sees_everyone_and_may_filter_by_user(
    client: TestClient, session: Session, admin_account: Account, viewer_account: Account
) -> None:
    _insert(session, [_row(viewer_account.id, question="viewer asks"), _row(admin_account.id)])
    everyone = client.get("/api/v1/analytics/queries", headers=admin_account.headers).json()
    assert len(everyone["items"]) == 2
    only = client.get(
        "/api/v1/analytics/queries",
        params={"user_id": viewer_account.id},
        headers=admin_account.headers,
    ).json()
    assert [i["question"] for i in only["items"]] == ["viewer asks"]


def test_analytics_need_credentials(client: TestClient) -> None:
    response = client.get("/api/v1/analytics/queries")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_filters_narrow_the_rows(
    client: TestClient, session: Session, viewer_account: Account
) -> None:
    _insert(
        session,
        [
            _row(viewer_account.id, question="revenue by month", success=True, source="ask"),
            _row(
                viewer_account.id,
                question="broken one",
                success=False,
                error_message="no such column",
                source="sql",
            ),
            _row(viewer_account.id, question="old 100% one", timestamp=NOW - timedelta(days=40)),
        ],
    )

    def questions(**params: Any) -> list[str]:
        response = client.get(
            "/api/v1/analytics/queries", params=params, headers=viewer_account.headers
        )
        assert response.status_code == 200, response.text
        return sorted(i["question"] for i in response.json()["items"])

    assert questions(success=False) == ["broken one"]
    assert questions(source="ask") == ["old 100% one", "revenue by month"]
    assert questions(q="REVENUE") == ["revenue by month"]
    assert questions(q="100%") == ["old 100% one"]
    assert questions(q="%") == ["old 100% one"]
    assert questions(since=(NOW - timedelta(days=2)).isoformat()) == [
        "broken one",
        "revenue by month",
    ]
    assert questions(until=(NOW - timedelta(days=39)).isoformat()) == ["old 100% one"]


def test_cursor_pages_cover_every_row_once_newest_first(
    client: TestClient, session: Session, viewer_account: Account
) -> None:
    # Equal timestamps in pairs, so the cursor must break ties by id.
    rows = [
        _row(viewer_account.id, question=f"q{i:02d}", timestamp=NOW - timedelta(minutes=i // 2))
        for i in range(23)
    ]
    _insert(session, rows)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 5}
        if cursor:
            params["cursor"] = cursor
        body = client.get(
            "/api/v1/analytics/queries", params=params, headers=viewer_account.headers
        ).json()
        seen += [i["question"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 5
    assert sorted(seen) == sorted(r["question"] for r in rows)
    assert len(seen) == len(set(seen))
    stamps = [r["timestamp"] for r in sorted(rows, key=lambda r: r["question"])]
    assert stamps == sorted(stamps, reverse=True)


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "not-a-cursor"}, "invalid_cursor"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}, "invalid_time_range"),
        ({"success": "maybe"}, "validation_error"),
        ({"source": "shell"}, "validation_error"),
        ({"since": "yesterday"}, "validation_error"),
    ],
)
def test_bad_list_parameters_get_a_clear_error(
    client: TestClient, viewer_account: Account, params: dict[str, Any], code: str
) -> None:
    response = client.get(
        "/api/v1/analytics/queries", params=params, headers=viewer_account.headers
    )
    assert response.status_code in (400, 422)
    assert response.json()["error"]["code"] == code


def test_csv_export_streams_the_filtered_rows_and_is_audited(
    client: TestClient, session: Session, viewer_account: Account, make_account: MakeAccount
) -> None:
    other = make_account()
    _insert(
        session,
        [
            _row(viewer_account.id, question='=HYPERLINK("http://evil")'),
            _row(viewer_account.id, question="plain, with comma"),
            _row(other.id, question="not mine"),
        ],
    )
    response = client.get("/api/v1/analytics/queries/export", headers=viewer_account.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    records = list(csv.DictReader(io.StringIO(response.text)))
    assert sorted(r["question"] for r in records) == [
        '\'=HYPERLINK("http://evil")',
        "plain, with comma",
    ]
    assert {r["user_id"] for r in records} == {viewer_account.id}

    session.expire_all()
    audit = session.scalars(select(AuditLog).where(AuditLog.action == "query.export")).one()
    assert (audit.user_id, audit.resource_type) == (viewer_account.id, "query_analytics")
    assert audit.new_values == {"format": "csv", "filters": {"user_id": viewer_account.id}}
    assert session.scalars(select(Event.event_type)).all() == ["exported"]


def test_summary_by_day_counts_rates_percentiles_tokens_and_cost(
    client: TestClient, session: Session, viewer_account: Account
) -> None:
    day1 = NOW.replace(hour=10) - timedelta(days=3)
    day2 = NOW.replace(hour=10) - timedelta(days=2)
    times1 = [5.0, 10.0, 20.0, 40.0]
    times2 = [100.0, 300.0]
    rows = [
        _row(
            viewer_account.id,
            timestamp=day1 + timedelta(minutes=i),
            execution_time=t,
            prompt_tokens=100,
            completion_tokens=10,
            llm_model="m1",
            llm_cost_estimate=0.01,
            success=i != 0,
        )
        for i, t in enumerate(times1)
    ]
    rows += [
        _row(
            viewer_account.id,
            timestamp=day2 + timedelta(minutes=i),
            execution_time=t,
            llm_model="m2",
        )
        for i, t in enumerate(times2)
    ]
    rows.append(_row(viewer_account.id, timestamp=day2, execution_time=None, success=False))
    rows.append(_row(viewer_account.id, timestamp=NOW - timedelta(days=45)))  # outside the window
    _insert(session, rows)

    response = client.get("/api/v1/analytics/summary", headers=viewer_account.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["group_by"] == "day"
    first, second = body["groups"]
    assert first["key"] == day1.date().isoformat()
    assert (first["count"], first["success_count"], first["success_rate"]) == (4, 3, 0.75)
    assert first["p50_execution_time_ms"] == pytest.approx(statistics.median(times1))
    assert first["p95_execution_time_ms"] == pytest.approx(
        statistics.quantiles(times1, n=20, method="inclusive")[-1]
    )
    assert (first["prompt_tokens"], first["completion_tokens"], first["total_tokens"]) == (
        400,
        40,
        440,
    )
    assert first["cost_usd"] == pytest.approx(0.04)
    assert second["key"] == day2.date().isoformat()
    assert (second["count"], second["failure_count"]) == (3, 1)
    assert second["p50_execution_time_ms"] == pytest.approx(200.0)
    totals = body["totals"]
    assert (totals["count"], totals["success_count"]) == (7, 5)
    assert totals["p50_execution_time_ms"] == pytest.approx(statistics.median(times1 + times2))
    assert totals["avg_execution_time_ms"] == pytest.approx(
        statistics.mean(times1 + times2), abs=1e-3
    )


def test_summary_groups_by_model_user_and_connection(
    client: TestClient, session: Session, admin_account: Account, viewer_account: Account
) -> None:
    _insert(
        session,
        [
            _row(viewer_account.id, llm_model="m1"),
            _row(viewer_account.id, llm_model="m1"),
            _row(admin_account.id, llm_model="m2"),
            _row(admin_account.id, llm_model=None),
        ],
    )

    def keys(group_by: str, headers: dict[str, str]) -> dict[str | None, int]:
        response = client.get(
            "/api/v1/analytics/summary", params={"group_by": group_by}, headers=headers
        )
        assert response.status_code == 200, response.text
        return {g["key"]: g["count"] for g in response.json()["groups"]}

    assert keys("model", admin_account.headers) == {"m1": 2, "m2": 1, None: 1}
    assert keys("user", admin_account.headers) == {viewer_account.id: 2, admin_account.id: 2}
    assert keys("user", viewer_account.headers) == {viewer_account.id: 2}
    assert keys("connection", viewer_account.headers) == {None: 2}
    bad = client.get(
        "/api/v1/analytics/summary", params={"group_by": "week"}, headers=viewer_account.headers
    )
    assert bad.status_code == 422


def test_summary_of_an_empty_window_is_zeroes(client: TestClient, viewer_account: Account) -> None:
    body = client.get("/api/v1/analytics/summary", headers=viewer_account.headers).json()
    assert body["groups"] == []
    assert body["totals"]["count"] == 0
    assert body["totals"]["success_rate"] is None


def test_recorder_rows_show_up_in_the_api(
    client: TestClient, app: FastAPI, viewer_account: Account
) -> None:
    with app.state.session_factory() as s:
        recorder.query(
            s,
            query_id="q-api",
            user_id=viewer_account.id,
            source="template",
            success=False,
            error_message="timeout",
            execution_time_ms=15000.0,
        )
        s.commit()
    item = client.get("/api/v1/analytics/queries", headers=viewer_account.headers).json()["items"][
        0
    ]
    assert item["query_id"] == "q-api"
    assert (item["success"], item["error_message"], item["execution_time_ms"]) == (
        False,
        "timeout",
        15000.0,
    )


def test_summary_of_rows_without_timings_has_no_percentiles(
    client: TestClient, session: Session, viewer_account: Account
) -> None:
    _insert(session, [_row(viewer_account.id, execution_time=None, success=False, llm_model=None)])
    for group_by in ("day", "model"):
        response = client.get(
            "/api/v1/analytics/summary",
            params={"group_by": group_by},
            headers=viewer_account.headers,
        )
        assert response.status_code == 200, response.text
        (group,) = response.json()["groups"]
        assert (group["count"], group["p50_execution_time_ms"], group["success_rate"]) == (
            1,
            None,
            0.0,
        )
