"""Callers, a golden set on the demo connection, and following an evaluation to its end."""

from __future__ import annotations

import time
from typing import Any

from fastapi.testclient import TestClient

from tests.chat.conftest import Caller

# Jobs run inside the API process (PostgreSQL: the real procrastinate queue with an in-process
# worker), as in the job tests.
from tests.jobs.conftest import caller, other_caller, settings

__all__ = ["caller", "other_caller", "settings"]

GOLDEN = [
    # builtin: right
    {"question": "How many customers are there?", "sql": "SELECT COUNT(*) FROM customers"},
    # builtin: right (multiset comparison, gold orders nothing)
    {
        "question": "Number of orders per status",
        "sql": "SELECT COUNT(*) AS n, status FROM orders GROUP BY status",
    },
    # builtin: wrong (the gold counts something else)
    {"question": "How many orders are there?", "sql": "SELECT COUNT(*) FROM customers"},
    # builtin: declined
    {"question": "xyzzy plugh frobnicate", "sql": "SELECT 1 FROM orders LIMIT 1"},
]


def base(caller: Caller) -> str:
    return f"/api/v1/connections/{caller.connection_id}"


def upload(
    client: TestClient,
    caller: Caller,
    content: str,
    kind: str = "json",
    headers: dict[str, str] | None = None,
) -> Any:
    return client.post(
        f"{base(caller)}/golden-set/upload",
        json={"format": kind, "content": content},
        headers=headers or caller.headers,
    )


def wait_for_run(
    client: TestClient, caller: Caller, run_id: str, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"{base(caller)}/evaluations/{run_id}", headers=caller.headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"evaluation {run_id} did not finish: {body}")
        time.sleep(0.05)
