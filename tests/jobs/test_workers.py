"""Jobs on the PostgreSQL queue with real `nlsql worker` processes: a job survives an API
restart, a worker killed mid-job loses nothing and runs nothing twice, two workers never run
one job twice."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.jobs.models import BackgroundJob
from backend.jobs.queue import QUEUE_NAME, JobRuntime
from backend.jobs.run import _claim
from backend.jobs.service import build_app_for
from backend.main import create_app
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import Caller, make_caller
from tests.conftest import create_pg_database, drop_pg_database
from tests.jobs.conftest import ask_job, chat_session, submit_job, wait_for_job
from tests.nl2sql.provider_server import API_KEY, ProviderServer, openai_reply, provider_server

pytestmark = pytest.mark.postgres

NLSQL = str(Path(sys.executable).parent / "nlsql")
SLOW_SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country"


@pytest.fixture
def server() -> Iterator[ProviderServer]:
    with provider_server() as running:
        yield running


@pytest.fixture
def pg_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    url = create_pg_database(pg_admin_url, template=pg_template)
    try:
        yield url
    finally:
        drop_pg_database(pg_admin_url, url)


@pytest.fixture
def settings(pg_url: str, tmp_path: Path, server: ProviderServer) -> Settings:
    from cryptography.fernet import Fernet

    return Settings(
        data_dir=tmp_path,
        database_url=pg_url,
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=False,
        jobs_in_process=False,
        prune_cron="",
        openai_base_url=server.base_url,
        openai_api_key=SecretStr(API_KEY),
        _env_file=None,
    )


@pytest.fixture
def session(settings: Settings) -> Iterator[Session]:
    app = create_app(settings)
    db: Session = app.state.session_factory()
    try:
        yield db
    finally:
        db.close()
        app.state.engine.dispose()


@pytest.fixture
def caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)


class Workers:
    """`nlsql worker` processes started for one test, all stopped at its end."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen[bytes]] = []

    def env(self) -> dict[str, str]:
        s = self.settings
        env = {k: v for k, v in os.environ.items() if not k.startswith("NLSQL_")}
        env.update(
            {
                "NLSQL_DATABASE_URL": str(s.database_url),
                "NLSQL_DATA_DIR": str(s.data_dir),
                "NLSQL_JWT_SECRET": s.jwt_secret_value,
                "NLSQL_FERNET_KEYS": ",".join(k.get_secret_value() for k in s.fernet_keys),
                "NLSQL_OPENAI_BASE_URL": s.openai_base_url,
                "NLSQL_OPENAI_API_KEY": API_KEY,
                "NLSQL_PRUNE_CRON": "",
                "NLSQL_JOBS_CONCURRENCY": "2",
                "NLSQL_JOBS_HEARTBEAT_SECONDS": "0.5",
                "NLSQL_JOBS_STALLED_SECONDS": "2",
                "NLSQL_LOG_FORMAT": "json",
            }
        )
        return env

    def start(self) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"worker-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [NLSQL, "worker"], env=self.env(), stdout=log, stderr=subprocess.STDOUT
        )
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.log_dir.glob("worker-*.log")))


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    running = Workers(settings, tmp_path)
    try:
        yield running
    finally:
        running.stop_all()


def _submit_ask(
    client: TestClient, caller: Caller, chat_id: str, question: str, **body: Any
) -> str:
    return str(
        submit_job(client, caller.headers, **ask_job(chat_id, question), **body).json()["id"]
    )


def _row(session: Session, job_id: str) -> BackgroundJob:
    session.expire_all()
    job = session.get(BackgroundJob, job_id)
    assert job is not None
    return job


