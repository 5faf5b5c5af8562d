"""The one HTTP loop of the LLM generators: POST JSON with a timeout and bounded retries.

Retries 429, 5xx and connection failures with exponential back-off (a `Retry-After` header wins
when it asks for longer); other 4xx answers fail at once. A read timeout is not retried: the
provider may still be working (and billing) on the first request, and the caller has already
waited the full timeout. No error message or log line carries a request header, so the API key
never leaves this module.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import re
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import certifi
import httpx
import yarl
from aiohttp.helpers import get_env_proxy_for_url

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
    except (ValueError, RecursionError):  # RecursionError: JSON nested past the parser's depth
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


@dataclass(frozen=True, slots=True)
class ProviderCall:
    """One provider request, sent blocking (`send`) or from an event loop (`send_async`)."""

    url: str
    provider: str
    headers: Mapping[str, str]
    payload: Mapping[str, Any]
    timeout_seconds: float
    policy: RetryPolicy
    secrets: tuple[str, ...] = ()

    def send(self) -> HttpReply:
        return post_json(
            self.url,
            provider=self.provider,
            headers=self.headers,
            payload=self.payload,
            timeout_seconds=self.timeout_seconds,
            policy=self.policy,
            secrets=self.secrets,
        )

    async def send_async(self) -> HttpReply:
        return await post_json_async(
            self.url,
            provider=self.provider,
            headers=self.headers,
            payload=self.payload,
            timeout_seconds=self.timeout_seconds,
            policy=self.policy,
            secrets=self.secrets,
        )


class _Attempts:
    """The retry policy applied to one call, shared by the blocking and the async loop."""

    def __init__(
        self,
        *,
        provider: str,
        timeout_seconds: float,
        policy: RetryPolicy,
        secrets: tuple[str, ...],
    ) -> None:
        self.provider = provider
        self.timeout_seconds = timeout_seconds
        self.policy = policy
        self.secrets = secrets
        self.details: dict[str, Any] = {"provider": provider}
        self.last_error: Exception | None = None
        self.attempts = 0
        self.failure = ""
        self.retry_after: float | None = None

    def start(self, attempt: int) -> None:
        self.attempts = attempt + 1
        self.retry_after = None

    def timed_out(self, exc: Exception) -> LlmTimeout:
        return LlmTimeout(
            f"The {self.provider} provider did not answer within {self.timeout_seconds:g} s.",
            details={
                **self.details,
                "attempts": self.attempts,
                "timeout_seconds": self.timeout_seconds,
            },
        )

    def transport_failed(self, exc: Exception) -> None:
        self.last_error = exc
        self.failure = type(exc).__name__

    def answered(
        self, status_code: int, headers: Mapping[str, str], raw: bytes
    ) -> HttpReply | None:
        """The reply of a 2xx; None when the status is worth retrying; raises on another 4xx."""
        if 200 <= status_code < 300:
            return HttpReply(status_code, _decode_body(raw, self.provider), self.attempts)
        self.failure = f"HTTP {status_code}"
        provider_message = _provider_message(raw, self.secrets)
        details = {**self.details, "status_code": status_code, "attempts": self.attempts}
        if not is_retryable_status(status_code):
            raise LlmProviderError(
                f"The {self.provider} provider refused the request ({self.failure})"
                + (f": {provider_message}" if provider_message else "."),
                details=details,
            )
        self.last_error = LlmProviderError(
            f"The {self.provider} provider failed ({self.failure})"
            + (f": {provider_message}" if provider_message else "."),
            details=details,
        )
        self.retry_after = parse_retry_after(headers.get("retry-after"))
        return None

    def delay_before_retry(self, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None when the call should give up."""
        policy = self.policy
        if attempt == policy.max_retries:
            return None
        delay: float = min(policy.backoff_base_seconds * 2**attempt, policy.backoff_max_seconds)
        if self.retry_after is not None:
            if self.retry_after > policy.max_retry_after_seconds:
                if isinstance(self.last_error, LlmProviderError):
                    self.last_error.details["retry_after_seconds"] = self.retry_after
                return None
            delay = max(delay, self.retry_after)
        logger.warning(
            "%s call failed (%s), attempt %d of %d; retrying in %.2f s",
            self.provider,
            self.failure,
            self.attempts,
            policy.max_retries + 1,
            delay,
        )
        return delay

    def final_error(self) -> Exception:
        last_error = self.last_error
        if isinstance(last_error, LlmProviderError):
            last_error.details["attempts"] = self.attempts
            return last_error
        if isinstance(last_error, httpx.TimeoutException | TimeoutError):
            error: Exception = LlmTimeout(
                f"The {self.provider} provider could not be reached within "
                f"{self.timeout_seconds:g} s.",
                details={
                    **self.details,
                    "attempts": self.attempts,
                    "timeout_seconds": self.timeout_seconds,
                },
            )
        else:
            error = LlmProviderError(
                f"The {self.provider} provider could not be reached ({type(last_error).__name__}).",
                details={**self.details, "attempts": self.attempts},
            )
        error.__cause__ = last_error
        return error


