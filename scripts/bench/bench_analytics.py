"""Benchmarks of recording and review.

1. `GET /api/v1/analytics/summary` over a 30-day window of 1,000,000 `query_analytics` rows, on
   SQLite and on a PostgreSQL this script starts (tests/support/postgres_server.py).
2. The request-path cost of recording: a stand-in ask (run a SQL query on the demo database,
   write the question and answer chat messages, then record its analytics row, event and stage
   timings, with the latency middleware on) versus the same request with recording off, and
   with only the batched metrics on. Reported as ratios of medians. The route is a stand-in
   for the ask (the pipeline has no switch to turn recording off); it does the same database
   work around the SQL.

Usage: python scripts/bench/bench_analytics.py [--rows 1000000] [--days 365] [--repeat 7]
       [--backends sqlite,postgresql] [--requests 300] [--skip-summary] [--skip-recording]
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from cryptography.fernet import Fernet  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from pydantic import SecretStr  # noqa: E402
from signin import bearer_headers  # noqa: E402
from sqlalchemy import Engine, create_engine, text  # noqa: E402

from backend.auth.deps import CurrentUser  # noqa: E402
from backend.chat.models import ChatMessage, ChatSession  # noqa: E402
from backend.connections.executor import execute_query, open_sqlite_read_only  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.context import ClientContextDep  # noqa: E402
from backend.core.db import SessionDep  # noqa: E402
from backend.core.migrations import upgrade_to_head  # noqa: E402
from backend.demo import DEMO_DB_PATH  # noqa: E402
from backend.main import create_app  # noqa: E402
from backend.observability import recorder  # noqa: E402
from backend.observability.event_types import EventType  # noqa: E402
from tests.support import postgres_server  # noqa: E402

JWT_SECRET = "bench-secret-" + "x" * 40
USERS = 50
CONNECTIONS = 20
MODELS = ["builtin", "gpt-4o-mini", "gpt-4o", "claude-3-5-haiku", "llama-3-70b"]
COLUMNS = (
    "query_id",
    "user_id",
    "question",
    "sql_query",
    "execution_time",
    "row_count",
    "success",
    "error_message",
    "chart_type",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "llm_model",
    "llm_cost_estimate",
    "timestamp",
    "created_at",
    "connection_id",
    "source",
    "generator",
)
ASK_SQL = """
SELECT c.first_name || ' ' || c.last_name AS customer, ROUND(SUM(p.amount), 2) AS revenue
FROM customers c JOIN orders o ON o.customer_id = c.id JOIN payments p ON p.order_id = o.id
GROUP BY c.id ORDER BY revenue DESC LIMIT 5
"""


def _settings(url: str, data_dir: Path, *, record: bool = True) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=url,
        jwt_secret=SecretStr(JWT_SECRET),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=False,
        record_request_metrics=record,
        _env_file=None,
    )


@contextmanager
def _database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'bench.db'}"
        return
    pg_dir = Path(tempfile.mkdtemp(prefix="nlsql-bench-pg-"))
    try:
        admin_url = postgres_server.start(pg_dir)
        engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("CREATE DATABASE bench"))
        engine.dispose()
        yield admin_url.rsplit("/", 1)[0] + "/bench"
    finally:
        postgres_server.stop(pg_dir)
        shutil.rmtree(pg_dir, ignore_errors=True)


def _seed_owners(engine: Engine) -> tuple[list[str], list[str]]:
    now = datetime.now(UTC)
    users = [str(uuid.uuid4()) for _ in range(USERS)]
    connections = [str(uuid.uuid4()) for _ in range(CONNECTIONS)]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (id, email, password_hash, full_name, role, is_active,"
                " token_usage, created_at) VALUES (:id, :email, 'x', 'Bench', :role, true, 0, :now)"
            ),
            [
                {
                    "id": u,
                    "email": f"u{i}@bench.test",
                    "role": "admin" if i == 0 else "viewer",
                    "now": now,
                }
                for i, u in enumerate(users)
            ],
        )
        conn.execute(
            text(
                "INSERT INTO database_connections (id, user_id, connection_name, db_type, db_name,"
                " is_active, created_at) VALUES (:id, :user_id, :name, 'sqlite', 'x', true, :now)"
            ),
            [
                {"id": c, "user_id": users[i % USERS], "name": f"c{i}", "now": now}
                for i, c in enumerate(connections)
            ],
        )
    return users, connections


def _rows(
    count: int, days: int, users: list[str], connections: list[str]
) -> Iterator[tuple[Any, ...]]:
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)
    span = days * 86400
    for i in range(count):
        ok = rng.random() < 0.9
        model = MODELS[i % len(MODELS)]
        prompt = 0 if model == "builtin" else rng.randint(200, 2000)
        completion = 0 if model == "builtin" else rng.randint(20, 300)
        # Chronological, as analytics rows arrive in production (ids grow with time).
        stamp = now - timedelta(seconds=span * (1 - (i + rng.random()) / count))
        yield (
            str(uuid.UUID(int=rng.getrandbits(128))),
            users[i % len(users)],
            "top customers by revenue",
            "SELECT 1",
            rng.lognormvariate(2.5, 1.0),
            rng.randint(0, 1000) if ok else None,
            ok,
            None if ok else "no such column: x",
            "bar",
            prompt,
            completion,
            prompt + completion,
            model,
            (prompt * 0.00015 + completion * 0.0006) / 1000 if prompt else None,
            stamp,
            stamp,
            connections[i % len(connections)],
            "ask",
            "builtin" if model == "builtin" else "openai",
        )


def _fill(engine: Engine, rows: int, days: int) -> float:
    users, connections = _seed_owners(engine)
    started = time.perf_counter()
    raw = engine.raw_connection()
    try:
        if engine.dialect.name == "sqlite":
            placeholders = ",".join("?" * len(COLUMNS))
            insert_sql = (
                f"INSERT INTO query_analytics ({','.join(COLUMNS)}) VALUES ({placeholders})"  # noqa: S608
            )
            cursor = raw.cursor()
            fmt = "%Y-%m-%d %H:%M:%S.%f"
            batch: list[tuple[Any, ...]] = []
            for row in _rows(rows, days, users, connections):
                batch.append((*row[:14], row[14].strftime(fmt), row[15].strftime(fmt), *row[16:]))
                if len(batch) == 50_000:
                    cursor.executemany(
                        insert_sql,
                        batch,
                    )
                    batch.clear()
            if batch:
                cursor.executemany(
                    insert_sql,
                    batch,
                )
            raw.commit()
            cursor.execute("ANALYZE")
        else:
            cursor = raw.cursor()
            with cursor.copy(f"COPY query_analytics ({','.join(COLUMNS)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in _rows(rows, days, users, connections):
                    copy.write_row(
                        (
                            *row[:14],
                            row[14].replace(tzinfo=UTC),
                            row[15].replace(tzinfo=UTC),
                            *row[16:],
                        )
                    )
            raw.commit()
            cursor.execute("ANALYZE query_analytics")
            raw.commit()
    finally:
        raw.close()
    return time.perf_counter() - started


def _time(call: Callable[[], Any], repeat: int) -> list[float]:
    call()  # warm caches and the connection pool
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def bench_summary(backend: str, rows: int, days: int, repeat: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="nlsql-bench-"))
    try:
        with _database(backend, workdir) as url:
            upgrade_to_head(url)
            engine = create_engine(url)
            fill_s = _fill(engine, rows, days)
            with engine.connect() as conn:
                admin_id = conn.execute(
                    text("SELECT id FROM users WHERE role='admin'")
                ).scalar_one()
                viewer_id = conn.execute(
                    text("SELECT id FROM users WHERE role='viewer' ORDER BY id LIMIT 1")
                ).scalar_one()
                since = datetime.now(UTC) - timedelta(days=30)
                in_window = conn.execute(
                    text("SELECT count(*) FROM query_analytics WHERE timestamp >= :s"),
                    {
                        "s": since
                        if backend == "postgresql"
                        else since.strftime("%Y-%m-%d %H:%M:%S.%f")
                    },
                ).scalar_one()
            engine.dispose()
            print(
                f"\n[{backend}] filled {rows:,} rows over {days} days in {fill_s:.1f}s; "
                f"{in_window:,} rows in the 30-day window"
            )
            app = create_app(_settings(url, workdir))
            with TestClient(app) as client:
                for label, user_id, params in (
                    ("admin, all users, group_by=day", admin_id, {"group_by": "day"}),
                    ("admin, all users, group_by=model", admin_id, {"group_by": "model"}),
                    ("admin, all users, group_by=user", admin_id, {"group_by": "user"}),
                    ("one viewer's rows, group_by=day", viewer_id, {"group_by": "day"}),
                ):
                    headers = bearer_headers(_settings(url, workdir), user_id)

                    def call(
                        params: dict[str, str] = params, headers: dict[str, str] = headers
                    ) -> Any:
                        response = client.get(
                            "/api/v1/analytics/summary", params=params, headers=headers
                        )
                        if response.status_code != 200:
                            raise RuntimeError(response.text)
                        return response.json()

                    body = call()
                    samples = _time(call, repeat)
                    print(
                        f"  GET /analytics/summary 30 days, {label}: "
                        f"median {statistics.median(samples):.0f} ms "
                        f"(min {min(samples):.0f}, max {max(samples):.0f}, n={repeat}; "
                        f"{body['totals']['count']:,} rows, {len(body['groups'])} groups)"
                    )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


MODES = ("off", "metrics", "full")
"""off: nothing recorded; metrics: latency middleware + batched stage timings only; full: also
the analytics row and the event, written in the request's transaction."""


