"""An ask streamed as Server-Sent Events: one event per stage as it happens, then `done` (the
answer a plain ask returns) or `error` (the one error shape).

The ask's first phase (its one short read, the caller's credentials included) runs before the
response starts, so a refused caller gets its 401/403 as a status; the rest runs as its own task
and reports stages through a thread-safe callback; the response body relays them. A client that
disconnects cancels the body, which cancels the ask: it is recorded as `cancelled` (the
recording is awaited, shielded, before the response ends).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio

from backend.core.errors import AppError, ErrorBody, ErrorResponse
from backend.nl2sql.pipeline import AskAnswer

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


class StageEvents:
    """The stages an ask reports, from worker threads and the event loop alike, queued for the
    response body. Made on the event loop before the ask starts, so its first phase (run
    before the response, to answer a refused caller with a status) reports into it too."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]] | None] = asyncio.Queue()

    def notify(self, stage: str, data: dict[str, Any]) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (stage, data))

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)

    async def next(self) -> tuple[str, dict[str, Any]] | None:
        return await self._queue.get()


async def stream_ask(
    events: StageEvents,
    run_ask: Callable[[], Awaitable[AskAnswer]],
    answer_data: Callable[[AskAnswer], dict[str, Any]],
) -> AsyncIterator[bytes]:
    """Run `run_ask()` (which reports its stages to `events`) and yield the stages as events,
    then `done` or `error`."""

    async def run() -> None:
        try:
            answer = await run_ask()
            events.notify("done", answer_data(answer))
        except AppError as exc:
            events.notify("error", _error_data(exc.code, exc.message, exc.details))
        except Exception:
            logger.exception("unexpected error in a streamed ask")
            events.notify(
                "error", _error_data("internal_error", "An unexpected error occurred.", {})
            )
        finally:
            events.close()

    task = asyncio.create_task(run())
    try:
        while (item := await events.next()) is not None:
            yield sse_event(*item)
    finally:
        if not task.done():
            task.cancel()
        # The cancelled ask records itself as cancelled; wait for that even though the
        # response is being torn down.
        with anyio.CancelScope(shield=True):
            await asyncio.wait({task})
