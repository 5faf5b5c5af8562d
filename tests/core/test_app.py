"""The app factory through HTTP: probes, request ids and the one error shape."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field

from backend.api import api_routes
from backend.core.config import Settings
from backend.core.errors import RateLimited
from backend.core.migrations import head_revision
from backend.main import create_app


def _assert_error_shape(body: dict[str, object], code: str) -> None:
    assert set(body) == {"error"}
    error = body["error"]
    assert isinstance(error, dict)
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]


def test_healthz_answers(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_checks_database_and_revision(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["revision"] == head_revision()


def test_readyz_is_503_on_an_unmigrated_database(tmp_path: Path, settings: Settings) -> None:
    empty = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'empty.db'}"})
    with TestClient(create_app(empty)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    _assert_error_shape(response.json(), "service_unavailable")


def test_server_migrates_on_start_in_the_embedded_default(
    tmp_path: Path, settings: Settings
) -> None:
    fresh = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'fresh.db'}",
            "run_migrations_on_start": True,
        }
    )
    with TestClient(create_app(fresh)) as client:
        assert client.get("/readyz").status_code == 200


def test_request_id_is_generated_and_echoed(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert (
        client.get("/healthz", headers={"X-Request-ID": "abc-123-def"}).headers["x-request-id"]
        == "abc-123-def"
    )
    injected = client.get("/healthz", headers={"X-Request-ID": "bad\tvalue with spaces"})
    assert injected.headers["x-request-id"] != "bad\tvalue with spaces"


def test_unknown_route_is_404_in_the_error_shape(client: TestClient) -> None:
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    _assert_error_shape(response.json(), "not_found")
    assert "x-request-id" in response.headers


def test_wrong_method_is_405_in_the_error_shape(client: TestClient) -> None:
    response = client.post("/healthz")
    assert response.status_code == 405
    _assert_error_shape(response.json(), "method_not_allowed")


class _Body(BaseModel):
    name: str = Field(min_length=2)
    password: str


@pytest.fixture
def probe_app(app: FastAPI) -> Iterator[TestClient]:
    """The real app with three extra routes that raise, to exercise the one handler."""

    @app.post("/_probe/validate")
    def validate(body: _Body) -> dict[str, str]:
        return {"name": body.name}

    @app.get("/_probe/limited")
    def limited() -> None:
        raise RateLimited("Slow down.", retry_after_seconds=7)

    @app.get("/_probe/crash")
    def crash() -> None:
        raise RuntimeError("boom: secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_validation_errors_use_the_shape_and_never_echo_input(probe_app: TestClient) -> None:
    response = probe_app.post("/_probe/validate", json={"name": "x", "password": "hunter2-secret"})
    assert response.status_code == 422
    body = response.json()
    _assert_error_shape(body, "validation_error")
    assert body["error"]["details"]["errors"][0]["loc"] == ["body", "name"]
    assert "hunter2-secret" not in response.text


def test_malformed_json_is_422_not_500(probe_app: TestClient) -> None:
    response = probe_app.post(
        "/_probe/validate", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    _assert_error_shape(response.json(), "validation_error")


def test_app_errors_carry_status_code_and_headers(probe_app: TestClient) -> None:
    response = probe_app.get("/_probe/limited")
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    _assert_error_shape(response.json(), "rate_limited")
    assert response.json()["error"]["details"]["retry_after_seconds"] == 7


def test_unexpected_errors_are_a_generic_500_without_internals(probe_app: TestClient) -> None:
    response = probe_app.get("/_probe/crash")
    assert response.status_code == 500
    _assert_error_shape(response.json(), "internal_error")
    assert "secret internals" not in response.text


def test_apps_their_engines_and_metric_writers_are_freed_once_dropped(settings: Settings) -> None:
    """Nothing process-wide keeps served apps: a process that makes many (the tests, a worker
    restarting its app) must not grow by an app, a pool and its routes each time. (Procrastinate's
    built-in tasks belong to the newest queue app, whose engine so lives until the next one.)"""
    refs: list[list[weakref.ref[object]]] = []
    for _ in range(3):
        app = create_app(settings)
        with TestClient(app) as client:
            for path in ("/", "/docs", "/docs/oauth2-redirect", "/redoc", "/healthz"):
                assert client.get(path).status_code == 200, path
            # The API's routes are shared by every app of the process: they must not keep one.
            assert client.get("/api/v1/auth/me").status_code == 401
        state = app.state
        refs.append([weakref.ref(app), weakref.ref(state.engine), weakref.ref(state.metric_writer)])
        del app, client, state
    gc.collect()
    assert [[ref() is None for ref in made] for made in refs[:-1]] == [[True] * 3] * 2
    assert refs[-1][0]() is None and refs[-1][2]() is None


def test_apps_of_one_process_share_the_api_routes_and_each_serves_its_own_database(
    tmp_path: Path, settings: Settings
) -> None:
    """The API's routes are built once per process; every request still reaches its own app's
    settings and database through the request, not the app the routes were first served by."""
    apps = [
        create_app(
            settings.model_copy(
                update={
                    "database_url": f"sqlite:///{tmp_path / f'app{n}.db'}",
                    "run_migrations_on_start": True,
                }
            )
        )
        for n in range(2)
    ]
    first, second = (
        [route for route in app.router.routes if route in api_routes()] for app in apps
    )
    assert first and first == second == list(api_routes())
    account = {
        "email": "only.first@example.com",
        "password": "Quiet-Harbor-Lantern-83",
        "full_name": "Only First",
    }
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        assert one.post("/api/v1/auth/register", json=account).status_code == 201
        credentials = {"email": account["email"], "password": account["password"]}
        assert one.post("/api/v1/auth/login", json=credentials).status_code == 200
        refused = two.post("/api/v1/auth/login", json=credentials)
        assert refused.status_code == 401
        _assert_error_shape(refused.json(), refused.json()["error"]["code"])
        assert two.post("/api/v1/auth/register", json=account).status_code == 201
