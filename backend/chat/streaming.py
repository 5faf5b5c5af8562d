"""An ask streamed as Server-Sent Events: one event per stage as it happens, then `done` (the
answer a plain ask returns) or `error` (the one error shape).

The ask runs as its own task and reports stages through a thread-safe callback; the response
body relays them. A client that disconnects cancels the body, which cancels the ask: it is
recorded as `cancelled` (the recording is awaited, shielded, before the response ends).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from backend.core.errors import AppError, ErrorBody, ErrorResponse
from backend.nl2sql.pipeline import AskAnswer, Notify

logger = logging.getLogger("nlsql.chat")

STREAM_EVENTS = ("understood", "sql", "guard", "rows", "chart", "done", "error")
"""Event names in the order they can come; `sql`, `guard`, `rows` and `chart` repeat when a
generator repairs its SQL."""


def sse_event(event: str, data: dict[str, Any]) -> bytes:
    """One Server-Sent Event: its name and one line of JSON."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _error_data(code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, details=details))
    return body.model_dump(mode="json")


async def stream_ask(
    run_ask: Callable[[Notify], Awaitable[AskAnswer]],
    answer_data: Callable[[AskAnswer], dict[str, Any]],
) -> AsyncIterator[bytes]:
    """Run `run_ask(notify)` and yield its stages as events, then `done` or `error`."""
    events: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def notify(stage: str, data: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(events.put_nowait, (stage, data))

    async def run() -> None:
        try:
            answer = await run_ask(notify)
            notify("done", answer_data(answer))
        except AppError as exc:
            notify("error", _error_data(exc.code, exc.message, exc.details))
        except Exception:
            logger.exception("unexpected error in a streamed ask")
            notify("error", _error_data("internal_error", "An unexpected error occurred.", {}))
        finally:
            loop.call_soon_threadsafe(events.put_nowait, None)

    task = asyncio.create_task(run())
    try:
        while (item := await events.get()) is not None:
            yield sse_event(*item)
    finally:
        if not task.done():
            task.cancel()
        # The cancelled ask records itself as cancelled; wait for that even though the
        # response is being torn down.
        with anyio.CancelScope(shield=True):
            await asyncio.wait({task})
