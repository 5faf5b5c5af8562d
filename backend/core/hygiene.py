"""Input hygiene: what text the platform accepts, and what text it stores.

In: every request passes `InputHygieneMiddleware` before routing. It refuses with a 422 any
NUL character or lone UTF-16 surrogate in the path, the query string, a header, a JSON body or
a form body (PostgreSQL's text types cannot hold NUL, and a lone surrogate cannot be encoded),
JSON numbers that are not finite or do not fit 64 bits, JSON nested deeper than a bound, and
answers 413 to a body larger than the configured limit. One mechanism, in front of every route,
so a new endpoint is covered without remembering to.

Out: text that comes from elsewhere (an LLM provider, a user's database, a driver's error
message) is stored through `core.text`, which replaces what cannot be stored; the platform
engine applies it to every statement's parameters (`core.db`), so recording an ask never fails
on the text it records.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import policy as email_policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.core.errors import error_response
from backend.core.text import text_problem

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
DEFAULT_MAX_JSON_DEPTH = 32
JSON_BODY_KEY = "nlsql.json_body"
"""The scope key under which the middleware leaves an `application/json` body it parsed and
accepted, as a 1-tuple (a route may use it instead of parsing the same bytes again)."""


# --- the request side ---


class _Refused(Exception):
    def __init__(self, loc: list[str], kind: str, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.kind = kind
        self.message = message


_TEXT_MESSAGES = {
    "nul_character": "Text must not contain NUL characters.",
    "lone_surrogate": "Text must not contain lone UTF-16 surrogates.",
    "invalid_utf8": "Text must be UTF-8.",
}


def _check_text(value: str, loc: list[str]) -> None:
    problem = text_problem(value)
    if problem is not None:
        raise _Refused(loc, problem, _TEXT_MESSAGES[problem])


def _refuse_constant(name: str) -> Any:
    raise _Refused(["body"], "number_not_finite", f"{name} is not a valid JSON number here.")


def _walk_json(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, list[str], int]] = [(value, ["body"], 0)]
    while stack:
        item, loc, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, loc)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise _Refused(loc, "number_too_large", "Integers must fit in 64 bits.")
        elif isinstance(item, float):
            if item != item or item in (float("inf"), float("-inf")):
                raise _Refused(loc, "number_not_finite", "Numbers must be finite.")
        elif isinstance(item, (dict, list)):
            if depth >= max_depth:
                raise _Refused(
                    loc, "too_deep", f"JSON must not be nested deeper than {max_depth} levels."
                )
            children: Iterator[tuple[str, Any]] = (
                iter(item.items()) if isinstance(item, dict) else enumerate_str(item)
            )
            for key, child in children:
                _check_text(key, [*loc, key])
                stack.append((child, [*loc, key], depth + 1))


def enumerate_str(items: list[Any]) -> Iterator[tuple[str, Any]]:
    for index, item in enumerate(items):
        yield str(index), item


def _check_json_body(body: bytes, max_depth: int) -> tuple[Any] | None:
    """The parsed body (a 1-tuple) once accepted; None for a body that is not JSON."""
    try:
        parsed = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise _Refused(
            ["body"], "too_deep", f"JSON must not be nested deeper than {max_depth} levels."
        ) from exc
    except ValueError:
        return None  # not JSON: the route answers its own `json_invalid` 422
    _walk_json(parsed, max_depth)
    return (parsed,)


def json_body(scope: Scope) -> tuple[Any] | None:
    """The `application/json` body of this request as the middleware parsed and accepted it (a
    1-tuple: the body may be `null`), or None (no such body, or not JSON)."""
    parsed: tuple[Any] | None = scope.get(JSON_BODY_KEY)
    return parsed


def _check_pairs(pairs: list[tuple[str, str]], where: str) -> None:
    for name, value in pairs:
        _check_text(name, [where, name])
        _check_text(value, [where, name])


def _check_head(scope: Scope) -> None:
    _check_text(scope.get("path", ""), ["path"])
    query = scope.get("query_string", b"").decode("latin-1")
    if query:
        _check_pairs(parse_qsl(query, keep_blank_values=True), "query")
    for name, value in scope.get("headers", []):
        if b"\x00" in value:
            raise _Refused(
                ["header", name.decode("latin-1")], "nul_character", _TEXT_MESSAGES["nul_character"]
            )


def _content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return str(value.decode("latin-1").split(";", 1)[0].strip().lower())
    return ""


def _raw_content_type(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return str(value.decode("latin-1"))
    return ""


def _check_multipart(content_type: str, body: bytes) -> None:
    """The text fields of a multipart form (not its files: an upload's bytes are its route's to
    read). A body the parser cannot split is left to the route, which answers its own 400."""
    message = BytesParser(policy=email_policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return
    for part in message.iter_parts():
        if part.get_filename() is not None:
            continue
        name = part.get_param("name", header="content-disposition") or ""
        field = str(name)
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            if b"\x00" in payload:
                raise _Refused(["form", field], "nul_character", _TEXT_MESSAGES["nul_character"])
            try:
                # Strict UTF-8 also refuses an encoded lone surrogate (b"\xed\xa0\x80"); the
                # form parser would otherwise read such bytes as Latin-1 and store mojibake.
                payload.decode("utf-8")
            except UnicodeDecodeError:
                raise _Refused(
                    ["form", field], "invalid_utf8", _TEXT_MESSAGES["invalid_utf8"]
                ) from None
        _check_text(field, ["form", field])


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _refusal_response(exc: _Refused) -> JSONResponse:
    return error_response(
        422,
        "validation_error",
        "The request is not valid.",
        {"errors": [{"loc": exc.loc, "msg": exc.message, "type": exc.kind}]},
    )


def _too_large_response(limit: int) -> JSONResponse:
    return error_response(
        413,
        "payload_too_large",
        f"The request body is larger than {limit:,} bytes.",
        {"max_body_bytes": limit},
    )


class InputHygieneMiddleware:
    """Pure ASGI middleware in front of every route (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_json_depth: int = DEFAULT_MAX_JSON_DEPTH,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            _check_head(scope)
        except _Refused as exc:
            await _refusal_response(exc)(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _too_large_response(self.max_body_bytes)(scope, receive, send)
            return
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS") and not declared:
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                # The client went away before the body was complete.
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await _too_large_response(self.max_body_bytes)(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            self._check_body(scope, body)
        except _Refused as exc:
            await _refusal_response(exc)(scope, receive, send)
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _check_body(self, scope: Scope, body: bytes) -> None:
        if not body:
            return
        content_type = _content_type(scope)
        # FastAPI reads a body without a content type as JSON, so it is checked as JSON.
        if content_type in ("", "application/json") or content_type.endswith("+json"):
            parsed = _check_json_body(body, self.max_json_depth)
            if parsed is not None and content_type == "application/json":
                scope[JSON_BODY_KEY] = parsed
        elif content_type == "application/x-www-form-urlencoded":
            _check_pairs(
                parse_qsl(body.decode("latin-1"), keep_blank_values=True, encoding="utf-8"),
                "form",
            )
        elif content_type == "multipart/form-data":
            _check_multipart(_raw_content_type(scope), body)
