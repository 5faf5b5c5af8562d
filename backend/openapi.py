"""The API contract: the OpenAPI document of the app, rendered deterministically.

`nlsql openapi` writes it to `frontend_contract/openapi.json`; the contract tests compare the
committed file with what the app produces, so the two never drift apart.
"""

from __future__ import annotations

import json
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


_EVERY_OPERATION = {
    "422": "The request is not valid (also: NUL or a lone surrogate in any text, a number "
    "beyond 64 bits, JSON nested too deeply).",
    "503": "The platform database is busy (`database_busy`); retry after `Retry-After` seconds.",
}
_WITH_A_BODY = {"413": "The request body is larger than the server accepts (`payload_too_large`)."}


def middleware_responses(schema: dict[str, Any]) -> dict[str, Any]:
    """Document the answers every route can give before it runs (`core.hygiene`, the busy
    platform database), in the one error shape."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            extra = dict(_EVERY_OPERATION)
            if "requestBody" in operation:
                extra.update(_WITH_A_BODY)
            for status, description in extra.items():
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": {"$ref": _ERROR_REF}}},
                    },
                )
    return schema


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` (and so /openapi.json and /docs) describe the one error shape."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = middleware_responses(one_error_shape(original()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
