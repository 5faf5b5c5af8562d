"""The API contract: the OpenAPI document of the app, rendered deterministically.

`nlsql openapi` writes it to `frontend_contract/openapi.json`; the contract tests compare the
committed file with what the app produces, so the two never drift apart.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from backend.core.config import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACT_DIR = REPO_ROOT / "frontend_contract"
OPENAPI_PATH = CONTRACT_DIR / "openapi.json"

# Fixed, obviously fake values: building the schema must not read or write the user's secrets.
_DUMMY_JWT_SECRET = "openapi-generation-only-" + "x" * 32  # noqa: S105 - never used to sign
_DUMMY_FERNET_KEY = "b3BlbmFwaS1nZW5lcmF0aW9uLW9ubHktMDAwMDAwMDA="  # 32 bytes, base64


def contract_settings() -> Settings:
    """Settings that touch nothing on disk: an in-memory database and fixed dummy secrets."""
    return Settings(
        _env_file=None,
        database_url="sqlite://",
        jwt_secret=SecretStr(_DUMMY_JWT_SECRET),
        fernet_keys=[SecretStr(_DUMMY_FERNET_KEY)],
        run_migrations_on_start=False,
        record_request_metrics=False,
        production=False,
    )


def build_openapi() -> dict[str, Any]:
    from backend.main import create_app

    app = create_app(contract_settings())
    try:
        return app.openapi()
    finally:
        app.state.engine.dispose()


def render_openapi(schema: dict[str, Any] | None = None) -> str:
    """Sorted keys, 2-space indent, a trailing newline: the same app gives the same bytes."""
    document = build_openapi() if schema is None else schema
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


_FASTAPI_422 = "#/components/schemas/HTTPValidationError"
_ERROR_REF = "#/components/schemas/ErrorResponse"


def one_error_shape(schema: dict[str, Any]) -> dict[str, Any]:
    """Point FastAPI's default 422 answers at `ErrorResponse`, the shape the handler really sends.

    FastAPI documents request validation failures as `HTTPValidationError` (`{"detail": [...]}`),
    but `install_error_handlers` renders them as `{"error": {...}}` like every other error.
    """
    components = schema.get("components", {}).get("schemas", {})
    if "ErrorResponse" not in components:
        return schema
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                for media in response.get("content", {}).values():
                    if media.get("schema", {}).get("$ref") == _FASTAPI_422:
                        media["schema"] = {"$ref": _ERROR_REF}
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    return schema


def document_common_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the statuses every API operation of a kind can answer, from one shared mapping.

    Routes declare what is theirs (404, 409, 502, ...); what follows from how the platform
    works is added here so that no operation forgets it: 503 for every API operation (a busy
    platform database), 401/403 where credentials are needed, 422 where anything is read from
    the request, 400 and 413 where a body is (not parseable, too large), 400 for lists (a page
    cursor this API did not hand out).
    """
    from backend.core.errors import ERROR_DESCRIPTIONS

    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            # Every route answers 422 for NUL, lone surrogates, huge numbers or deep JSON
            # (`core.hygiene` runs before it) and 503 when the platform database is busy.
            codes = {422, 503}
            if not path.startswith("/api/"):
                responses = operation.setdefault("responses", {})
                for code in sorted(codes):
                    responses.setdefault(str(code), _error_response(ERROR_DESCRIPTIONS[code]))
                continue
            if operation.get("security"):
                codes |= {401, 403}
            if operation.get("parameters") or operation.get("requestBody"):
                codes.add(422)
            if operation.get("requestBody"):
                codes |= {400, 413}
            if any(p.get("name") == "cursor" for p in operation.get("parameters", [])):
                codes.add(400)
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                # A route that named a status without saying why gets the shared description.
                if status.isdigit() and int(status) in ERROR_DESCRIPTIONS:
                    generic = {HTTPStatus(int(status)).phrase, "Validation Error"}
                    if response.get("description") in generic:
                        response["description"] = ERROR_DESCRIPTIONS[int(status)]
            for code in sorted(codes):
                responses.setdefault(str(code), _error_response(ERROR_DESCRIPTIONS[code]))
    return schema


_INT64 = (-(2**63), 2**63 - 1)


def bound_integers(schema: dict[str, Any]) -> dict[str, Any]:
    """Give every integer without bounds the 64-bit range: `core.hygiene` refuses larger
    numbers anywhere in a request, and the contract says so where it can."""

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "integer":
                node.setdefault("minimum", _INT64[0])
                node.setdefault("maximum", _INT64[1])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(schema)
    return schema


def _error_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
    }


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json and /docs) describe the one error shape."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = bound_integers(document_common_errors(one_error_shape(original())))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
