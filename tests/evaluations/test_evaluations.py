"""Evaluations over HTTP: started (a job), followed to the end, listed, results read, two runs
compared, cancelled; another user's connection is 404, a key without the scope 403."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.evaluations.models import EvaluationRun
from backend.jobs.models import BackgroundJob
from backend.nl2sql.engines import registry
from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator
from backend.observability.models import AuditLog, Event
from tests.chat.conftest import STAND_IN, Caller, StandInGenerator, make_api_key_headers
from tests.evaluations.conftest import GOLDEN, base, upload, wait_for_run
from tests.jobs.conftest import JOBS, wait_for_job


@pytest.fixture
def golden_ids(client: TestClient, caller: Caller) -> list[str]:
    response = upload(client, caller, json.dumps(GOLDEN))
    assert response.status_code == 201, response.text
    return [q["id"] for q in response.json()["added"]]


def _start(client: TestClient, caller: Caller, **body: object) -> dict[str, object]:
    response = client.post(f"{base(caller)}/evaluations", json=body, headers=caller.headers)
    assert response.status_code == 202, response.text
    run: dict[str, object] = response.json()
    assert response.headers["location"].endswith(f"/evaluations/{run['id']}")
    return run


def test_an_evaluation_runs_as_a_job_and_reports_each_outcome(
    client: TestClient, session: Session, caller: Caller, golden_ids: list[str]
) -> None:
    layer = client.put(
        f"{base(caller)}/semantic-layer",
        json={"document": {"instructions": ["Counts are of rows."]}, "note": "first"},
        headers=caller.headers,
    )
    assert layer.status_code in (200, 201), layer.text
    run = _start(client, caller, semantic_layer_version=1)
    assert run["status"] in ("queued", "running", "succeeded")
    assert run["total"] == 4 and run["generator"] == "builtin"
    done = wait_for_run(client, caller, str(run["id"]))
    assert done["status"] == "succeeded", done
    assert (done["done"], done["right"], done["wrong"], done["declined"], done["errors"]) == (
        4,
        2,
        1,
        1,
        0,
    )
    assert done["answered"] == 3
    assert done["ex"] == 0.5 and done["precision"] == round(2 / 3, 4)
    assert done["p50_ms"] is not None and done["p95_ms"] >= done["p50_ms"]
    assert done["used_generator"] == "builtin" and done["semantic_layer_version"] == 1

    results = client.get(
        f"{base(caller)}/evaluations/{run['id']}/results?limit=3", headers=caller.headers
    ).json()
    more = client.get(
        f"{base(caller)}/evaluations/{run['id']}/results",
        params={"cursor": results["next_cursor"]},
        headers=caller.headers,
    ).json()
    rows = results["items"] + more["items"]
    assert [r["golden_id"] for r in rows] == golden_ids
    assert [r["outcome"] for r in rows] == ["right", "right", "wrong", "declined"]
    assert rows[0]["predicted_sql"].upper().startswith("SELECT COUNT(*)")
    assert rows[0]["confidence"] is not None and rows[3]["predicted_sql"] is None
    assert rows[3]["error_code"] == "question_not_understood"

    # The job is the platform's, followed like any other; its result is the run's summary.
    job = wait_for_job(client, caller.headers, str(done["job_id"]))
    assert job["kind"] == "evaluation" and job["status"] == "succeeded"
    assert job["result"]["right"] == 2 and job["progress"] == {"stage": "done"}
    with client.stream("GET", f"{JOBS}/{done['job_id']}/events", headers=caller.headers) as stream:
        text = "".join(stream.iter_text())
    assert "event: done" in text

    listed = client.get(f"{base(caller)}/evaluations", headers=caller.headers).json()
    assert [r["id"] for r in listed["items"]] == [run["id"]]
    kinds = set(session.scalars(select(Event.event_type).where(Event.user_id == caller.user_id)))
    assert {"evaluation_started", "evaluation_finished", "job_submitted"} <= kinds
    actions = set(
        session.scalars(select(AuditLog.action).where(AuditLog.user_id == caller.user_id))
    )
    assert "evaluation.start" in actions


class _OrdersOnly(SqlGenerator):
    """Answers only questions about orders (right), declines the rest."""

    name = "orders-only"

    def generate(self, request: GenerationRequest) -> Generation:
        if "per status" in request.question.lower():
            return Generation(
                sql="SELECT status, COUNT(*) FROM orders GROUP BY status", explanation="."
            )
        if "orders" in request.question.lower():
            return Generation(sql="SELECT COUNT(*) FROM customers", explanation=".")
        from backend.nl2sql.engines.base import QuestionNotUnderstood

        raise QuestionNotUnderstood("not about orders", confidence=0.1)


@pytest.fixture
def orders_only() -> Iterator[None]:
    registry.register_generator("orders-only", lambda _settings: _OrdersOnly())
    yield
    registry.unregister_generator("orders-only")


def test_two_runs_compare_question_by_question(
    client: TestClient, caller: Caller, golden_ids: list[str], orders_only: None
) -> None:
    base_run = wait_for_run(client, caller, str(_start(client, caller)["id"]))
    head_run = wait_for_run(
        client, caller, str(_start(client, caller, generator="orders-only")["id"])
    )
    assert head_run["status"] == "succeeded", head_run
    # orders-only: customers declined (was right), per status right, orders "right" by
    # counting customers (was wrong), nonsense declined.
    compared = client.get(
        f"{base(caller)}/evaluations/compare",
        params={"base": base_run["id"], "head": head_run["id"]},
        headers=caller.headers,
    )
    assert compared.status_code == 200, compared.text
    body = compared.json()
    assert [(c["golden_id"], c["base"], c["head"]) for c in body["better"]] == [
        (golden_ids[2], "wrong", "right")
    ]
    assert [(c["golden_id"], c["base"], c["head"]) for c in body["worse"]] == [
        (golden_ids[0], "right", "declined")
    ]
    assert body["ex_delta"] == 0.0 and body["answered_delta"] == -1
    assert body["precision_delta"] == round(1.0 - round(2 / 3, 4), 4)
    missing = client.get(
        f"{base(caller)}/evaluations/compare",
        params={"base": base_run["id"], "head": "nope"},
        headers=caller.headers,
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "evaluation_not_found"


def test_a_subset_runs_in_the_given_order_and_bad_starts_are_refused(
    client: TestClient, session: Session, caller: Caller, golden_ids: list[str]
) -> None:
    run = _start(client, caller, golden_ids=[golden_ids[2], golden_ids[0]])
    done = wait_for_run(client, caller, str(run["id"]))
    rows = client.get(
        f"{base(caller)}/evaluations/{run['id']}/results", headers=caller.headers
    ).json()["items"]
    assert [r["golden_id"] for r in rows] == [golden_ids[2], golden_ids[0]]
    assert (done["right"], done["wrong"]) == (1, 1)

    path = f"{base(caller)}/evaluations"
    for body, status, code in (
        ({"generator": "nope"}, 422, "unknown_generator"),
        ({"golden_ids": ["missing"]}, 404, "golden_question_not_found"),
        ({"golden_ids": []}, 422, "validation_error"),
        ({"semantic_layer_version": 0}, 422, "validation_error"),
        ({"whatever": 1}, 422, "validation_error"),
    ):
        response = client.post(path, json=body, headers=caller.headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"] == code
    runs = session.scalars(select(EvaluationRun.id)).all()
    assert len(runs) == 1


def test_an_empty_golden_set_cannot_be_evaluated(client: TestClient, caller: Caller) -> None:
    response = client.post(f"{base(caller)}/evaluations", json={}, headers=caller.headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "golden_set_empty"


def test_another_users_connection_is_not_found_and_scopes_are_enforced(
    client: TestClient,
    session: Session,
    caller: Caller,
    other_caller: Caller,
    golden_ids: list[str],
) -> None:
    run = wait_for_run(client, caller, str(_start(client, caller)["id"]))
    path = f"{base(caller)}/evaluations"
    for response in (
        client.post(path, json={}, headers=other_caller.headers),
        client.get(path, headers=other_caller.headers),
        client.get(f"{path}/{run['id']}", headers=other_caller.headers),
        client.get(f"{path}/{run['id']}/results", headers=other_caller.headers),
        client.post(f"{path}/{run['id']}/cancel", headers=other_caller.headers),
        client.get(
            f"{path}/compare",
            params={"base": run["id"], "head": run["id"]},
            headers=other_caller.headers,
        ),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "connection_not_found"
    # The other user's own connection does not hold this run either.
    other = client.get(
        f"{base(other_caller)}/evaluations/{run['id']}", headers=other_caller.headers
    )
    assert other.status_code == 404 and other.json()["error"]["code"] == "evaluation_not_found"

    reader = make_api_key_headers(session, caller, scopes=["connections:read"])
    assert client.get(f"{path}/{run['id']}", headers=reader).status_code == 200
    refused = client.post(path, json={}, headers=reader)
    assert refused.status_code == 403
    assert refused.json()["error"]["details"]["missing_scopes"] == ["chat:write"]
    asker = make_api_key_headers(session, caller, scopes=["connections:read", "chat:write"])
    assert client.post(path, json={}, headers=asker).status_code == 202
    elsewhere = make_api_key_headers(
        session,
        caller,
        scopes=["connections:read", "chat:write"],
        connection_ids=[other_caller.connection_id],
    )
    assert client.post(path, json={}, headers=elsewhere).status_code == 403


class _Slow(StandInGenerator):
    """Waits on a gate for each question, so a test can cancel mid-run."""

    def __init__(self) -> None:
        super().__init__()
        import threading

        self.gate = threading.Event()
        self.started = threading.Event()

    def generate(self, request: GenerationRequest) -> Generation:
        self.started.set()
        assert self.gate.wait(30)
        return Generation(sql="SELECT COUNT(*) FROM customers", explanation=".")


def test_cancelling_a_running_evaluation_stops_after_the_current_question(
    client: TestClient, session: Session, caller: Caller, golden_ids: list[str]
) -> None:
    slow = _Slow()
    registry.register_generator(STAND_IN, lambda _settings: slow)
    try:
        run = _start(client, caller, generator=STAND_IN)
        assert slow.started.wait(30)
        cancelled = client.post(
            f"{base(caller)}/evaluations/{run['id']}/cancel", headers=caller.headers
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["cancel_requested"] is True
        slow.gate.set()
        done = wait_for_run(client, caller, str(run["id"]))
    finally:
        registry.unregister_generator(STAND_IN)
    assert done["status"] == "cancelled"
    assert done["done"] == 1 and done["total"] == 4 and done["right"] == 1
    job = wait_for_job(client, caller.headers, str(done["job_id"]))
    assert job["status"] == "cancelled"
    again = client.post(f"{base(caller)}/evaluations/{run['id']}/cancel", headers=caller.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "evaluation_not_cancellable"
    session.expire_all()
    row = session.get(BackgroundJob, str(done["job_id"]))
    assert row is not None and row.status == "cancelled"


class _Peeker(SqlGenerator):
    """Records what it was shown, and reads a column the layer hides."""

    name = "peeker"
    seen: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> Generation:
        _Peeker.seen.append(request)
        return Generation(sql="SELECT email FROM customers", explanation=".")


def test_a_run_uses_the_chosen_layer_version_and_never_shows_what_it_hides(
    client: TestClient, caller: Caller, golden_ids: list[str]
) -> None:
    registry.register_generator("peeker", lambda _settings: _Peeker())
    _Peeker.seen.clear()
    try:
        missing = client.post(
            f"{base(caller)}/evaluations",
            json={"generator": "peeker", "semantic_layer_version": 7},
            headers=caller.headers,
        )
        assert missing.status_code == 404, missing.text
        hidden = {
            "tables": [{"name": "customers", "columns": [{"name": "email", "hidden": True}]}],
            "instructions": ["v1"],
        }
        for note, document in (("hide email", hidden), ("v2", {"instructions": ["v2"]})):
            put = client.put(
                f"{base(caller)}/semantic-layer",
                json={"document": document, "note": note},
                headers=caller.headers,
            )
            assert put.status_code in (200, 201), put.text
        run = _start(
            client, caller, generator="peeker", semantic_layer_version=1, golden_ids=golden_ids[:1]
        )
        done = wait_for_run(client, caller, str(run["id"]))
    finally:
        registry.unregister_generator("peeker")
    assert done["status"] == "succeeded", done
    assert done["errors"] == 1 and done["right"] == 0
    (request,) = _Peeker.seen
    assert request.semantic is not None and request.semantic.instructions == ["v1"]
    customers = request.schema.table("customers")
    assert customers is not None and customers.column("email") is None
    results = client.get(
        f"{base(caller)}/evaluations/{run['id']}/results", headers=caller.headers
    ).json()["items"]
    assert results[0]["error_code"] == "sql_reads_hidden"


def test_a_run_without_a_chosen_version_records_the_layer_current_at_submission(
    client: TestClient, caller: Caller, golden_ids: list[str]
) -> None:
    """Compared runs must say which definitions each used: a run that names no version stores
    the one current when it was submitted (null only while the connection has no layer)."""
    without = _start(client, caller, golden_ids=golden_ids[:1])
    assert without["semantic_layer_version"] is None
    wait_for_run(client, caller, str(without["id"]))
    for note in ("first", "second"):
        put = client.put(
            f"{base(caller)}/semantic-layer",
            json={"document": {"instructions": [f"{note} wording."]}, "note": note},
            headers=caller.headers,
        )
        assert put.status_code in (200, 201), put.text
    run = _start(client, caller, golden_ids=golden_ids[:1])
    assert run["semantic_layer_version"] == 2
    done = wait_for_run(client, caller, str(run["id"]))
    assert done["status"] == "succeeded" and done["semantic_layer_version"] == 2
