"""A real uvicorn server on loopback serving an app for the length of a `with` block, and the
`base_url` fixture serving the test's `app` (import it into a test module to use it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from fastapi import FastAPI


@contextmanager
def serve_on_loopback(
    app: FastAPI, *, port: int = 0, start_timeout_seconds: float = 30
) -> Iterator[str]:
    """Serve `app` on 127.0.0.1 (`port`, or a free one) with its lifespan; yields the base URL."""
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout_seconds
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@pytest.fixture
def base_url(app: FastAPI) -> Iterator[str]:
    """The test's app served by a real uvicorn on loopback, with its lifespan."""
    with serve_on_loopback(app) as url:
        yield url
