"""HTTP endpoints of chat sessions, their messages and asking a question."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from backend.auth.deps import Principal, require_scopes
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
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import ErrorResponse
from backend.core.schemas import Page
from backend.nl2sql import pipeline
from backend.nl2sql.schemas import ResultColumnRead

router = APIRouter(prefix="/chat", tags=["chat"])

Reader = Annotated[Principal, Depends(require_scopes(Scope.CHAT_READ))]
Writer = Annotated[Principal, Depends(require_scopes(Scope.CHAT_WRITE))]
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
    cursor: Annotated[str | None, Query(max_length=500)] = None,
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
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Page[ChatMessageRead]:
    """The questions and answers of a chat session in order, with the SQL, explanation, rows and
    chart of each answer. Page with `limit` and `next_cursor`.
    """
    chat = service.get_chat_session(session, user_id=principal.user.id, session_id=session_id)
    rows, next_cursor = service.list_messages(session, chat, limit=limit, cursor=cursor)
    return Page[ChatMessageRead](
        items=[ChatMessageRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post(
    "/sessions/{session_id}/ask",
    summary="Ask a question in plain language",
    response_model=AskResponse,
    responses={
        **_COMMON,
        400: {"model": ErrorResponse, "description": "The guard refused the SQL."},
        429: {"model": ErrorResponse},
        502: {"model": ErrorResponse, "description": "The database failed."},
        504: {"model": ErrorResponse, "description": "The database timed out."},
    },
)
def ask(
    session_id: str,
    data: AskRequest,
    request: Request,
    session: SessionDep,
    principal: Writer,
    context: ClientContextDep,
) -> AskResponse:
    """Turns the question into one read-only SQL query on the session's (or the given) connection,
    checks it with the SQL guard, runs it with a row cap and a timeout, and answers with the SQL, an
    explanation, the rows and a Vega-Lite chart spec (render it with vega-embed). The question and
    the answer are stored as messages of the session.
    """
    answer = pipeline.ask(
        session,
        principal=principal,
        chat_session_id=session_id,
        question=data.question,
        connection_id=data.connection_id,
        generator_name=data.generator,
        settings=request.app.state.settings,
        context=context,
        execute=data.execute,
    )
    return ask_response(answer)


def ask_response(answer: pipeline.AskAnswer) -> AskResponse:
    """The response of an ask (the HTTP endpoint and the MCP tool answer the same)."""
    return AskResponse(
        message_id=answer.message_id,
        user_message_id=answer.user_message_id,
        query_id=answer.query_id,
        sql=answer.sql,
        explanation=answer.explanation,
        columns=[
            ResultColumnRead(name=c.name, type=t)
            for c, t in zip(answer.result.columns, answer.column_types, strict=True)
        ],
        rows=answer.result.rows,
        row_count=answer.result.row_count,
        truncated=answer.result.truncated,
        execution_time_ms=answer.result.execution_time_ms,
        chart=answer.chart.spec if answer.executed else None,
        chart_type=answer.chart.chart_type if answer.executed else None,
        generator=answer.generator,
        model=answer.model,
        prompt_tokens=answer.prompt_tokens,
        completion_tokens=answer.completion_tokens,
        total_tokens=answer.prompt_tokens + answer.completion_tokens,
        requested_generator=answer.requested_generator,
        generator_note=answer.generator_note,
        template_id=answer.template_id,
        parameters=answer.parameters,
        attempts=answer.attempts,
        cost_estimate=answer.cost_estimate,
        summary=answer.summary,
        executed=answer.executed,
    )
