"""The one HTTP loop of the LLM generators: POST JSON with a timeout and bounded retries.

Retries 429, 5xx and connection failures with exponential back-off (a `Retry-After` header wins
when it asks for longer); other 4xx answers fail at once. A read timeout is not retried: the
provider may still be working (and billing) on the first request, and the caller has already
waited the full timeout. No error message or log line carries a request header, so the API key
never leaves this module.
"""

from __future__ import annotations

import email.utils
import functools
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from backend.nl2sql.errors import LlmProviderError, LlmReplyInvalid, LlmTimeout

logger = logging.getLogger("nlsql.llm")

DEFAULT_MAX_RETRIES = 2
_RETRYABLE_STATUS = frozenset({408, 409, 429})
_PROVIDER_MESSAGE_MAX_CHARS = 300
_KEYISH_RE = re.compile(r"[A-Za-z0-9_\-]{4,}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = DEFAULT_MAX_RETRIES
    """Attempts after the first one."""
    backoff_base_seconds: float = 0.5
    """The first back-off; each later one doubles."""
    backoff_max_seconds: float = 8.0
    max_retry_after_seconds: float = 30.0
    """A `Retry-After` longer than this is not waited for: the call fails at once."""
    max_reply_bytes: int = 4 * 1024 * 1024
    """A reply body larger than this is not read further: the call fails as invalid."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    status_code: int
    body: dict[str, Any]
    attempts: int


def is_retryable_status(status_code: int) -> bool:
    return status_code in _RETRYABLE_STATUS or status_code >= 500


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    """`text` with every secret masked, and every word of 4+ characters taken from one
    (providers echo keys partially: "sk-abc1...9xyz")."""
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        text = _KEYISH_RE.sub(functools.partial(_mask_if_part_of, secret), text)
    return text


def _mask_if_part_of(secret: str, match: re.Match[str]) -> str:
    return "***" if match.group(0) in secret else match.group(0)


def _provider_message(raw: bytes, secrets: tuple[str, ...]) -> str | None:
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or body.get("message")
    if not isinstance(message, str) or not message.strip():
        return None
    return scrub(message.strip(), secrets)[:_PROVIDER_MESSAGE_MAX_CHARS]


def post_json(
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str],
    payload: Mapping[str, Any],
    timeout_seconds: float,
    policy: RetryPolicy,
    secrets: tuple[str, ...] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> HttpReply:
    """POST `payload` and return the decoded JSON object of a 2xx answer.

    Raises `LlmTimeout`, `LlmProviderError` (after the retries, or at once on another 4xx) or
    `LlmReplyInvalid` (a 2xx whose body is not a JSON object).
    """
    details: dict[str, Any] = {"provider": provider}
    last_error: Exception | None = None
    attempts = 0
    with httpx.Client(timeout=httpx.Timeout(timeout_seconds)) as client:
        for attempt in range(policy.max_retries + 1):
            attempts = attempt + 1
            retry_after: float | None = None
            try:
                status_code, response_headers, raw = _post_bounded(
                    client,
                    url,
                    payload=payload,
                    headers=headers,
                    max_bytes=policy.max_reply_bytes,
                    deadline=time.monotonic() + timeout_seconds,
                    provider=provider,
                )
            except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout) as exc:
                raise LlmTimeout(
                    f"The {provider} provider did not answer within {timeout_seconds:g} s.",
                    details={**details, "attempts": attempts, "timeout_seconds": timeout_seconds},
                ) from exc
            except httpx.TransportError as exc:
                last_error = exc
                failure = type(exc).__name__
            else:
                if 200 <= status_code < 300:
                    return HttpReply(status_code, _decode_body(raw, provider), attempts)
                failure = f"HTTP {status_code}"
                provider_message = _provider_message(raw, secrets)
                if not is_retryable_status(status_code):
                    raise LlmProviderError(
                        f"The {provider} provider refused the request ({failure})"
                        + (f": {provider_message}" if provider_message else "."),
                        details={**details, "status_code": status_code, "attempts": attempts},
                    )
                last_error = LlmProviderError(
                    f"The {provider} provider failed ({failure})"
                    + (f": {provider_message}" if provider_message else "."),
                    details={**details, "status_code": status_code, "attempts": attempts},
                )
                retry_after = parse_retry_after(response_headers.get("retry-after"))
            if attempt == policy.max_retries:
                break
            delay = min(policy.backoff_base_seconds * 2**attempt, policy.backoff_max_seconds)
            if retry_after is not None:
                if retry_after > policy.max_retry_after_seconds:
                    if isinstance(last_error, LlmProviderError):
                        last_error.details["retry_after_seconds"] = retry_after
                    break
                delay = max(delay, retry_after)
            logger.warning(
                "%s call failed (%s), attempt %d of %d; retrying in %.2f s",
                provider,
                failure,
                attempts,
                policy.max_retries + 1,
                delay,
            )
            sleep(delay)
    if isinstance(last_error, LlmProviderError):
        last_error.details["attempts"] = attempts
        raise last_error
    if isinstance(last_error, httpx.TimeoutException):
        raise LlmTimeout(
            f"The {provider} provider could not be reached within {timeout_seconds:g} s.",
            details={**details, "attempts": attempts, "timeout_seconds": timeout_seconds},
        ) from last_error
    raise LlmProviderError(
        f"The {provider} provider could not be reached ({type(last_error).__name__}).",
        details={**details, "attempts": attempts},
    ) from last_error


def _post_bounded(
    client: httpx.Client,
    url: str,
    *,
    payload: Mapping[str, Any],
    headers: Mapping[str, str],
    max_bytes: int,
    deadline: float,
    provider: str,
) -> tuple[int, httpx.Headers, bytes]:
    """POST and read the answer, but never more than `max_bytes` of it nor past `deadline`
    (a provider trickling bytes would otherwise never hit the per-read timeout)."""
    with client.stream("POST", url, json=dict(payload), headers=dict(headers)) as response:
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise LlmReplyInvalid(
                    f"The {provider} provider's answer is larger than {max_bytes:,} bytes.",
                    details={"provider": provider, "max_reply_bytes": max_bytes},
                )
            if time.monotonic() > deadline:
                raise httpx.ReadTimeout("the answer did not arrive in time")
            chunks.append(chunk)
        return response.status_code, response.headers, b"".join(chunks)


def _decode_body(raw: bytes, provider: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, json.JSONDecodeError) as exc:
        raise LlmReplyInvalid(
            f"The {provider} provider answered with a body that is not JSON.",
            details={"provider": provider},
        ) from exc
    if not isinstance(body, dict):
        raise LlmReplyInvalid(
            f"The {provider} provider answered with JSON that is not an object.",
            details={"provider": provider},
        )
    return body
