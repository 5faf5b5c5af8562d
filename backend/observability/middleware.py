"""Request latency per route template and status, handed to the batch metric writer."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.observability.metric_writer import MetricWriter
from backend.observability.recorder import HTTP_REQUEST_METRIC

UNMATCHED_ROUTE = "<unmatched>"


def route_template(scope: Scope) -> str:
    """The matched route's full path template, e.g. `/api/v1/connections/{id}`.

    FastAPI keeps included routers nested, so the matched route knows only its own part of
    the template (`/connections/{id}`); the static prefix in front of it is taken from the
    request path.
    """
    route = scope.get("route")
    template = getattr(route, "path", None)
    if not template:
        return UNMATCHED_ROUTE
    path = str(scope.get("path", ""))
    regex = getattr(route, "path_regex", None)
    if regex is None or regex.match(path):
        return str(template)
    cut = path.find("/", 1)
    while cut != -1:
        if regex.match(path[cut:]):
            return path[:cut] + str(template)
        cut = path.find("/", cut + 1)
    return str(template)


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
            self.writer.enqueue(
                HTTP_REQUEST_METRIC,
                (time.perf_counter() - start) * 1000.0,
                unit="ms",
                data={
                    "route": route_template(scope),
                    "method": scope.get("method", ""),
                    "status": status,
                },
            )
