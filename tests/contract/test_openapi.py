"""The API contract: the committed openapi.json is what the app produces, and it is complete.

Complete means every operation has a summary, a description, a domain tag, a typed answer, at
least one documented error in the one error shape, and examples for what it takes and returns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from backend.main import create_app
from backend.openapi import OPENAPI_PATH, build_openapi, contract_settings, render_openapi

REPO_ROOT = Path(__file__).resolve().parents[2]
ERROR_REF = "#/components/schemas/ErrorResponse"
PUBLIC_OPERATIONS = {
    "auth-register",
    "auth-login",
    "auth-token",
    "auth-refresh",
    "health-healthz",
    "health-readyz",
}
DOMAIN_TAGS = {
    "auth",
    "jobs",
    "evaluations",
    "api-keys",
    "admin",
    "analytics",
    "chat",
    "query",
    "connections",
    "templates",
    "health",
}


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return build_openapi()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    resolved: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return resolved


def _has_examples(schema: dict[str, Any], node: dict[str, Any]) -> bool:
    """Examples on the schema itself, or on the items of an array or a Page."""
    target = _resolve(schema, node)
    if "anyOf" in target:  # an optional body: the non-null branch
        branches = [b for b in target["anyOf"] if b.get("type") != "null"]
        return all(_has_examples(schema, b) for b in branches)
    if target.get("examples"):
        return True
    if target.get("type") == "array":
        return _has_examples(schema, target["items"])
    items = target.get("properties", {}).get("items")
    return bool(items and items.get("type") == "array" and _has_examples(schema, items["items"]))


def test_committed_openapi_is_what_the_app_produces() -> None:
    committed = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
    assert committed == render_openapi(), (
        "frontend_contract/openapi.json differs from the app's schema: run `nlsql openapi` "
        "(python -m backend.cli openapi), then `npm run generate` in frontend_contract/, "
        "and commit both files"
    )


def test_rendering_is_deterministic_and_normalised(schema: dict[str, Any]) -> None:
    text = render_openapi(schema)
    assert text == render_openapi(build_openapi())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text.startswith('{\n  "components": {\n')  # sorted keys, 2-space indent
    assert json.loads(text) == schema


def test_every_operation_is_documented(schema: dict[str, Any]) -> None:
    problems: list[str] = []
    seen_ids: set[str] = set()
    for method, path, op in _operations(schema):
        where = f"{method} {path}"
        if not op.get("summary", "").strip():
            problems.append(f"{where}: no summary")
        if not op.get("description", "").strip():
            problems.append(f"{where}: no description (the endpoint's docstring)")
        tags = op.get("tags") or []
        if not tags or not set(tags) <= DOMAIN_TAGS:
            problems.append(f"{where}: tags {tags} are not one of the domains")
        operation_id = op.get("operationId", "")
        if not tags or not operation_id.startswith(f"{tags[0]}-") or operation_id in seen_ids:
            problems.append(f"{where}: operation id {operation_id!r} is not stable and unique")
        seen_ids.add(operation_id)

        responses = op.get("responses", {})
        errors = {code: r for code, r in responses.items() if code[0] in "45"}
        if not errors:
            problems.append(f"{where}: no documented error response")
        for code, response in errors.items():
            ref = response.get("content", {}).get("application/json", {}).get("schema", {})
            if ref.get("$ref") != ERROR_REF:
                problems.append(f"{where}: {code} is not documented as ErrorResponse")
        successes = {code: r for code, r in responses.items() if code[0] == "2"}
        if not successes:
            problems.append(f"{where}: no success response")
        for code, response in successes.items():
            content = response.get("content", {})
            if code == "204":
                if content:
                    problems.append(f"{where}: 204 documents a body")
                continue
            if not content or not all(media.get("schema") for media in content.values()):
                problems.append(f"{where}: {code} has no response model")
            json_body = content.get("application/json")
            if json_body and not _has_examples(schema, json_body["schema"]):
                problems.append(f"{where}: {code} response schema has no examples")

        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body and not _has_examples(schema, body["schema"]):
            problems.append(f"{where}: request body has no examples")
    assert not problems, "\n".join(problems)


def test_security_schemes(schema: dict[str, Any]) -> None:
    schemes = schema["components"]["securitySchemes"]
    assert schemes["OAuth2PasswordBearer"] == {
        "type": "oauth2",
        "flows": {"password": {"scopes": {}, "tokenUrl": "/api/v1/auth/token"}},
    }
    assert schemes["APIKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    unsecured = []
    for method, path, op in _operations(schema):
        names = {name for requirement in op.get("security", []) for name in requirement}
        if op["operationId"] in PUBLIC_OPERATIONS:
            assert not names, f"{method} {path} is public but declares {names}"
        elif "OAuth2PasswordBearer" not in names:
            unsecured.append(f"{method} {path}")
    assert unsecured == []
    # API keys are accepted wherever a bearer token is, except where a user session is needed.
    with_key = [op for _, _, op in _operations(schema) if "APIKeyHeader" in str(op.get("security"))]
    assert len(with_key) > 20


def test_fastapi_default_validation_error_is_not_documented(schema: dict[str, Any]) -> None:
    text = json.dumps(schema)
    assert "HTTPValidationError" not in text
    assert '"detail"' not in text


def _api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers
            yield from _api_routes(route.original_router.routes)


def test_examples_are_valid_for_their_models() -> None:
    app = create_app(contract_settings())
    models: set[type[BaseModel]] = set()
    for route in _api_routes(app.routes):
        candidates = [route.response_model]
        candidates += [p.field_info.annotation for p in route.dependant.body_params]
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                models.add(candidate)
    app.state.engine.dispose()
    checked = 0
    for model in sorted(models, key=lambda m: m.__name__):
        extra = model.model_config.get("json_schema_extra")
        examples = extra.get("examples", []) if isinstance(extra, dict) else []
        for example in examples:
            model.model_validate(example)  # raises with the model's name when it drifts
            checked += 1
    assert checked >= 20


def test_cli_check_and_write(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "NLSQL_DATA_DIR": str(tmp_path / "data")}
    stale = tmp_path / "openapi.json"
    stale.write_text("{}\n", encoding="utf-8")

    def nlsql(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "backend.cli", "openapi", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = nlsql("--out", str(stale), "--check")
    assert refused.returncode == 1
    assert "run `nlsql openapi`" in refused.stderr
    assert stale.read_text(encoding="utf-8") == "{}\n"

    written = nlsql("--out", str(stale))
    assert written.returncode == 0, written.stderr
    assert stale.read_text(encoding="utf-8") == render_openapi()
    assert nlsql("--out", str(stale), "--check").returncode == 0
    # Building the schema touched neither the data dir nor the working directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["openapi.json"]