_TIMEOUTS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout)


class _BoundedReply:
    """A reply body read chunk by chunk, never more than `max_bytes` of it nor past `deadline`
    (a provider trickling bytes would otherwise never hit the per-read timeout)."""

    def __init__(self, provider: str, max_bytes: int, deadline: float) -> None:
        self.provider = provider
        self.max_bytes = max_bytes
        self.deadline = deadline
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise LlmReplyInvalid(
                f"The {self.provider} provider's answer is larger than {self.max_bytes:,} bytes.",
                details={"provider": self.provider, "max_reply_bytes": self.max_bytes},
            )
        if time.monotonic() > self.deadline:
            raise httpx.ReadTimeout("the answer did not arrive in time")
        self.chunks.append(chunk)

    def body(self) -> bytes:
        return b"".join(self.chunks)


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
    """POST `payload` and return the decoded JSON object of a 2xx answer, blocking.

    Raises `LlmTimeout`, `LlmProviderError` (after the retries, or at once on another 4xx) or
    `LlmReplyInvalid` (a 2xx whose body is not a JSON object).
    """
    calls = _Attempts(
        provider=provider, timeout_seconds=timeout_seconds, policy=policy, secrets=secrets
    )
    client = _blocking_client(url)
    for attempt in range(policy.max_retries + 1):
        calls.start(attempt)
        try:
            deadline = time.monotonic() + timeout_seconds
            with client.stream(
                "POST", url, json=dict(payload), headers=dict(headers), timeout=timeout_seconds
            ) as response:
                reader = _BoundedReply(provider, policy.max_reply_bytes, deadline)
                for chunk in response.iter_bytes():
                    reader.add(chunk)
                answer = response.status_code, response.headers, reader.body()
        except _TIMEOUTS as exc:
            raise calls.timed_out(exc) from exc
        except httpx.TransportError as exc:
            calls.transport_failed(exc)
        else:
            reply = calls.answered(*answer)
            if reply is not None:
                return reply
        delay = calls.delay_before_retry(attempt)
        if delay is None:
            break
        sleep(delay)
    raise calls.final_error()


