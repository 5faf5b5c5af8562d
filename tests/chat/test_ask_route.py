"""The plain ask's short way (`AskRoute`): a well-formed `application/json` ask is answered from
the body the input hygiene middleware parsed, without FastAPI's request handling; anything
else takes FastAPI's way. Both answer and record the same, and every refusal keeps its shape.

A body sent as `application/vnd.nlsql+json` is JSON to FastAPI but not taken the short way,
so each case is asked both ways and the answers compared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from backend.chat.models import ChatMessage
from backend.core.config import Settings
from backend.observability.models import Event, QueryAnalytics
from tests.chat.conftest import Caller, make_caller

SHORT = "application/json"
FASTAPI_WAY = "application/vnd.nlsql+json"
IDS = ("query_id", "message_id", "user_message_id", "execution_time_ms")


class ScopeRecorder:
    """The app, remembering each request's ASGI scope as the app left it."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.scopes.append(scope)
        await self.app(scope, receive, send)


@pytest.fixture
def recorder(app: FastAPI) -> ScopeRecorder:
    return ScopeRecorder(app)


@pytest.fixture
def recorded_client(recorder: ScopeRecorder) -> Iterator[TestClient]:
    with TestClient(recorder) as test_client:
        yield test_client


def _ask(
    client: TestClient,
    chat: str,
    body: Any,
    *,
    content_type: str,
    headers: dict[str, str],
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        f"/api/v1/chat/sessions/{chat}/ask",
        content=raw,
        headers={**headers, "content-type": content_type},
    )


def _counts(session: Session, chat: str) -> tuple[int, int, int]:
    session.expire_all()
    messages = session.scalar(
        select(func.count()).select_from(ChatMessage).where(ChatMessage.session_id == chat)
    )
    analytics = session.scalar(
        select(func.count())
        .select_from(QueryAnalytics)
        .where(QueryAnalytics.chat_session_id == chat)
    )
    events = session.scalar(
        select(func.count()).select_from(Event).where(Event.event_type == "asked")
    )
    return int(messages or 0), int(analytics or 0), int(events or 0)


def test_a_well_formed_ask_takes_the_short_way_and_answers_as_fastapi_does(
    recorded_client: TestClient, recorder: ScopeRecorder, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(recorded_client)
    answers = {}
    for content_type in (SHORT, FASTAPI_WAY):
        before = _counts(session, chat)
        response = _ask(
            recorded_client,
            chat,
            {"question": "Number of orders per status"},
            content_type=content_type,
            headers=caller.headers,
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert len(response.headers["x-request-id"]) >= 8
        # Each ask records two messages, one analytics row and one event, either way.
        after = _counts(session, chat)
        assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (2, 1, 1)
        answers[content_type] = response.json()
        # FastAPI's request handling leaves its exit stack in the scope; the short way does not.
        assert ("fastapi_inner_astack" in recorder.scopes[-1]) is (content_type == FASTAPI_WAY)
    short, slow = answers[SHORT], answers[FASTAPI_WAY]
    assert list(short) == list(slow)
    assert {k: v for k, v in short.items() if k not in IDS} == {
        k: v for k, v in slow.items() if k not in IDS
    }
    assert short["query_id"] != slow["query_id"]


def _refusal(response: Any) -> tuple[int, str, Any]:
    error = response.json()["error"]
    return response.status_code, error["code"], error["details"]


@pytest.mark.parametrize(
    ("body", "with_credentials", "status", "code"),
    [
        ({"question": "   "}, True, 422, "validation_error"),
        ({"question": "x", "execute": "sometimes"}, True, 422, "validation_error"),
        ([{"question": "Number of orders per status"}], True, 422, "validation_error"),
        (b"{not json", True, 422, "validation_error"),
        ({"question": "Number of orders per status"}, False, 401, "unauthorized"),
        ({"question": "   "}, False, 401, "unauthorized"),
    ],
)
def test_refusals_keep_their_shape_either_way(
    client: TestClient,
    session: Session,
    settings: Settings,
    body: Any,
    with_credentials: bool,
    status: int,
    code: str,
) -> None:
    caller: Caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    headers = caller.headers if with_credentials else {}
    refusals = [
        _refusal(_ask(client, chat, body, content_type=kind, headers=headers))
        for kind in (SHORT, FASTAPI_WAY)
    ]
    assert refusals[0] == refusals[1]
    assert refusals[0][:2] == (status, code)
    assert _counts(session, chat)[0] == 0  # nothing recorded for a refused request


def test_an_unknown_session_is_404_either_way(
    client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    refusals = [
        _refusal(
            _ask(
                client,
                "no-such-session",
                {"question": "Number of orders per status"},
                content_type=kind,
                headers=caller.headers,
            )
        )
        for kind in (SHORT, FASTAPI_WAY)
    ]
    assert refusals[0] == refusals[1]
    assert refusals[0][0] == 404


def test_other_methods_on_the_ask_path_are_405(
    client: TestClient, session: Session, settings: Settings
) -> None:
    caller = make_caller(session, settings)
    chat = caller.open_chat(client)
    response = client.get(f"/api/v1/chat/sessions/{chat}/ask", headers=caller.headers)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_the_short_way_is_off_when_the_route_has_another_dependency() -> None:
    """The short way checks only the credentials by hand: the ask route has exactly that
    dependency, and the same route with one more dependency (say a rate limit added later to
    the route or its router) always takes FastAPI's way."""
    from fastapi import APIRouter, Depends
    from fastapi.routing import APIRoute

    from backend.chat.router import AskRoute, ask, router

    routes = [r for r in router.routes if isinstance(r, APIRoute) and r.path.endswith("/ask")]
    assert [type(r) for r in routes] == [AskRoute]
    assert routes[0].short_way is True

    def extra() -> None:
        return None

    on_route = AskRoute(
        "/sessions/{session_id}/ask", ask, methods=["POST"], dependencies=[Depends(extra)]
    )
    guarded_router = APIRouter(dependencies=[Depends(extra)])
    guarded_router.add_api_route(
        "/sessions/{session_id}/ask", ask, methods=["POST"], route_class_override=AskRoute
    )
    on_router = guarded_router.routes[0]
    assert isinstance(on_router, AskRoute)
    assert (on_route.short_way, on_router.short_way) == (False, False)
