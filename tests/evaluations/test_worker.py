"""An evaluation on the PostgreSQL queue, run by a real `nlsql worker` process; a worker lost
mid-evaluation leaves a failed run (never run twice), its outcomes so far kept."""

from __future__ import annotations

import json
import signal
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.core.config import Settings
from backend.evaluations.models import EvaluationResult
from backend.main import create_app
from tests.chat.conftest import Caller
from tests.evaluations.conftest import GOLDEN, base, upload, wait_for_run
from tests.jobs import test_workers as worker_tests
from tests.jobs.test_workers import Workers
from tests.nl2sql.provider_server import ProviderServer, openai_reply

pytestmark = pytest.mark.postgres

# The worker tests' fixtures: a PostgreSQL platform database of its own, no in-process jobs.
pg_url = worker_tests.pg_url
server = worker_tests.server
settings = worker_tests.settings
session = worker_tests.session
caller = worker_tests.caller
workers = worker_tests.workers


def test_a_worker_process_runs_an_evaluation_to_its_end(
    settings: Settings, session: Session, caller: Caller, workers: Workers
) -> None:
    with TestClient(create_app(settings)) as client:
        assert upload(client, caller, json.dumps(GOLDEN)).status_code == 201
        started = client.post(f"{base(caller)}/evaluations", json={}, headers=caller.headers)
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        time.sleep(0.5)
        # No worker yet: the run waits in the queue.
        waiting = client.get(f"{base(caller)}/evaluations/{run_id}", headers=caller.headers)
        assert waiting.json()["status"] == "queued"
        workers.start()
        done = wait_for_run(client, caller, run_id)
    assert done["status"] == "succeeded", done
    assert (done["right"], done["wrong"], done["declined"], done["errors"]) == (2, 1, 1, 0)
    assert "evaluation" in workers.logs()


def test_a_worker_lost_mid_evaluation_fails_the_run_once(
    settings: Settings,
    session: Session,
    caller: Caller,
    workers: Workers,
    server: ProviderServer,
) -> None:
    reply = openai_reply("```sql\nSELECT COUNT(*) FROM customers\n```")
    reply.delay_seconds = 20
    server.add(reply)
    with TestClient(create_app(settings)) as client:
        assert upload(client, caller, json.dumps(GOLDEN)).status_code == 201
        started = client.post(
            f"{base(caller)}/evaluations", json={"generator": "openai"}, headers=caller.headers
        )
        assert started.status_code == 202, started.text
        run_id = started.json()["id"]
        worker = workers.start()
        deadline = time.monotonic() + 30
        while not server.requests:
            assert time.monotonic() < deadline, "the worker never called the LLM"
            time.sleep(0.05)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        workers.start()
        done = wait_for_run(client, caller, run_id, timeout=60)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "worker_lost"
    assert len(server.requests) == 1
    stored = session.scalar(
        select(func.count()).select_from(EvaluationResult).where(EvaluationResult.run_id == run_id)
    )
    assert stored == 0
