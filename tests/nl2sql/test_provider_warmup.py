"""A worker opens its provider session at start-up, not inside its first LLM ask."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI
from fastapi.testclient import TestClient

from backend.nl2sql.engines import http


async def _session_of_this_loop() -> bool:
    session = http._async_sessions.get(asyncio.get_running_loop())
    return session is not None and not session.closed


def test_the_provider_session_is_open_once_the_app_has_started(app: FastAPI) -> None:
    with TestClient(app) as client:
        # Before any ask: the app's event loop already has its session.
        assert client.portal is not None
        assert client.portal.call(_session_of_this_loop)
    # Closed again at shutdown.
    assert not any(not s.closed for s in list(http._async_sessions.values()))
