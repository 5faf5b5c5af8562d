"""One error tree; every `AppError` renders as `{"error": {"code", "message", "details"}}`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

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


class DatabaseBusy(ServiceUnavailable):
    """The platform database is locked or out of connections for longer than we wait."""

    code = "database_busy"
    message = "The platform database is busy; try again shortly."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", str(DATABASE_BUSY_RETRY_AFTER_SECONDS))
        self.details.setdefault("retry_after_seconds", DATABASE_BUSY_RETRY_AFTER_SECONDS)


DATABASE_BUSY_RETRY_AFTER_SECONDS = 2


class DatabaseConnectionLost(ServiceUnavailable):
    """The platform database ended a connection while a request was using it (a restart, a
    failover, an administrator's `pg_terminate_backend`). The pool has dropped it already, so
    the same request tried again gets a fresh connection."""

    code = "database_connection_lost"
    message = "The connection to the platform database was lost; try again."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.headers.setdefault("Retry-After", "1")
        self.details.setdefault("retry_after_seconds", 1)


# SQLite's SQLITE_BUSY and SQLITE_LOCKED (primary result codes).
_SQLITE_BUSY_CODES = frozenset({5, 6})
# PostgreSQL: lock_not_available, serialization_failure, deadlock_detected,
# too_many_connections, cannot_connect_now.
_POSTGRES_BUSY_STATES = frozenset({"55P03", "40001", "40P01", "53300", "57P03"})
_POSTGRES_BUSY_CONNECT_MESSAGES = (
    "FATAL:  too many connections for role",
    "FATAL:  sorry, too many clients already",
    "FATAL:  remaining connection slots are reserved",
    "FATAL:  the database system is starting up",
)


def is_database_busy(exc: BaseException) -> bool:
    """Whether `exc` means the platform database is busy (locked, contended, out of
    connections) rather than broken: such a request may simply be tried again."""
    if isinstance(exc, SQLAlchemyTimeoutError):
        return True  # the connection pool stayed exhausted for its whole timeout
    if not isinstance(exc, DBAPIError):
        return False
    original = exc.orig
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return (sqlite_code & 0xFF) in _SQLITE_BUSY_CODES
    sqlstate = getattr(original, "sqlstate", None)
    if isinstance(sqlstate, str):
        return sqlstate in _POSTGRES_BUSY_STATES
    # A refused connection carries no SQLSTATE through libpq, only the server's FATAL text:
    # these are PostgreSQL's exact words for 53300 (too many connections) and 57P03.
    message = str(original)
    return any(words in message for words in _POSTGRES_BUSY_CONNECT_MESSAGES)


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


ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Bad input the schema cannot rule out: a body that does not parse, a page cursor this "
    "API did not hand out, a time range that ends before it starts.",
    401: "No credentials, or credentials that are not valid (expired, revoked, inactive user).",
    403: "The caller may not do this (role, API key scope or connection list).",
    404: "Not found, or not the caller's (another user's objects are never revealed).",
    409: "Conflicts with the current state.",
    413: "The request body is larger than the server accepts (`payload_too_large`).",
    422: "The request is not valid: the `details` say which field and why (also: NUL or a lone "
    "surrogate in any text, a number beyond 64 bits, JSON nested too deeply).",
    429: "A quota or rate limit was reached; `Retry-After` says when to try again.",
    502: "The user's database or the LLM provider failed.",
    503: "The platform is busy or not ready (for example its database is locked); retry after "
    "`Retry-After` seconds.",
    504: "The user's database or the LLM provider did not answer in time.",
}


def error_responses(*codes: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status in the one error shape, with its shared description.

    A status may get a more precise description by keyword: `error_responses(400, s400="...")`.
    """
    return {
        code: {
            "model": ErrorResponse,
            "description": descriptions.get(f"s{code}", ERROR_DESCRIPTIONS.get(code, "Error.")),
        }
        for code in codes
    }


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


CredentialsCheck = Callable[[Request], Awaitable["AppError | None"]]
"""`app.state.credentials_check`: the error a request's credentials earn on its route (None
when they hold or the route is open), asked before a body's validation error is answered."""

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path.

    Starlette answers a method mismatch from the first route whose path matches, so its `Allow`
    named only that route's methods when GET and POST of one path are separate routes.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] == Match.FULL for r in routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Credentials before the body: a caller who is refused anyway gets 401, not 422.
        check: CredentialsCheck | None = getattr(request.app.state, "credentials_check", None)
        refusal = await check(request) if check is not None else None
        if refusal is not None:
            return await _app_error(request, refusal)
        # Input values are left out on purpose: a rejected body may hold a password.
        return error_response(
            422,
            "validation_error",
            "The request is not valid.",
            {"errors": _jsonable_validation_errors(exc)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "HTTP error."
        headers = dict(exc.headers) if exc.headers else {}
        if exc.status_code == 405:
            headers["Allow"] = ", ".join(allowed_methods(request))
        return error_response(exc.status_code, code, message, headers=headers or None)

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, exc: SQLAlchemyError) -> JSONResponse:
        if is_database_busy(exc):
            logger.warning(
                "platform database busy on %s %s: %s", request.method, request.url.path, exc
            )
            busy = DatabaseBusy()
            return error_response(
                busy.status_code, busy.code, busy.message, busy.details, busy.headers
            )
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            logger.warning(
                "platform database connection lost on %s %s: %s",
                request.method,
                request.url.path,
                exc,
            )
            lost = DatabaseConnectionLost()
            return error_response(
                lost.status_code, lost.code, lost.message, lost.details, lost.headers
            )
        return await _unexpected(request, exc)

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
