"""Callers and helpers for job tests: the demo connection, a chat session, polling a job."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy.orm import Session

from backend.core.config import Settings
from tests.chat.conftest import Caller, make_caller

JOBS = "/api/v1/jobs"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Jobs run inside the API process on both backends (PostgreSQL: the real procrastinate
    queue with an in-process worker), with a quick heartbeat. A worker counts as stalled only
    after a dozen missed heartbeats: on a loaded machine a live worker's loop can lag a few
    seconds, and a live worker taken for dead has its job failed under it."""
    settings.jobs_in_process = True
    settings.jobs_heartbeat_seconds = 0.5
    settings.jobs_stalled_seconds = 6.0
    settings.prune_cron = ""
    return settings


@pytest.fixture
def caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)


@pytest.fixture
def other_caller(session: Session, settings: Settings) -> Caller:
    return make_caller(session, settings)


def chat_session(client: TestClient, caller: Caller) -> str:
    response = client.post(
        "/api/v1/chat/sessions",
        json={"title": "jobs", "connection_id": caller.connection_id},
        headers=caller.headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def wait_for_job(
    client: TestClient, headers: dict[str, str], job_id: str, timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{JOBS}/{job_id}", headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not finish: {body}")
        time.sleep(0.05)


def submit_job(client: TestClient, headers: dict[str, str], **body: Any) -> Response:
    """`POST /jobs` with `body`; the job must be accepted (202)."""
    response = client.post(JOBS, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response


def run_job(
    client: TestClient, headers: dict[str, str], **body: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Submit a job and wait for it: the job as submitted, and as it finished."""
    job: dict[str, Any] = submit_job(client, headers, **body).json()
    return job, wait_for_job(client, headers, job["id"])


def ask_job(chat_id: str, question: str) -> dict[str, Any]:
    """The body of an ask job."""
    return {"kind": "ask", "chat_session_id": chat_id, "question": question}
