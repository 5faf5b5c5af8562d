"""A real HTTP server on loopback that answers like an LLM provider, scripted per test."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import SecretStr

from backend.connections.snapshot import SchemaSnapshot
from backend.core.config import Settings
from backend.nl2sql.engines.anthropic import AnthropicGenerator
from backend.nl2sql.engines.base import GenerationRequest, SqlGenerator
from backend.nl2sql.engines.openai_compat import OpenAIGenerator


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    """A dict/list is sent as JSON, bytes/str as they are."""
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0.0
    trickle_seconds: float = 0.0
    """When set, the body is sent one byte at a time with this pause between bytes."""


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float
    client_port: int = 0
    """The port the request came from: one port for two requests means a reused connection."""


def openai_reply(
    text: str | None,
    *,
    prompt_tokens: int = 120,
    completion_tokens: int = 30,
    model: str = "gpt-test",
) -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def anthropic_reply(
    text: str | None,
    *,
    input_tokens: int = 120,
    output_tokens: int = 30,
    model: str = "claude-test",
) -> Reply:
    content = [] if text is None else [{"type": "text", "text": text}]
    return Reply(
        body={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": "end_turn",
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        }
    )


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    """Room for many asks connecting at once (the default backlog of 5 resets some)."""


class ProviderServer:
    def __init__(self, *, keep_alive: bool = False) -> None:
        self.script: deque[Reply] = deque()
        self.requests: list[RecordedRequest] = []
        self.replied = 0
        """How many replies have finished their delay (were sent, or about to be)."""
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body: Any = json.loads(raw)
                except ValueError:
                    body = raw
                with server._lock:
                    server.requests.append(
                        RecordedRequest(
                            self.path,
                            {k.lower(): v for k, v in self.headers.items()},
                            body,
                            time.monotonic(),
                            self.client_address[1],
                        )
                    )
                    reply = (
                        server.script.popleft()
                        if server.script
                        else Reply(500, {"error": {"message": "nothing scripted"}})
                    )
                if reply.delay_seconds:
                    time.sleep(reply.delay_seconds)
                with server._lock:
                    server.replied += 1
                payload = reply.body
                if isinstance(payload, dict | list):
                    data = json.dumps(payload).encode()
                elif isinstance(payload, str):
                    data = payload.encode()
                else:
                    data = payload or b""
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    if reply.trickle_seconds:
                        for index in range(len(data)):
                            self.wfile.write(data[index : index + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle_seconds)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        # A short poll: `shutdown()` waits up to one poll interval (half a second by default).
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, *replies: Reply) -> None:
        self.script.extend(replies)


@contextmanager
def provider_server(*, keep_alive: bool = False) -> Iterator[ProviderServer]:
    """A scripted provider; `keep_alive` answers HTTP/1.1 and keeps connections open."""
    server = ProviderServer(keep_alive=keep_alive)
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


API_KEY = "sk-test-4f9a2c7e1b3d5a6c8e0f2a4b6c8d0e1f"


def provider_settings(
    settings: Settings, server: ProviderServer, *, timeout_seconds: float, **extra: Any
) -> Settings:
    """`settings` with both the `openai` and the `anthropic` generator calling `server`."""
    return settings.model_copy(
        update={
            "openai_base_url": server.base_url,
            "openai_api_key": SecretStr(API_KEY),
            "openai_model": "test-model",
            "anthropic_base_url": server.base_url,
            "anthropic_api_key": SecretStr(API_KEY),
            "anthropic_model": "test-model",
            "llm_timeout_seconds": timeout_seconds,
            **extra,
        }
    )


SQL = "SELECT country, COUNT(*) AS customers FROM customers GROUP BY country LIMIT 1000"


@dataclass(frozen=True)
class Provider:
    """How to build one provider's generator against the server, and how it replies."""

    name: str
    path: str
    reply: Callable[..., Reply]
    build: Callable[..., SqlGenerator]

    def make(self, server: ProviderServer, **kwargs: Any) -> SqlGenerator:
        kwargs.setdefault("timeout_seconds", 5.0)
        kwargs.setdefault("backoff_base_seconds", 0.05)
        return self.build(base_url=server.base_url, api_key=API_KEY, model="test-model", **kwargs)


OPENAI = Provider("openai", "/chat/completions", openai_reply, OpenAIGenerator)
ANTHROPIC = Provider("anthropic", "/v1/messages", anthropic_reply, AnthropicGenerator)


def ask(
    shop: SchemaSnapshot, question: str = "How many customers per country?", **kw: Any
) -> GenerationRequest:
    return GenerationRequest(question=question, schema=shop, **kw)
