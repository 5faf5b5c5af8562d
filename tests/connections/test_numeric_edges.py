"""Numbers JSON cannot write as they are: PostgreSQL `numeric` NaN and ±Infinity, and integers
longer than Python writes (4300 digits; numeric holds 131072). An answer and its CSV export show
them (empty, or as the decimal's text) instead of failing with a 500."""

from __future__ import annotations

import decimal
import json

import pytest
from fastapi.testclient import TestClient

from backend.connections.executor import json_safe
from tests.connections.conftest import Caller, ServerTarget


def test_json_safe_numbers() -> None:
    assert json_safe(decimal.Decimal("NaN")) is None
    assert json_safe(decimal.Decimal("Infinity")) is None
    assert json_safe(decimal.Decimal("-Infinity")) is None
    assert json_safe(decimal.Decimal("1E+400")) == 10**400
    huge = json_safe(decimal.Decimal("1E+5000"))
    assert isinstance(huge, str) and decimal.Decimal(huge) == decimal.Decimal("1E+5000")
    text = "1" + "0" * 400 + ".5"  # not integral, and beyond what a float holds
    assert json_safe(decimal.Decimal(text)) == text
    assert json_safe(decimal.Decimal("2.50")) == 2.5
    json.dumps([json_safe(decimal.Decimal(v)) for v in ("NaN", "1E+5000", text)], allow_nan=False)


def test_postgresql_numbers_answer_and_export(
    client: TestClient, caller: Caller, request: pytest.FixtureRequest
) -> None:
    target: ServerTarget = request.getfixturevalue("pg_target")
    created = client.post(
        "/api/v1/connections",
        json={
            "connection_name": "numbers",
            "db_type": "postgresql",
            "db_host": target.host,
            "db_port": target.port,
            "db_user": target.user,
            "db_password": target.password,
            "db_name": target.database,
        },
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    ran = client.post(
        "/api/v1/query/sql",
        json={
            "connection_id": created.json()["id"],
            "sql": "SELECT 'NaN'::numeric AS n, 'Infinity'::numeric AS i, "
            "1e5000::numeric AS big, 2.5::numeric AS plain",
        },
        headers=caller.headers,
    )
    assert ran.status_code == 200, ran.text
    n, i, big, plain = ran.json()["rows"][0]
    assert n is None and i is None and plain == 2.5
    assert decimal.Decimal(big) == decimal.Decimal("1E+5000")
    exported = client.get(f"/api/v1/query/{ran.json()['query_id']}/export", headers=caller.headers)
    assert exported.status_code == 200, exported.text
    header, row = exported.text.splitlines()
    assert header == "n,i,big,plain"
    cells = row.split(",")
    assert cells[:2] == ["", ""] and cells[3] == "2.5"
    assert decimal.Decimal(cells[2]) == decimal.Decimal("1E+5000")