def _wait_row(session: Session, job_id: str, statuses: set[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _row(session, job_id).status not in statuses:
        assert time.monotonic() < deadline, f"job {job_id} stayed {_row(session, job_id).status}"
        time.sleep(0.05)


def test_a_job_submitted_before_an_api_restart_is_completed_by_a_worker(
    settings: Settings, session: Session, caller: Caller, workers: Workers
) -> None:
    with TestClient(create_app(settings)) as client:
        chat_id = chat_session(client, caller)
        job_id = _submit_ask(client, caller, chat_id, "how many customers are there?")
    # The API is gone and no worker ran yet: the job waits in the queue.
    assert _row(session, job_id).status == "queued"

    worker = workers.start()
    with TestClient(create_app(settings)) as client:
        done = wait_for_job(client, caller.headers, job_id)
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
    assert done["result"]["rows"]

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0
    lines = [json.loads(line) for line in workers.logs().splitlines() if line.startswith("{")]
    started = [line for line in lines if "started, attempt" in line.get("message", "")]
    assert started and started[0]["job_id"] == job_id and started[0]["level"] == "INFO"
    assert {"time", "level", "logger", "message"} <= set(started[0])


def test_a_worker_killed_mid_job_fails_the_ask_once_and_loses_no_queued_job(
    settings: Settings,
    session: Session,
    caller: Caller,
    workers: Workers,
    server: ProviderServer,
) -> None:
    # The LLM answers after 20 s: the first worker is killed while it waits.
    reply = openai_reply(f"```sql\n{SLOW_SQL}\n```")
    reply.delay_seconds = 20
    server.add(reply)
    with TestClient(create_app(settings)) as client:
        chat_id = chat_session(client, caller)
        slow = _submit_ask(client, caller, chat_id, "customers per country", generator="openai")
        worker = workers.start()
        _wait_row(session, slow, {"running"})
        deadline = time.monotonic() + 20
        while not server.requests:
            assert time.monotonic() < deadline, "the worker never called the LLM"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        queued_after = _submit_ask(client, caller, chat_id, "how many orders are there?")
        assert _row(session, slow).status == "running"

        workers.start()
        lost = wait_for_job(client, caller.headers, slow, timeout=40)
        later = wait_for_job(client, caller.headers, queued_after, timeout=40)

    assert lost["status"] == "failed"
    assert lost["error"]["code"] == "worker_lost"
    assert lost["attempts"] == 1
    assert later["status"] == "succeeded" and later["attempts"] == 1
    # Never run twice: the LLM was asked once, and the lost ask left no second record.
    assert len(server.requests) == 1
    recorded = session.scalar(
        select(func.count())
        .select_from(QueryAnalytics)
        .where(QueryAnalytics.user_id == caller.user_id)
    )
    assert recorded == 1


def test_two_workers_never_run_one_job_twice(
    settings: Settings, session: Session, caller: Caller, workers: Workers
) -> None:
    workers.start()
    workers.start()
    questions = ["how many customers are there?", "how many orders are there?"] * 8
    with TestClient(create_app(settings)) as client:
        chat_ids = [chat_session(client, caller) for _ in questions]
        job_ids = [
            _submit_ask(client, caller, chat_id, question)
            for chat_id, question in zip(chat_ids, questions, strict=True)
        ]
        done = [wait_for_job(client, caller.headers, job_id, timeout=60) for job_id in job_ids]
    assert [d["status"] for d in done] == ["succeeded"] * len(job_ids)
    assert [d["attempts"] for d in done] == [1] * len(job_ids)
    query_ids = {d["result"]["query_id"] for d in done}
    assert len(query_ids) == len(job_ids)
    recorded = session.scalar(
        select(func.count())
        .select_from(QueryAnalytics)
        .where(QueryAnalytics.user_id == caller.user_id)
    )
    assert recorded == len(job_ids)


def test_a_retry_safe_job_of_a_dead_worker_is_run_again_by_another(
    settings: Settings, session: Session, caller: Caller, workers: Workers
) -> None:
    """A schema refresh taken by a worker that then stopped sending heartbeats (as a killed
    one does) goes back to the queue and is completed by the next worker, on attempt 2."""
    with TestClient(create_app(settings)) as client:
        job_id = submit_job(
            client, caller.headers, kind="schema_refresh", connection_id=caller.connection_id
        ).json()["id"]

    app = create_app(settings)
    runtime = JobRuntime(settings, app.state.engine, app.state.session_factory)

    async def take_and_die() -> None:
        queue_app = build_app_for(runtime)
        async with queue_app.open_async():
            worker_id = await queue_app.job_manager.register_worker()
            taken = await queue_app.job_manager.fetch_job(queues=[QUEUE_NAME], worker_id=worker_id)
            assert taken is not None and taken.task_kwargs["job_id"] == job_id

    asyncio.run(take_and_die())
    assert _claim(runtime, job_id) is not None  # the dead worker had started it
    with app.state.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE procrastinate.procrastinate_workers "
                "SET last_heartbeat = now() - interval '1 hour'"
            )
        )
    app.state.engine.dispose()

    workers.start()
    _wait_row(session, job_id, {"succeeded", "failed"}, timeout=40)
    done = _row(session, job_id)
    assert done.status == "succeeded", done.error
    assert done.attempts == 2
    # The row keeps which snapshot the refresh stored (views are derived when the job is read).
    assert done.result is not None and done.result["connection_id"] == caller.connection_id
    assert done.result["last_updated"] and "tables" not in done.result
