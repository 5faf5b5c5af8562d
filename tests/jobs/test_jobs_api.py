"""Jobs through the HTTP API: submit (202), poll, fetch the result; ownership; recording."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.jobs.models import BackgroundJob
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller
from tests.jobs.conftest import JOBS, ask_job, chat_session, run_job, submit_job, wait_for_job


def test_an_ask_job_answers_like_the_direct_ask_and_is_recorded(
    client: TestClient, session: Session, caller: Caller
) -> None:
    chat_id = chat_session(client, caller)
    question = "how many customers are there?"
    submitted = submit_job(client, caller.headers, **ask_job(chat_id, question))
    job = submitted.json()
    assert job["status"] in ("queued", "running", "succeeded")
    assert submitted.headers["location"] == f"{JOBS}/{job['id']}"

    done = wait_for_job(client, caller.headers, job["id"])
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 1
    answer = done["result"]
    direct = client.post(
        f"/api/v1/chat/sessions/{chat_id}/ask", json={"question": question}, headers=caller.headers
    ).json()
    assert answer["sql"] == direct["sql"]
    assert answer["rows"] == direct["rows"]
    assert client.get(f"{JOBS}/{job['id']}/result", headers=caller.headers).json() == answer

    analytics = session.scalar(
        select(QueryAnalytics).where(QueryAnalytics.query_id == answer["query_id"])
    )
    assert analytics is not None and analytics.success and analytics.user_id == caller.user_id
    kinds = set(session.scalars(select(Event.event_type).where(Event.user_id == caller.user_id)))
    assert {"job_submitted", "job_finished", "asked"} <= kinds


def test_another_users_job_is_not_found(
    client: TestClient, caller: Caller, other_caller: Caller
) -> None:
    chat_id = chat_session(client, caller)
    job, _ = run_job(client, caller.headers, **ask_job(chat_id, "how many orders?"))
    for path in (f"{JOBS}/{job['id']}", f"{JOBS}/{job['id']}/result"):
        response = client.get(path, headers=other_caller.headers)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "job_not_found"
    assert client.delete(f"{JOBS}/{job['id']}", headers=other_caller.headers).status_code == 404
    assert client.get(JOBS, headers=other_caller.headers).json()["items"] == []
    assert [j["id"] for j in client.get(JOBS, headers=caller.headers).json()["items"]] == [
        job["id"]
    ]


def test_a_job_is_checked_like_the_direct_call_before_it_is_queued(
    client: TestClient, session: Session, caller: Caller, other_caller: Caller
) -> None:
    other_chat = chat_session(client, other_caller)
    response = client.post(
        JOBS, json=ask_job(other_chat, "how many orders?"), headers=caller.headers
    )
    assert response.status_code == 404
    response = client.post(JOBS, json={"kind": "prune"}, headers=caller.headers)
    assert response.status_code == 403
    response = client.post(JOBS, json={"kind": "nonsense"}, headers=caller.headers)
    assert response.status_code == 422
    assert session.scalar(select(func.count()).select_from(BackgroundJob)) == 0


def test_a_failing_ask_job_keeps_the_error_shape_and_its_record(
    client: TestClient, session: Session, caller: Caller
) -> None:
    chat_id = chat_session(client, caller)
    job, done = run_job(client, caller.headers, **ask_job(chat_id, "xyzzy plugh frobnicate"))
    assert done["status"] == "failed"
    assert set(done["error"]) == {"code", "message", "details"}
    assert done["error"]["details"]["query_id"]
    assert client.get(f"{JOBS}/{job['id']}/result", headers=caller.headers).status_code == 409
    failed = session.scalar(
        select(QueryAnalytics).where(
            QueryAnalytics.query_id == done["error"]["details"]["query_id"]
        )
    )
    assert failed is not None and not failed.success


def test_an_export_job_writes_every_row_to_a_downloadable_file(
    client: TestClient, caller: Caller
) -> None:
    ran = client.post(
        "/api/v1/query/sql",
        json={"connection_id": caller.connection_id, "sql": "SELECT id, email FROM customers"},
        headers=caller.headers,
    )
    assert ran.status_code == 200, ran.text
    direct = client.get(f"/api/v1/query/{ran.json()['query_id']}/export", headers=caller.headers)
    assert direct.status_code == 200
    job, done = run_job(client, caller.headers, kind="export", query_id=ran.json()["query_id"])
    assert done["status"] == "succeeded", done
    assert done["result_url"] == f"{JOBS}/{job['id']}/result"
    file = client.get(done["result_url"], headers=caller.headers)
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("text/csv")
    assert file.content == direct.content
    assert done["result"]["rows"] == len(direct.content.decode().splitlines()) - 1


def test_a_schema_refresh_job_and_cancelling_a_queued_job(
    client: TestClient, session: Session, caller: Caller
) -> None:
    _, done = run_job(
        client, caller.headers, kind="schema_refresh", connection_id=caller.connection_id
    )
    assert done["status"] == "succeeded", done
    assert any(t["name"] == "customers" for t in done["result"]["tables"])

    queued = BackgroundJob(user_id=caller.user_id, kind="schema_refresh", params={})
    session.add(queued)
    session.commit()
    cancelled = client.delete(f"{JOBS}/{queued.id}", headers=caller.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    again = client.delete(f"{JOBS}/{queued.id}", headers=caller.headers)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "job_not_cancellable"


def test_following_a_job_over_server_sent_events(
    client: TestClient, caller: Caller, other_caller: Caller
) -> None:
    chat_id = chat_session(client, caller)
    job = submit_job(
        client, caller.headers, **ask_job(chat_id, "how many orders are there?")
    ).json()
    assert client.get(f"{JOBS}/{job['id']}/events", headers=other_caller.headers).status_code == 404
    events: list[tuple[str, str]] = []
    with client.stream("GET", f"{JOBS}/{job['id']}/events", headers=caller.headers) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = ""
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((name, line.removeprefix("data: ")))
    assert events[-1] == ("done", "{}")
    states = [json.loads(data) for name, data in events if name == "job"]
    assert states[-1]["status"] == "succeeded" and states[-1]["result"]["rows"]
    assert len({json.dumps(s, sort_keys=True) for s in states}) == len(states)
