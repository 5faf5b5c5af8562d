"""HTTP endpoints of chat sessions, their messages and asking a question."""

from __future__ import annotations

from typing import Annotated, Any

import pydantic_core
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.routing import APIRoute
from fastapi.telemetry import get_telemetry_data
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.types import Receive, Send
from starlette.types import Scope as ASGIScope

from backend.auth.deps import (
    DEFERRED_CREDENTIALS_OPENAPI,
    Credentials,
    Principal,
    require_scopes,
    require_scopes_deferred,
    require_scopes_released,
)
from backend.auth.scopes import Scope
from backend.chat import service
from backend.chat.models import ChatSession
from backend.chat.schemas import (
    AskRequest,
    AskResponse,
    ChatMessageRead,
    ChatSessionCreate,
    ChatSessionRead,
    ChatSessionUpdate,
)
from backend.chat.streaming import AskEventStream, StageEvents, StreamedAsk
from backend.core.context import client_context
from backend.core.db import SessionDep
from backend.core.errors import AppError, ErrorResponse
from backend.core.hygiene import json_body
from backend.core.logs import annotate_log
from backend.core.pagination import CursorParam
from backend.core.schemas import SSE_EVENT_SCHEMA, Page
from backend.nl2sql import pipeline

router = APIRouter(prefix="/chat", tags=["chat"])

Reader = Annotated[Principal, Depends(require_scopes(Scope.CHAT_READ))]
Writer = Annotated[Principal, Depends(require_scopes(Scope.CHAT_WRITE))]
AskWriter = Annotated[Principal, Depends(require_scopes_released(Scope.CHAT_WRITE))]
"""The asker, read in a short session closed before the ask starts (an ask holds nothing)."""
PageSize = Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)]

_COMMON: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}


@router.post(
    "/sessions",
    summary="Start a chat session",
    status_code=201,
    response_model=ChatSessionRead,
    responses=_COMMON,
)
def create_session(data: ChatSessionCreate, session: SessionDep, principal: Writer) -> ChatSession:
    """Creates a conversation bound to a connection the caller may use (their only one when none
    is named); later questions in it can refer to earlier ones.
    """
    connection_id = data.connection_id
    if connection_id is not None:
        pipeline.ensure_usable_connection(session, principal=principal, connection_id=connection_id)
    else:
        connection_id = pipeline.only_connection_id(session, principal=principal)
    return service.create_chat_session(
        session, user_id=principal.user.id, title=data.title, connection_id=connection_id
    )


