"""An ask streamed as Server-Sent Events: one event per stage as it happens, then `done` (the
answer a plain ask returns) or `error` (the one error shape).

The ask's first phase (its one short read, the caller's credentials included) runs before the
response starts, so a refused caller gets its 401/403 as a status; the rest runs as its own task
and reports stages through a thread-safe callback; the response body relays them. A client that
disconnects cancels the body, which cancels the ask: it is recorded as `cancelled` (the
recording is awaited, shielded, before the response ends). A client gone before the body
begins (its work never starts) has the ask recorded as `cancelled` all the same
(`StreamedAsk.settle`, run when the response ends).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

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


class StreamedAsk:
    """An ask's work, begun at most once: by the response body, or, when the body never began
    (the client left before the response started, or before the body's task first ran),
    recorded as cancelled by `settle` instead. Either way the ask is recorded exactly once."""

    def __init__(
        self,
        run_ask: Callable[[], Awaitable[AskAnswer]],
        record_unstarted: Callable[[], Awaitable[None]] | None,
    ) -> None:
        self._run_ask = run_ask
        self._record_unstarted = record_unstarted
        self._begun = False

    async def run(self) -> AskAnswer:
        self._begun = True
        return await self._run_ask()

    async def settle(self) -> None:
        """Record the ask as cancelled if its work never began; shielded from cancellation."""
        if self._begun:
            return
        self._begun = True
        if self._record_unstarted is not None:
            with anyio.CancelScope(shield=True):
                await self._record_unstarted()


async def stream_ask(
    events: StageEvents,
    ask: StreamedAsk,
    answer_data: Callable[[AskAnswer], dict[str, Any]],
) -> AsyncIterator[bytes]:
    """Run the ask (which reports its stages to `events`) and yield the stages as events,
    then `done` or `error`."""

    async def run() -> None:
        try:
            answer = await ask.run()
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
        # response is being torn down. A task cancelled before it first ran never began.
        with anyio.CancelScope(shield=True):
            await asyncio.wait({task})
            await ask.settle()


class AskEventStream(StreamingResponse):
    """The streamed ask's response: whatever ends it (the body done, the client gone before
    the body began, the server shutting down), the ask is recorded."""

    def __init__(
        self,
        events: StageEvents,
        ask: StreamedAsk,
        answer_data: Callable[[AskAnswer], dict[str, Any]],
    ) -> None:
        super().__init__(
            stream_ask(events, ask, answer_data),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        self._ask = ask

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._ask.settle()
