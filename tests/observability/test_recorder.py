"""The recorder writes every row faithfully, redacts secrets, chains audits under concurrency."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.context import ClientContext
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.observability.metric_writer import MetricWriter
from backend.observability.models import AuditLog, Event, PerformanceMetric, QueryAnalytics
from backend.observability.recorder import compute_row_hash
from backend.observability.service import verify_audit_chain
from tests.observability.conftest import Account

CONTEXT = ClientContext(ip_address="203.0.113.7", user_agent="pytest-agent", request_id="req-1234")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"password": "hunter2"}, {"password": "***"}),
        ({"db_password": "x", "db_host": "h"}, {"db_password": "***", "db_host": "h"}),
        ({"nested": {"api_key": "k", "ok": 1}}, {"nested": {"api_key": "***", "ok": 1}}),
        ({"items": [{"refresh_token": "t"}]}, {"items": [{"refresh_token": "***"}]}),
        ({"Authorization": "Bearer x"}, {"Authorization": "***"}),
        ({"client_secret": None}, {"client_secret": None}),
        ({"total_tokens": 12, "prompt_tokens": 3}, {"total_tokens": 12, "prompt_tokens": 3}),
    ],
)
def test_redact_replaces_secret_looking_keys_at_any_depth(values: Any, expected: Any) -> None:
    assert recorder.redact(values) == expected


def test_query_records_a_success_with_every_field(
    session: Session, viewer_account: Account
) -> None:
    query_id = str(uuid.uuid4())
    recorder.query(
        session,
        query_id=query_id,
        user_id=viewer_account.id,
        source="ask",
        success=True,
        question="top 5 customers by revenue",
        sql_query="SELECT 1",
        execution_time_ms=12.5,
        row_count=5,
        chart_type="bar",
        prompt_tokens=100,
        completion_tokens=20,
        llm_model="gpt-test",
        llm_cost_estimate=0.0012,
        generator="openai",
    )
    session.commit()
    row = session.scalars(select(QueryAnalytics).where(QueryAnalytics.query_id == query_id)).one()
    assert (row.success, row.row_count, row.chart_type, row.execution_time) == (
        True,
        5,
        "bar",
        12.5,
    )
    assert (row.prompt_tokens, row.completion_tokens, row.total_tokens) == (100, 20, 120)
    assert row.llm_cost_estimate == pytest.approx(0.0012)
    assert (row.llm_model, row.generator, row.user_id) == ("gpt-test", "openai", viewer_account.id)


def test_query_records_a_failure_as_faithfully(session: Session, viewer_account: Account) -> None:
    query_id = str(uuid.uuid4())
    recorder.query(
        session,
        query_id=query_id,
        user_id=viewer_account.id,
        source="sql",
        success=False,
        sql_query="SELECT * FROM nowhere",
        error_message="no such table: nowhere",
        error_code="sql_error",
    )
    session.commit()
    row = session.scalars(select(QueryAnalytics).where(QueryAnalytics.query_id == query_id)).one()
    assert row.success is False
    assert (row.error_message, row.error_code, row.source) == (
        "no such table: nowhere",
        "sql_error",
        "sql",
    )
    assert row.row_count is None


def test_event_carries_the_user_session_and_client(
    session: Session, viewer_account: Account
) -> None:
    sid = str(uuid.uuid4())
    recorder.event(
        session,
        event_type=EventType.ASKED,
        user_id=viewer_account.id,
        context=CONTEXT,
        data={"query_id": "q1", "token": "secret-value"},
        user_session_id=sid,
    )
    session.commit()
    row = session.scalars(select(Event)).one()
    assert (row.event_type, row.session_id, row.ip_address) == ("asked", sid, "203.0.113.7")
    assert row.event_data == {"query_id": "q1", "token": "***"}


def test_audit_keeps_secrets_out_and_links_rows(session: Session, viewer_account: Account) -> None:
    first = recorder.audit(
        session,
        action=AuditAction.CONNECTION_CREATED,
        user_id=viewer_account.id,
        context=CONTEXT,
        resource_type="connection",
        resource_id="c1",
        new_values={"connection_name": "shop", "db_password": "pa55word-in-clear"},
    )
    second = recorder.audit(
        session,
        action=AuditAction.LOGIN_FAILED,
        user_id=None,
        context=CONTEXT,
        success=False,
        error_message="bad credentials",
        new_values={"email": "x@example.com", "password": "guess"},
    )
    session.commit()
    rows = session.scalars(select(AuditLog).order_by(AuditLog.id)).all()
    assert [r.id for r in rows] == [first.id, second.id]
    assert "pa55word-in-clear" not in str(rows[0].new_values)
    assert rows[0].new_values == {"connection_name": "shop", "db_password": "***"}
    assert rows[1].new_values == {"email": "x@example.com", "password": "***"}
    assert (rows[1].success, rows[1].error_message) == (False, "bad credentials")
    assert (rows[0].ip_address, rows[0].user_agent, rows[0].request_id) == (
        "203.0.113.7",
        "pytest-agent",
        "req-1234",
    )
    assert rows[0].prev_hash is None
    assert rows[1].prev_hash == rows[0].row_hash
    assert rows[1].row_hash == compute_row_hash(
        recorder.audit_row_content(rows[1]), rows[0].row_hash
    )


def test_a_rolled_back_audit_row_leaves_no_gap_in_the_chain(app: FastAPI) -> None:
    factory = app.state.session_factory
    with factory() as s:
        recorder.audit(s, action="test.kept", user_id=None)
        s.commit()
    with factory() as s:
        recorder.audit(s, action="test.rolled_back", user_id=None)
        s.rollback()
    with factory() as s:
        recorder.audit(s, action="test.kept_too", user_id=None)
        s.commit()
        report = verify_audit_chain(s)
    assert report.intact and report.checked_rows == 2


def _run_threads(count: int, target: Any) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            target(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_audit_appends_keep_one_unbroken_chain(app: FastAPI) -> None:
    factory = app.state.session_factory
    writers, per_writer = 6, 8

    def append(index: int) -> None:
        for n in range(per_writer):
            with factory() as s:
                # Some work before the audit in the same transaction, like a real request.
                s.execute(select(func.count()).select_from(AuditLog))
                recorder.audit(
                    s, action="test.concurrent", user_id=None, resource_id=f"{index}-{n}"
                )
                s.commit()

    _run_threads(writers, append)
    with factory() as s:
        rows = s.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        report = verify_audit_chain(s)
    assert len(rows) == writers * per_writer
    assert len({r.prev_hash for r in rows}) == len(rows), "two rows claim the same predecessor"
    assert report.intact, report
    assert report.checked_rows == writers * per_writer


def test_concurrent_query_records_leave_exactly_one_row_each(app: FastAPI) -> None:
    factory = app.state.session_factory
    ids = [[str(uuid.uuid4()) for _ in range(10)] for _ in range(6)]

    def record(index: int) -> None:
        for query_id in ids[index]:
            with factory() as s:
                recorder.query(s, query_id=query_id, user_id=None, source="ask", success=True)
                recorder.event(s, event_type=EventType.ASKED, user_id=None, data={"q": query_id})
                s.commit()

    _run_threads(len(ids), record)
    with factory() as s:
        stored = s.scalars(select(QueryAnalytics.query_id)).all()
        events = s.scalar(select(func.count()).select_from(Event))
    assert sorted(stored) == sorted(q for batch in ids for q in batch)
    assert events == 60


def test_metric_writer_batches_and_flushes(app: FastAPI) -> None:
    writer = MetricWriter(app.state.session_factory, batch_size=7)
    for i in range(20):
        writer.enqueue("test_metric", float(i), unit="ms", data={"stage": "generate"})
    assert writer.pending == 20
    assert writer.flush() == 20
    assert writer.pending == 0
    with app.state.session_factory() as s:
        values = s.scalars(
            select(PerformanceMetric.metric_value).where(
                PerformanceMetric.metric_name == "test_metric"
            )
        ).all()
    assert sorted(values) == [float(i) for i in range(20)]
    registry = writer.prometheus.registry
    labels = {"stage": "generate"}
    assert registry.get_sample_value("nlsql_test_metric_seconds_count", labels) == 20
    total = registry.get_sample_value("nlsql_test_metric_seconds_sum", labels)
    assert total == pytest.approx(sum(range(20)) / 1000)


def test_metric_writer_thread_flushes_without_being_asked(app: FastAPI) -> None:
    writer = MetricWriter(app.state.session_factory, flush_interval_seconds=0.05)
    writer.start()
    try:
        writer.enqueue("background_metric", 1.0)
        for _ in range(100):
            if writer.written:
                break
            threading.Event().wait(0.05)
    finally:
        writer.stop()
    assert writer.written == 1


def test_metric_writer_drops_oldest_when_full(app: FastAPI) -> None:
    writer = MetricWriter(app.state.session_factory, max_pending=5)
    for i in range(8):
        writer.enqueue("bounded", float(i))
    assert (writer.pending, writer.dropped) == (5, 3)


def test_stage_timings_go_to_the_registered_writer(app: FastAPI) -> None:
    writer: MetricWriter = app.state.metric_writer
    with app.state.session_factory() as s:
        recorder.record_stage_timings(
            s, timings_ms={"generate": 4.0, "guard": 0.5, "execute": 2.0}, query_id="q-1"
        )
        s.commit()
        assert s.scalar(select(func.count()).select_from(PerformanceMetric)) == 0
    assert writer.pending == 3
    writer.flush()
    with app.state.session_factory() as s:
        rows = s.scalars(select(PerformanceMetric).order_by(PerformanceMetric.id)).all()
    assert [(r.metric_name, r.additional_data) for r in rows] == [
        ("ask_stage_duration", {"stage": "generate", "source": "ask", "query_id": "q-1"}),
        ("ask_stage_duration", {"stage": "guard", "source": "ask", "query_id": "q-1"}),
        ("ask_stage_duration", {"stage": "execute", "source": "ask", "query_id": "q-1"}),
    ]


def test_stage_timings_without_a_writer_are_written_in_the_session(app: FastAPI) -> None:
    recorder.register_metric_writer(app.state.engine, None)
    with app.state.session_factory() as s:
        recorder.record_stage_timings(s, timings_ms={"generate": 1.5})
        s.commit()
        assert s.scalars(select(PerformanceMetric.metric_value)).all() == [1.5]


def test_estimate_llm_cost_uses_the_price_table() -> None:
    table = {"gpt-test": {"prompt": 0.5, "completion": 1.5}}
    cost = recorder.estimate_llm_cost(
        table, model="gpt-test", prompt_tokens=1000, completion_tokens=2000
    )
    assert cost == pytest.approx(3.5)
    assert (
        recorder.estimate_llm_cost(table, model="other", prompt_tokens=1, completion_tokens=1)
        is None
    )


def test_stopwatch_sums_repeated_stages_in_ms() -> None:
    watch = recorder.Stopwatch()
    for _ in range(2):
        with watch.stage("generate"):
            time.sleep(0.01)
    with watch.stage("guard"):
        pass
    assert set(watch.timings_ms) == {"generate", "guard"}
    assert 20.0 <= watch.timings_ms["generate"] < 1000.0
    assert watch.timings_ms["guard"] < watch.timings_ms["generate"]