def _ask_app(url: str, data_dir: Path, *, mode: str) -> FastAPI:
    """The real app plus one benchmark-only route that does what an ask does around the SQL."""
    app = create_app(_settings(url, data_dir, record=mode != "off"))
    target = open_sqlite_read_only(DEMO_DB_PATH)
    sequence = itertools.count(1)
    chat_session_ids: dict[str, str] = {}

    @app.post("/bench/ask")
    def ask(session: SessionDep, user: CurrentUser, context: ClientContextDep) -> dict[str, Any]:
        watch = recorder.Stopwatch()
        with watch.stage("execute"):
            result = execute_query(target, ASK_SQL, row_cap=1000)
        query_id = str(uuid.uuid4())
        # What every ask writes whether or not it records: the question and the answer.
        if user.id not in chat_session_ids:
            chat = ChatSession(user_id=user.id, title="bench")
            session.add(chat)
            session.flush()
            chat_session_ids[user.id] = chat.id
        for kind in ("user", "assistant"):
            session.add(
                ChatMessage(
                    session_id=chat_session_ids[user.id],
                    message_type=kind,
                    content="top 5 customers by revenue",
                    query_id=query_id,
                    sql_query=ASK_SQL if kind == "assistant" else None,
                    query_result={"rows": result.rows} if kind == "assistant" else None,
                    sequence_number=next(sequence),
                )
            )
        session.flush()
        if mode == "full":
            with watch.stage("record"):
                recorder.query(
                    session,
                    query_id=query_id,
                    user_id=user.id,
                    source="ask",
                    success=True,
                    question="top 5 customers by revenue",
                    sql_query=ASK_SQL,
                    execution_time_ms=result.execution_time_ms,
                    row_count=result.row_count,
                    chart_type="bar",
                    generator="builtin",
                )
                recorder.event(
                    session,
                    event_type=EventType.ASKED,
                    user_id=user.id,
                    context=context,
                    data={"query_id": query_id},
                )
        if mode != "off":
            recorder.record_stage_timings(session, timings_ms=watch.timings_ms, query_id=query_id)
        return {"query_id": query_id, "rows": result.rows, "row_count": result.row_count}

    return app


