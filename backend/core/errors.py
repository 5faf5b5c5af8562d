"""One error tree; every `AppError` renders as `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger("nlsql.errors")


class AppError(Exception):
    """The root of every error the platform answers on purpose."""

    status_code: int = 400
    code: str = "bad_request"
    message: str = "The request could not be processed."

    def __init__(
        self,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.details = details or {}
        self.headers = headers or {}
        super().__init__(self.message)


class BadRequest(AppError):
    status_code = 400
    code = "bad_request"


class ValidationFailed(AppError):
    status_code = 422
    code = "validation_error"
    message = "The request is not valid."


class Unauthorized(AppError):
    status_code = 401
    code = "unauthorized"
    message = "Missing or invalid credentials."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("WWW-Authenticate", "Bearer")


class Forbidden(AppError):
    status_code = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFound(AppError):
    status_code = 404
    code = "not_found"
    message = "Not found."


class Conflict(AppError):
    status_code = 409
    code = "conflict"
    message = "The request conflicts with the current state."


class RateLimited(AppError):
    status_code = 429
    code = "rate_limited"
    message = "Too many requests."

    def __init__(
        self, message: str | None = None, *, retry_after_seconds: int | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        if retry_after_seconds is not None:
            self.headers["Retry-After"] = str(max(1, int(retry_after_seconds)))
            self.details.setdefault("retry_after_seconds", max(1, int(retry_after_seconds)))


class UpstreamError(AppError):
    """The user's database or an LLM provider failed."""

    status_code = 502
    code = "upstream_error"
    message = "An upstream service failed."


class UpstreamTimeout(AppError):
    """The user's database or an LLM provider did not answer in time."""

    status_code = 504
    code = "upstream_timeout"
    message = "An upstream service timed out."


class ServiceUnavailable(AppError):
    status_code = 503
    code = "service_unavailable"
    message = "The service is not ready."


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorResponse(BaseModel):
    """The one error shape of the API."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "not_found",
                        "message": "Not found.",
                        "details": {},
                    }
                }
            ]
        }
    )

    error: ErrorBody


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    return JSONResponse(body, status_code=status_code, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def _jsonable_validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    cleaned = []
    for err in exc.errors():
        cleaned.append(
            {
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "")),
            }
        )
    return cleaned


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # Input values are left out on purpose: a rejected body may hold a password.
        return error_response(
            422,
            "validation_error",
            "The request is not valid.",
            {"errors": _jsonable_validation_errors(exc)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error."
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Starlette answers an unhandled error outside the middleware stack, so the request id
        # is set here too: the operator finds the log line from the id the client saw.
        request_id = getattr(request.state, "request_id", None)
        principal = getattr(request.state, "principal", None)
        logger.exception(
            "unexpected error on %s %s",
            request.method,
            request.url.path,
            extra={
                "request_id": request_id,
                "user_id": principal.user.id if principal is not None else None,
            },
        )
        details = {"request_id": request_id} if request_id else {}
        headers = {"X-Request-ID": request_id} if request_id else None
        return error_response(
            500, "internal_error", "An unexpected error occurred.", details, headers=headers
        )