@router.get(
    "/sessions",
    summary="The caller's chat sessions",
    response_model=Page[ChatSessionRead],
    responses=_COMMON,
)
def list_sessions(
    session: SessionDep,
    principal: Reader,
    limit: PageSize = 20,
    cursor: CursorParam = None,
) -> Page[ChatSessionRead]:
    """The caller's chat sessions, most recently active first. Page with `limit` and the
    `next_cursor` of the previous page (null on the last page).
    """
    rows, next_cursor = service.list_chat_sessions(
        session, user_id=principal.user.id, limit=limit, cursor=cursor
    )
    return Page[ChatSessionRead](
        items=[ChatSessionRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/sessions/{session_id}",
    summary="One chat session",
    response_model=ChatSessionRead,
    responses=_COMMON,
)
def get_session(session_id: str, session: SessionDep, principal: Reader) -> ChatSession:
    """One of the caller's chat sessions; 404 when it does not exist or belongs to someone else."""
    return service.get_chat_session(session, user_id=principal.user.id, session_id=session_id)


@router.patch(
    "/sessions/{session_id}",
    summary="Rename a chat session or change its connection",
    response_model=ChatSessionRead,
    responses=_COMMON,
)
def update_session(
    session_id: str, data: ChatSessionUpdate, session: SessionDep, principal: Writer
) -> ChatSession:
    """Changes the title or the connection of a chat session; fields left out stay as they are."""
    chat = service.get_chat_session(session, user_id=principal.user.id, session_id=session_id)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("title", "") is None:
        changes.pop("title")
    if changes.get("connection_id") is not None:
        pipeline.ensure_usable_connection(
            session, principal=principal, connection_id=changes["connection_id"]
        )
    return service.update_chat_session(session, chat, changes=changes)


@router.delete(
    "/sessions/{session_id}", summary="Delete a chat session", status_code=204, responses=_COMMON
)
def delete_session(session_id: str, session: SessionDep, principal: Writer) -> Response:
    """Deletes a chat session and its messages."""
    chat = service.get_chat_session(session, user_id=principal.user.id, session_id=session_id)
    service.delete_chat_session(session, chat)
    return Response(status_code=204)


@router.get(
    "/sessions/{session_id}/messages",
    summary="Messages of a chat session (history)",
    response_model=Page[ChatMessageRead],
    responses=_COMMON,
)
def list_messages(
    session_id: str,
    session: SessionDep,
    principal: Reader,
    limit: PageSize = 50,
    cursor: CursorParam = None,
) -> Page[ChatMessageRead]:
    """The questions and answers of a chat session in order, with the SQL, explanation, rows and
    chart of each answer. Page with `limit` and `next_cursor`.
    """
    chat = service.get_chat_session(session, user_id=principal.user.id, session_id=session_id)
    rows, next_cursor = service.list_messages(session, chat, limit=limit, cursor=cursor)
    ratings = service.ratings_of(session, user_id=principal.user.id, messages=rows)
    items = [ChatMessageRead.model_validate(r) for r in rows]
    for item in items:
        item.rating = ratings.get(item.id)
        item.query_result = service.with_chart(item.query_result)
    return Page[ChatMessageRead](items=items, next_cursor=next_cursor)


_ask_credentials = require_scopes_deferred(Scope.CHAT_WRITE)
AskCredentials = Annotated[Credentials, Depends(_ask_credentials)]
"""The asker's credentials, read and checked in the ask's own first transaction."""


class AskRoute(APIRoute):
    """The plain ask's route, with a short way through for a well-formed request.

    FastAPI's handling of a request (the request-response wrapper and its exit stacks, solving
    the dependencies, reading and parsing the body again, validating it) was about a tenth of
    an offline ask's CPU. A POST whose `application/json` body the input hygiene middleware
    already parsed and accepted, and that `AskRequest` validates, is answered here from that
    body: the same credentials check, the same endpoint code, the same response; an exception
    goes up to the app's handlers as it would from the endpoint. Anything else (no or another
    content type, a body that is not JSON or not a valid `AskRequest`, another method, FastAPI's
    telemetry on) takes FastAPI's own way, which answers every error exactly as before: the
    body was not read here, so it is still there to read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The short way does by hand what the endpoint's declared dependencies do: it is taken
        # only while they are exactly the credentials check (a dependency added to this route,
        # or its router later would otherwise be skipped on the short way). `api_routes`
        # includes the routers with a prefix only, no dependencies of its own.
        self.short_way = [d.call for d in self.dependant.dependencies] == [_ask_credentials]

    async def handle(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        body = json_body(scope) if self.short_way and scope["method"] == "POST" else None
        data = _valid_ask_request(body[0]) if body is not None else None
        if data is None or get_telemetry_data() is not None:
            await super().handle(scope, receive, send)
            return
        request = Request(scope, receive, send)
        credentials = await _ask_credentials(request)
        response = await _answer(request, scope["path_params"]["session_id"], data, credentials)
        await response(scope, receive, send)


def _valid_ask_request(value: Any) -> AskRequest | None:
    try:
        return AskRequest.model_validate(value)
    except ValidationError:
        return None


async def ask(
    session_id: str,
    data: AskRequest,
    request: Request,
    credentials: AskCredentials,
) -> Response:
    """Turns the question into one read-only SQL query on the session's (or the given) connection,
    checks it with the SQL guard, runs it with a row cap and a timeout, and answers with the SQL, an
    explanation, the rows and a Vega-Lite chart spec (render it with vega-embed). The question and
    the answer are stored as messages of the session.
    """
    return await _answer(request, session_id, data, credentials)


async def _answer(
    request: Request, session_id: str, data: AskRequest, credentials: Credentials
) -> Response:
    """The ask endpoint's work (also `AskRoute`'s short way)."""
    answer = await pipeline.ask_async(
        request.app.state.session_factory,
        principal=credentials,
        chat_session_id=session_id,
        question=data.question,
        connection_id=data.connection_id,
        generator_name=data.generator,
        settings=request.app.state.settings,
        context=client_context(request),
        execute=data.execute,
    )
    return ask_json_response(answer)


router.add_api_route(
    "/sessions/{session_id}/ask",
    ask,
    methods=["POST"],
    route_class_override=AskRoute,
    summary="Ask a question in plain language",
    response_model=AskResponse,
    openapi_extra=DEFERRED_CREDENTIALS_OPENAPI,
    responses={
        **_COMMON,
        400: {"model": ErrorResponse, "description": "The guard refused the SQL."},
        422: {
            "model": ErrorResponse,
            "description": (
                "Invalid input, or `question_not_understood`: the engine declined rather than"
                " guess. Its `details` carry `recognised` (what it understood), `suggestions`"
                " (the closest readings, best first, each `{text, sql?, confidence?}`, to offer"
                " as choices) and, when a reading was too weak, its `confidence` (0-1)."
            ),
        },
        429: {"model": ErrorResponse},
        502: {"model": ErrorResponse, "description": "The database failed."},
        504: {"model": ErrorResponse, "description": "The database timed out."},
    },
)


@router.post(
    "/sessions/{session_id}/ask/stream",
    summary="Ask a question, streamed as Server-Sent Events",
    response_class=StreamingResponse,
    openapi_extra=DEFERRED_CREDENTIALS_OPENAPI,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
            "description": "Events `understood`, `sql`, `guard`, `rows`, `chart` as each stage "
            "happens (`sql` to `chart` again after a repair), then `done` with the answer of "
            "a plain ask, or `error` with the one error shape. Each event's data is one line "
            "of JSON.",
        },
        **_COMMON,
    },
)
async def ask_stream(
    session_id: str,
    data: AskRequest,
    request: Request,
    credentials: AskCredentials,
) -> StreamingResponse:
    """The same ask as `POST /sessions/{id}/ask`, recorded the same way, with each stage sent as
    it happens. Failures of the ask (including an unknown session) come as an `error` event;
    bad credentials and an invalid body are answered before the stream starts, as usual. A
    client that disconnects stops the work, and the ask is recorded as `cancelled`.
    """
    factory = request.app.state.session_factory
    events = StageEvents()

    def authenticate(session: Session) -> Principal:
        try:
            return credentials.resolve(session)
        except AppError as exc:
            raise _CallerRefused(exc) from exc

    async def run() -> pipeline.AskAnswer:
        return await pipeline.finish_ask_async(factory, plan)

    async def failed() -> pipeline.AskAnswer:
        assert read_failure is not None  # noqa: S101 - `failed` runs only after a failed read
        raise read_failure

    read_failure: AppError | None = None
    try:
        # The ask's one short read, the caller included, before the response starts.
        plan = await pipeline.read_ask_async(
            factory,
            principal=authenticate,
            chat_session_id=session_id,
            question=data.question,
            connection_id=data.connection_id,
            generator_name=data.generator,
            settings=request.app.state.settings,
            context=client_context(request),
            notify=events.notify,
        )
    except _CallerRefused as refused:
        raise refused.error from None
    except AppError as exc:
        read_failure = exc
    if read_failure is None:
        ask = StreamedAsk(run, lambda: pipeline.record_cancelled_async(factory, plan))
    else:
        ask = StreamedAsk(failed, None)  # nothing was read, so there is nothing to record
    return AskEventStream(events, ask, ask_response_fields)


class _CallerRefused(Exception):
    """The caller's credentials failed in a streamed ask's read: answered with a status."""

    def __init__(self, error: AppError) -> None:
        super().__init__(error.message)
        self.error = error


def ask_response_fields(answer: pipeline.AskAnswer) -> dict[str, Any]:
    """`ask_response(answer).model_dump(mode="json")`, built directly: the fields of
    `AskResponse` in its order, each already of its JSON type (no model to validate)."""
    annotate_log(query_id=answer.query_id)
    result, executed = answer.result, answer.executed
    cost = answer.cost_estimate
    return {
        "query_id": answer.query_id,
        "sql": answer.sql,
        "columns": [
            {"name": c.name, "type": t}
            for c, t in zip(result.columns, answer.column_types, strict=True)
        ],
        "rows": result.rows,
        "row_count": result.row_count,
        "truncated": result.truncated,
        "truncated_reason": result.truncated_reason,
        "execution_time_ms": float(result.execution_time_ms),
        "chart": answer.chart.spec if executed else None,
        "chart_type": answer.chart.chart_type if executed else None,
        "message_id": answer.message_id,
        "user_message_id": answer.user_message_id,
        "explanation": answer.explanation,
        "generator": answer.generator,
        "model": answer.model,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "requested_generator": answer.requested_generator,
        "generator_note": answer.generator_note,
        "template_id": answer.template_id,
        "parameters": answer.parameters,
        "attempts": answer.attempts,
        "cost_estimate": float(cost) if cost is not None else None,
        "summary": answer.summary,
        "executed": executed,
    }


def ask_response(answer: pipeline.AskAnswer) -> AskResponse:
    """The HTTP answer of an ask (also the result of a background job and of the MCP tool)."""
    return AskResponse.model_validate(ask_response_fields(answer))


def ask_json_response(answer: pipeline.AskAnswer) -> Response:
    """`ask_response` encoded once, by the encoder FastAPI would use for it, without building
    and validating the model first and again on the way out (what an offline ask spent most
    of its response time on); `tests/chat/test_ask_response.py` holds the two equal."""
    body = pydantic_core.to_json(ask_response_fields(answer), inf_nan_mode="null")
    return Response(body, media_type="application/json")
