"""The fuzzer's own checks: a documented 502 saying a user's database could not be reached is
the contract's answer, not a server error (the long fuzz edits the spare connection to point
at hosts that do not answer, and every later write of its semantic layer answers so)."""

from __future__ import annotations

import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.chat.conftest import Caller, caller
from tests.contract.fuzzing import CHECKS, unreachable_database_documented

__all__ = ["caller"]


def _unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_documented_unreachable_database_passes_and_nothing_else_does(
    app: FastAPI, client: TestClient, caller: Caller
) -> None:
    url = f"/api/v1/connections/{caller.connection_id}"
    moved = client.patch(
        url,
        json={
            "db_type": "postgresql",
            "db_host": "127.0.0.1",
            "db_port": _unused_port(),
            "db_name": "gone",
            "db_user": "nobody",
        },
        headers=caller.headers,
    )
    assert moved.status_code == 200, moved.text

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    put = schema["/api/v1/connections/{connection_id}/semantic-layer"]["PUT"]
    case = put.Case(
        path_parameters={"connection_id": caller.connection_id},
        body={"document": {}},
        headers=dict(caller.headers),
        media_type="application/json",
    )
    response = case.call()
    assert response.status_code == 502, response.text
    assert response.json()["error"]["details"]["kind"] == "unreachable"
    case.validate_response(response, checks=CHECKS)  # raises on any failed check

    # The same answer where the operation does not document a 502 stays a server error.
    get = schema["/api/v1/connections/{connection_id}/semantic-layer"]["GET"]
    other = get.Case(path_parameters={"connection_id": caller.connection_id})
    assert not unreachable_database_documented(None, response, other)