async def post_json_async(
    url: str,
    *,
    provider: str,
    headers: Mapping[str, str],
    payload: Mapping[str, Any],
    timeout_seconds: float,
    policy: RetryPolicy,
    secrets: tuple[str, ...] = (),
) -> HttpReply:
    """`post_json` without blocking: waiting holds no thread, only a pooled connection of the
    event loop's shared aiohttp session.

    aiohttp rather than httpx here: httpcore's async pool rescans every pooled connection (a
    socket poll each) twice per request, so with 64 calls waiting at once each call cost
    ~15 ms of the event loop's time on a loaded 2-core machine (py-spy), a third of a slow
    ask's whole platform cost; aiohttp's connector hands out a connection in constant time.
    The retry policy, bounds and errors are the blocking path's."""
    calls = _Attempts(
        provider=provider, timeout_seconds=timeout_seconds, policy=policy, secrets=secrets
    )
    session = _async_session()
    proxy, proxy_auth = env_proxy(_origin(url))
    timeout = aiohttp.ClientTimeout(
        total=None, connect=timeout_seconds, sock_connect=timeout_seconds, sock_read=timeout_seconds
    )
    for attempt in range(policy.max_retries + 1):
        calls.start(attempt)
        try:
            deadline = time.monotonic() + timeout_seconds
            async with session.post(
                url,
                json=dict(payload),
                headers=dict(headers),
                timeout=timeout,
                proxy=proxy,
                proxy_auth=proxy_auth,
            ) as response:
                reader = _BoundedReply(provider, policy.max_reply_bytes, deadline)
                async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                    reader.add(chunk)
                answer = response.status, response.headers, reader.body()
        except (aiohttp.SocketTimeoutError, httpx.ReadTimeout) as exc:
            # No answer within the timeout (or the body past its deadline): not retried.
            raise calls.timed_out(exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Refused, reset, not connected in time, a malformed HTTP answer: retried.
            calls.transport_failed(exc)
        else:
            reply = calls.answered(*answer)
            if reply is not None:
                return reply
        delay = calls.delay_before_retry(attempt)
        if delay is None:
            break
        await asyncio.sleep(delay)
    raise calls.final_error()


_CHUNK_BYTES = 64 * 1024


# Provider connections are pooled and reused: one blocking client per provider origin, and
# one aiohttp session per event loop (its connections belong to the loop that opened them).
POOL_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=64)
"""Connections to one provider: enough for every ask a worker may have waiting at once."""
_blocking_clients: dict[str, httpx.Client] = {}
_async_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession] = (
    weakref.WeakKeyDictionary()
)
_clients_lock = threading.Lock()


@functools.lru_cache(maxsize=256)
def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii')}"


def _blocking_client(url: str) -> httpx.Client:
    origin = _origin(url)
    with _clients_lock:
        client = _blocking_clients.get(origin)
        if client is None or client.is_closed:
            client = _blocking_clients[origin] = httpx.Client(limits=POOL_LIMITS)
        return client


@functools.lru_cache(maxsize=64)
def env_proxy(origin: str) -> tuple[str | None, aiohttp.BasicAuth | None]:
    """The proxy the environment names for a provider origin (`HTTPS_PROXY`, `NO_PROXY`, ...,
    as httpx reads them), or none; read once per origin and process.

    The session does not trust the environment itself (`trust_env`): it would then look the
    proxy up and read `~/.netrc` on every request, each on a thread of the loop's default
    executor (two thread hops per LLM call), and add netrc credentials to a provider call,
    which carries its own."""
    try:
        proxy, auth = get_env_proxy_for_url(yarl.URL(origin))
    except LookupError:
        return None, None
    return str(proxy), auth


def _async_session() -> aiohttp.ClientSession:
    """The running loop's session: at most `POOL_LIMITS.max_connections` connections, idle
    ones kept for reuse; certificates checked against certifi's roots (as httpx does); the
    environment's proxy given per call (`env_proxy`); no cookies kept (a provider's cookies
    would be shared by every caller's asks)."""
    loop = asyncio.get_running_loop()
    with _clients_lock:
        session = _async_sessions.get(loop)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=POOL_LIMITS.max_connections or 0,
                limit_per_host=0,
                ssl=ssl.create_default_context(cafile=certifi.where()),
            )
            session = _async_sessions[loop] = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar()
            )
        return session


async def warm_clients() -> None:
    """Open this event loop's provider session at start-up (its TLS context loads certifi's
    roots, tens of milliseconds of the loop's time), so the first LLM ask of a worker, inside
    the first burst, does not pay for it. Connections are still opened on first use."""
    _async_session()


async def close_clients() -> None:
    """Close the pooled provider connections of this event loop and the blocking ones (at app
    shutdown)."""
    with _clients_lock:
        session = _async_sessions.pop(asyncio.get_running_loop(), None)
        blocking = list(_blocking_clients.values())
        _blocking_clients.clear()
    if session is not None:
        await session.close()
    for client in blocking:
        client.close()


def _decode_body(raw: bytes, provider: str) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # RecursionError: JSON nested deeper than the parser goes (a 4 MiB body can nest two
        # million levels); no provider's answer does.
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
