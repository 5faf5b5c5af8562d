"""Input hygiene across every endpoint: NUL, lone surrogates, control characters, huge numbers,
oversized bodies and deep JSON, on both platform databases.

The operations come from the app's own OpenAPI document, so a new endpoint is attacked without
anyone listing it here. Every answer must be a 4xx in the one error shape (never a 500), and the
text that cannot be stored is refused before it reaches a route.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from backend.core.config import Settings
from backend.main import create_app
from backend.openapi import contract_settings
from tests import factories
from tests.conftest import BACKENDS, create_pg_database, drop_pg_database

NUL = "x\x00y"
SURROGATE = "x\ud800y"
CONTROL = "a\x01\x08\x0b\x1b\x1f\x7f\x85b"
HUGE_INT = 10**30
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[tuple[str, str], ...]
    """(name, JSON-schema type) of each query parameter."""
    body_type: str | None
    body_schema: dict[str, Any] | None

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        node: Any = spec
        for part in schema["$ref"].removeprefix("#/").split("/"):
            node = node[part]
        schema = node
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if _resolve(spec, s).get("type") != "null"]
            if options:
                return _resolve(spec, options[0])
    return schema


def _type_of(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    return str(_resolve(spec, schema).get("type", "string"))


def _operations() -> list[Operation]:
    spec = create_app(contract_settings()).openapi()  # writes nothing (no secrets file)
    operations = []
    for path, methods in sorted(spec["paths"].items()):
        for method, op in sorted(methods.items()):
            params = op.get("parameters", [])
            content = op.get("requestBody", {}).get("content", {})
            body_type = next(iter(content), None)
            body_schema = (
                _resolve(spec, content[body_type]["schema"]) if body_type is not None else None
            )
            operations.append(
                Operation(
                    method=method.upper(),
                    path=path,
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    query_params=tuple(
                        (p["name"], _type_of(spec, p["schema"]))
                        for p in params
                        if p["in"] == "query"
                    ),
                    body_type=body_type,
                    body_schema=_filled(spec, body_schema, "text") if body_schema else None,
                )
            )
    return operations


def _filled(spec: dict[str, Any], schema: dict[str, Any], text: Any, depth: int = 0) -> Any:
    """A body shaped like `schema` whose every string is `text` (a marker replaced per test)."""
    schema = _resolve(spec, schema)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if not properties:
            return {"key": text}
        return {
            name: _filled(spec, sub, text, depth + 1)
            for name, sub in properties.items()
            if depth < 4
        }
    if kind == "array":
        return [_filled(spec, schema.get("items", {}), text, depth + 1)]
    if kind == "integer":
        return 1
    if kind == "number":
        return 1.5
    if kind == "boolean":
        return True
    return text


OPERATIONS = _operations()
BODY_OPERATIONS = [op for op in OPERATIONS if op.body_type is not None]
JSON_OPERATIONS = [op for op in BODY_OPERATIONS if op.body_type == "application/json"]
PATH_OPERATIONS = [op for op in OPERATIONS if op.path_params]
QUERY_OPERATIONS = [op for op in OPERATIONS if op.query_params]


def _ids(ops: list[Operation]) -> list[str]:
    return [op.id for op in ops]


def _replace(value: Any, marker: Any, by: Any) -> Any:
    if value == marker and type(value) is type(marker):
        return by
    if isinstance(value, dict):
        return {k: _replace(v, marker, by) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, marker, by) for v in value]
    return value


def _url(op: Operation, **path_values: str) -> str:
    url = op.path
    for name in op.path_params:
        url = url.replace("{" + name + "}", path_values.get(name, "00000000-0000-0000-0000-0"))
    return url


def _send(
    client: TestClient,
    op: Operation,
    headers: dict[str, str],
    *,
    body: Any = None,
    raw: bytes | None = None,
    url: str | None = None,
) -> Any:
    request_headers = dict(headers)
    content: bytes | None = raw
    if raw is None and body is not None and op.body_type == "multipart/form-data":
        # A real form: each text field carries the text; a file part carries harmless bytes
        # (an upload's content is its route's to judge).
        fields = {k: v for k, v in body.items() if k != "file"}
        return client.request(
            op.method,
            url or _url(op),
            data={k: str(v).encode("utf-8", "surrogatepass") for k, v in fields.items()},
            files={"file": ("upload.txt", b"{}", "text/plain")} if "file" in body else None,
            headers=request_headers,
        )
    if raw is None and body is not None:
        if op.body_type == "application/x-www-form-urlencoded":
            content = "&".join(
                f"{quote(str(k))}={quote(str(v), safe='', errors='surrogatepass')}"
                for k, v in body.items()
            ).encode()
        else:
            # ensure_ascii: a lone surrogate travels as its JSON escape, as a client sends it.
            content = json.dumps(body).encode()
    if content is not None:
        request_headers["Content-Type"] = op.body_type or "application/json"
    return client.request(op.method, url or _url(op), content=content, headers=request_headers)


def _assert_refused(response: Any, status: int, kind: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "details"}
    if kind is not None:
        assert error["code"] == "validation_error"
        assert [e["type"] for e in error["details"]["errors"]] == [kind], error
    return dict(error)


def _assert_not_a_server_error(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert set(response.json()["error"]) == {"code", "message", "details"}


@pytest.fixture(scope="module", params=BACKENDS)
def admin_client(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    """One app per platform database for the whole module, signed in as an admin: almost
    every request here is refused before it reaches a route, so they may share it."""
    tmp_path = tmp_path_factory.mktemp("hygiene")
    admin_url: str | None = None
    if request.param == "sqlite":
        target = tmp_path / "app_data.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite:///{target}"
    else:
        admin_url = request.getfixturevalue("pg_admin_url")
        url = create_pg_database(admin_url, template=request.getfixturevalue("pg_template"))
    settings = Settings(
        data_dir=tmp_path,
        database_url=url,
        jwt_secret=SecretStr("test-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=False,
        _env_file=None,
    )
    app = create_app(settings)
    try:
        with TestClient(app) as client:
            with app.state.session_factory() as session:
                admin = factories.create_user(session, role="admin")
                client.headers.update(factories.token_headers(session, settings, admin))
            yield client
    finally:
        app.state.engine.dispose()
        if admin_url is not None:
            drop_pg_database(admin_url, url)


def test_the_suite_sees_every_operation_of_the_app() -> None:
    # The operations come from the OpenAPI document: the contract's 50 odd operations.
    assert len(OPERATIONS) >= 45
    assert {"POST /api/v1/chat/sessions", "POST /api/v1/auth/token"} <= {op.id for op in OPERATIONS}
    assert len(JSON_OPERATIONS) >= 15 and len(PATH_OPERATIONS) >= 15


@pytest.mark.parametrize("text,kind", [(NUL, "nul_character"), (SURROGATE, "lone_surrogate")])
@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=_ids(BODY_OPERATIONS))
def test_unstorable_text_in_any_body_is_a_422(
    admin_client: TestClient, op: Operation, text: str, kind: str
) -> None:
    body = _replace(op.body_schema, "text", text)
    forms = ("application/x-www-form-urlencoded", "multipart/form-data")
    if op.body_type in forms and kind == "lone_surrogate":
        pytest.skip("a form is UTF-8 bytes: a surrogate's bytes decode to U+FFFD, not to it")
    if op.body_type == "application/x-www-form-urlencoded":
        body = {"username": text, "password": "a-long-password-1"}

    error = _assert_refused(_send(admin_client, op, {}, body=body), 422, kind)
    assert error["details"]["errors"][0]["loc"][0] in ("body", "form")


@pytest.mark.parametrize("op", PATH_OPERATIONS, ids=_ids(PATH_OPERATIONS))
def test_nul_in_a_path_parameter_is_a_422(admin_client: TestClient, op: Operation) -> None:
    for name in op.path_params:
        url = _url(op, **{name: "%00"})
        response = _send(admin_client, op, {}, url=url, body=op.body_schema)
        _assert_refused(response, 422, "nul_character")


@pytest.mark.parametrize("op", QUERY_OPERATIONS, ids=_ids(QUERY_OPERATIONS))
def test_nul_in_a_query_parameter_is_a_422(admin_client: TestClient, op: Operation) -> None:
    for name, _kind in op.query_params:
        response = admin_client.request(op.method, _url(op), params={name: NUL})
        _assert_refused(response, 422, "nul_character")


@pytest.mark.parametrize("op", QUERY_OPERATIONS, ids=_ids(QUERY_OPERATIONS))
def test_odd_query_values_never_give_a_server_error(
    admin_client: TestClient, op: Operation
) -> None:
    for name, kind in op.query_params:
        for value in (CONTROL, str(HUGE_INT), str(-HUGE_INT), "9" * 5000, "%ed%a0%80"):
            if kind == "integer" and not value.lstrip("-").isdigit():
                continue
            response = admin_client.request(op.method, _url(op), params={name: value})
            _assert_not_a_server_error(response)


@pytest.mark.parametrize("op", JSON_OPERATIONS, ids=_ids(JSON_OPERATIONS))
def test_control_characters_in_bodies_never_give_a_server_error(
    admin_client: TestClient, op: Operation
) -> None:
    body = _replace(op.body_schema, "text", CONTROL)
    _assert_not_a_server_error(_send(admin_client, op, {}, body=body))


@pytest.mark.parametrize("op", JSON_OPERATIONS, ids=_ids(JSON_OPERATIONS))
def test_numbers_beyond_64_bits_or_not_finite_are_a_422(
    admin_client: TestClient, op: Operation
) -> None:
    body = op.body_schema if isinstance(op.body_schema, dict) else {}
    for number, kind in ((HUGE_INT, "number_too_large"), (-HUGE_INT, "number_too_large")):
        _assert_refused(_send(admin_client, op, {}, body={**body, "n": number}), 422, kind)
    for literal in ("NaN", "Infinity", "-Infinity", "1e999"):
        raw = json.dumps(body)[:-1] + (", " if body else "") + f'"n": {literal}}}'
        _assert_refused(_send(admin_client, op, {}, raw=raw.encode()), 422, "number_not_finite")


@pytest.mark.parametrize("op", BODY_OPERATIONS, ids=_ids(BODY_OPERATIONS))
def test_a_10_mb_body_is_a_413(admin_client: TestClient, op: Operation) -> None:
    raw = b'{"x": "' + b"a" * (10 * 1024 * 1024) + b'"}'

    error = _assert_refused(_send(admin_client, op, {}, raw=raw), 413)

    assert error["code"] == "payload_too_large"
    assert error["details"]["max_body_bytes"] == MAX_BODY_BYTES


def test_a_body_streamed_without_a_length_is_bounded_too(admin_client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(20):
            yield b"a" * 100_000
        yield b'"}'

    response = admin_client.post(
        "/api/v1/chat/sessions", content=chunks(), headers={"Content-Type": "application/json"}
    )

    _assert_refused(response, 413)


@pytest.mark.parametrize("depth", [40, 100_000])
@pytest.mark.parametrize("op", JSON_OPERATIONS, ids=_ids(JSON_OPERATIONS))
def test_deep_json_is_a_422(admin_client: TestClient, op: Operation, depth: int) -> None:
    raw = b'{"x": ' + b"[" * depth + b"]" * depth + b"}"

    _assert_refused(_send(admin_client, op, {}, raw=raw), 422, "too_deep")


def test_nul_in_a_header_is_a_422_and_reasonable_nesting_passes(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    response = client.patch(
        "/api/v1/auth/me",
        json={"preferences": {"a": {"b": {"c": [[["fine"]]]}}}},
        headers=auth_headers,
    )
    assert response.status_code == 200, response.text

    refused = client.get("/api/v1/auth/me", headers={**auth_headers, "User-Agent": "x\x00y"})
    _assert_refused(refused, 422, "nul_character")


def test_login_form_with_nul_is_a_422_and_does_not_lose_the_next_login(
    client: TestClient, app: FastAPI, user: Any
) -> None:
    refused = client.post("/api/v1/auth/token", data={"username": "\x00", "password": "x"})
    _assert_refused(refused, 422, "nul_character")

    from tests.factories import DEFAULT_PASSWORD

    ok = client.post(
        "/api/v1/auth/token", data={"username": user.email, "password": DEFAULT_PASSWORD}
    )
    assert ok.status_code == 200, ok.text


def test_a_chat_title_with_nul_is_refused_and_a_clean_one_is_stored(
    client: TestClient, auth_headers: dict[str, str]
) -> None:
    refused = client.post("/api/v1/chat/sessions", json={"title": "x\x00y"}, headers=auth_headers)
    _assert_refused(refused, 422, "nul_character")

    created = client.post(
        "/api/v1/chat/sessions", json={"title": "x\U0001f600y"}, headers=auth_headers
    )
    assert created.status_code == 201, created.text
    assert created.json()["title"] == "x\U0001f600y"
