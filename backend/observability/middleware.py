"""Request latency per route template and status, handed to the batch metric writer."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.observability.recorder import HTTP_REQUEST_METRIC, MetricWriter

UNMATCHED_ROUTE = "<unmatched>"


class RequestMetricsMiddleware:
    """Pure ASGI: times each HTTP request and enqueues one metric; never touches the database.

    The route label is the matched route's path template (`/api/v1/connections/{id}`), never
    the raw path, so the number of distinct labels stays bounded.
    """

    def __init__(self, app: ASGIApp, writer: MetricWriter) -> None:
        self.app = app
        self.writer = writer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or UNMATCHED_ROUTE
            self.writer.enqueue(
                HTTP_REQUEST_METRIC,
                (time.perf_counter() - start) * 1000.0,
                unit="ms",
                data={"route": template, "method": scope.get("method", ""), "status": status},
            )
