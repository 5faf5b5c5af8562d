"""Over HTTP: a hidden column is refused only where a query really reads it (names resolved in
their scope), and DuckDB's `* EXCLUDE`/`* REPLACE` keep their meaning when `*` is narrowed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
from fastapi.testclient import TestClient

from tests.chat.conftest import Caller

CONNECTIONS = "/api/v1/connections"


def _put_layer(client: TestClient, caller: Caller, connection_id: str, layer: Any) -> None:
    response = client.put(
        f"{CONNECTIONS}/{connection_id}/semantic-layer",
        json={"document": layer},
        headers=caller.headers,
    )
    assert response.status_code == 200, response.text


def _run(client: TestClient, caller: Caller, connection_id: str, sql: str) -> Any:
    return client.post(
        "/api/v1/query/sql",
        json={"connection_id": connection_id, "sql": sql},
        headers=caller.headers,
    )


def test_an_unqualified_name_is_refused_only_where_it_reads_the_hidden_column(
    client: TestClient, caller: Caller
) -> None:
    # The demo's customers hide `country`; suppliers and employees have a visible one.
    layer = {"tables": [{"name": "customers", "columns": [{"name": "country", "hidden": True}]}]}
    _put_layer(client, caller, caller.connection_id, layer)
    visible = _run(
        client,
        caller,
        caller.connection_id,
        "SELECT country FROM suppliers WHERE city IN (SELECT city FROM customers) "
        "ORDER BY country LIMIT 3",
    )
    assert visible.status_code == 200, visible.text
    assert [c["name"] for c in visible.json()["columns"]] == ["country"]
    for sql in (
        # correlated: the inner `country` is the customers' one
        "SELECT s.company_name FROM suppliers AS s WHERE EXISTS "
        "(SELECT 1 FROM customers AS c WHERE c.city = s.city AND country = 'France')",
        # ambiguous: it could be the customers' one
        "SELECT country FROM suppliers AS s JOIN customers AS c ON c.city = s.city",
        # correlated through a derived table whose `*` is narrowed to the visible columns
        "SELECT c.id FROM customers AS c WHERE EXISTS "
        "(SELECT 1 FROM (SELECT * FROM customers) AS x WHERE country = 'France')",
        "SELECT c.country FROM customers AS c",
    ):
        refused = _run(client, caller, caller.connection_id, sql)
        assert refused.status_code == 400, sql
        error = refused.json()["error"]
        assert error["code"] == "sql_reads_hidden"
        assert error["details"]["rule"] == "hidden_column"
        assert error["details"]["column"] == "customers.country"


def _duckdb_connection(client: TestClient, caller: Caller, db_dir: Path) -> str:
    path = db_dir / "people.duckdb"
    conn = duckdb.connect(str(path))
    try:
        conn.execute("CREATE TABLE people (id INTEGER, name VARCHAR, city VARCHAR, ssn VARCHAR)")
        conn.execute(
            "INSERT INTO people VALUES (1, 'ann', 'Lyon', '111'), (2, 'bob', 'Oslo', '222')"
        )
    finally:
        conn.close()
    created = client.post(
        CONNECTIONS,
        json={"connection_name": "people", "db_type": "duckdb", "db_name": str(path)},
        headers=caller.headers,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def test_star_exclude_and_replace_keep_their_meaning_when_narrowed(
    client: TestClient, caller: Caller, db_dir: Path
) -> None:
    connection_id = _duckdb_connection(client, caller, db_dir)
    layer = {"tables": [{"name": "people", "columns": [{"name": "ssn", "hidden": True}]}]}
    _put_layer(client, caller, connection_id, layer)

    def result(sql: str) -> tuple[list[str], list[Any]]:
        response = _run(client, caller, connection_id, sql)
        assert response.status_code == 200, response.text
        body = response.json()
        return [c["name"] for c in body["columns"]], body["rows"]

    assert result("SELECT * EXCLUDE (city) FROM people ORDER BY id") == (
        ["id", "name"],
        [[1, "ann"], [2, "bob"]],
    )
    assert result("SELECT * REPLACE (UPPER(name) AS name) FROM people ORDER BY id") == (
        ["id", "name", "city"],
        [[1, "ANN", "Lyon"], [2, "BOB", "Oslo"]],
    )
    # Excluding the hidden column is no read of it.
    assert result("SELECT * EXCLUDE (ssn) FROM people ORDER BY id")[0] == ["id", "name", "city"]
    replaced_hidden = _run(
        client, caller, connection_id, "SELECT * REPLACE (ssn AS name) FROM people"
    )
    assert replaced_hidden.status_code == 400
    assert replaced_hidden.json()["error"]["details"]["column"] == "people.ssn"
