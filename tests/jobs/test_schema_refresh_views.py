"""A schema refresh answers the same whether it ran over HTTP or as a background job: the
stored snapshot is the one truth, and each reader gets the view of it their credentials allow."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.connections.models import DatabaseSchema
from tests.chat.conftest import Caller, make_api_key_headers
from tests.jobs.conftest import JOBS, run_job

LAYER = {
    "tables": [
        {"name": "customers", "columns": [{"name": "email", "hidden": True}]},
        {"name": "employees", "hidden": True},
    ]
}


def _columns(schema: dict[str, object], table: str) -> dict[str, bool]:
    tables = schema["tables"]
    assert isinstance(tables, list)
    found = next(t for t in tables if t["name"] == table)
    return {c["name"]: c.get("hidden", False) for c in found["columns"]}


def test_a_refresh_job_answers_each_reader_like_the_http_refresh(
    client: TestClient, session: Session, caller: Caller
) -> None:
    url = f"/api/v1/connections/{caller.connection_id}"
    written = client.put(f"{url}/semantic-layer", json={"document": LAYER}, headers=caller.headers)
    assert written.status_code == 200, written.text

    job, done = run_job(
        client, caller.headers, kind="schema_refresh", connection_id=caller.connection_id
    )
    assert done["status"] == "succeeded", done
    direct = client.post(f"{url}/refresh-schema", headers=caller.headers)
    assert direct.status_code == 200, direct.text
    expected = direct.json()

    # The owner (who manages the layer) gets the manager's view, as the HTTP refresh answers.
    for read in (
        client.get(f"{JOBS}/{job['id']}", headers=caller.headers).json()["result"],
        client.get(f"{JOBS}/{job['id']}/result", headers=caller.headers).json(),
    ):
        assert read["includes_hidden"] is True
        assert read["tables"] == expected["tables"]
        assert _columns(read, "customers")["email"] is True
        assert any(t["name"] == "employees" and t["hidden"] for t in read["tables"])

    # A key of the same user that may only read gets the generators' view of the same job.
    reader = make_api_key_headers(session, caller, scopes=["connections:read"])
    seen = client.get(f"{JOBS}/{job['id']}/result", headers=reader)
    assert seen.status_code == 200, seen.text
    assert seen.json()["includes_hidden"] is False
    assert "email" not in _columns(seen.json(), "customers")
    assert "employees" not in {t["name"] for t in seen.json()["tables"]}
    listed = client.get(JOBS, headers=reader).json()["items"]
    assert "employees" not in str(listed) and '"email"' not in str(listed)

    # Both paths stored the whole snapshot; views are derived when read.
    session.expire_all()
    stored = set(
        session.scalars(
            select(DatabaseSchema.table_name).where(
                DatabaseSchema.connection_id == caller.connection_id
            )
        )
    )
    assert {"customers", "employees"} <= stored


def test_a_refresh_job_of_a_connection_since_deleted_keeps_its_summary(
    client: TestClient, caller: Caller
) -> None:
    _, done = run_job(
        client, caller.headers, kind="schema_refresh", connection_id=caller.connection_id
    )
    assert done["status"] == "succeeded", done
    gone = client.delete(f"/api/v1/connections/{caller.connection_id}", headers=caller.headers)
    assert gone.status_code == 204, gone.text
    again = client.get(f"{JOBS}/{done['id']}", headers=caller.headers)
    assert again.status_code == 200, again.text
    result = again.json()["result"]
    assert result["connection_id"] == caller.connection_id
    assert "tables" not in result and result["last_updated"]