def _interleaved(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median ms per call, taking one sample of each per round in a shuffled order, so drift
    on the shared machine (other processes, the writers' flushes) hits every side alike."""
    rng = random.Random(11)
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(10):
            call()
    for _ in range(rounds):
        order = list(calls)
        rng.shuffle(order)
        for name in order:
            started = time.perf_counter()
            calls[name]()
            samples[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in samples.items()}


def bench_recording(backend: str, requests: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="nlsql-bench-"))
    try:
        with _database(backend, workdir) as url:
            upgrade_to_head(url)
            engine = create_engine(url)
            users, _ = _seed_owners(engine)
            engine.dispose()
            headers = bearer_headers(_settings(url, workdir), users[0])
            apps = {mode: _ask_app(url, workdir, mode=mode) for mode in MODES}
            with ExitStack() as stack:
                clients = {mode: stack.enter_context(TestClient(apps[mode])) for mode in MODES}

                def asker(client: TestClient) -> Callable[[], Any]:
                    return lambda: client.post("/bench/ask", headers=headers)

                def prober(client: TestClient) -> Callable[[], Any]:
                    return lambda: client.get("/healthz")

                ask = _interleaved({m: asker(c) for m, c in clients.items()}, requests)
                health = _interleaved({m: prober(clients[m]) for m in ("off", "metrics")}, requests)
                writer = apps["full"].state.metric_writer
                written = (
                    f"{writer.written} written, {writer.pending} pending, {writer.dropped} dropped"
                )
            print(
                f"\n[{backend}] stand-in ask, {requests} requests per mode, median ms: "
                f"off {ask['off']:.2f}, batched metrics only {ask['metrics']:.2f} "
                f"(ratio {ask['metrics'] / ask['off']:.3f}), full recording {ask['full']:.2f} "
                f"(ratio {ask['full'] / ask['off']:.3f}); metric writer of the full app: {written}"
            )
            print(
                f"[{backend}] GET /healthz, latency middleware on {health['metrics']:.3f} ms "
                f"vs off {health['off']:.3f} ms -> ratio {health['metrics'] / health['off']:.3f}"
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--skip-summary", action="store_true")
    parser.add_argument("--skip-recording", action="store_true")
    args = parser.parse_args()
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        if not args.skip_summary:
            bench_summary(backend, args.rows, args.days, args.repeat)
        if not args.skip_recording:
            bench_recording(backend, args.requests)


if __name__ == "__main__":
    main()
