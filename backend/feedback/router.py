"""HTTP endpoints of answer feedback, verified examples, and the feedback review."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse

from backend.auth.deps import Principal, require_scopes, require_scopes_released
from backend.auth.scopes import Scope
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep, utcnow
from backend.core.errors import ErrorResponse
from backend.core.pagination import CursorParam
from backend.core.schemas import Page
from backend.feedback import service
from backend.feedback.schemas import (
    ExampleCreate,
    ExampleRead,
    ExampleSource,
    FeedbackGroupBy,
    FeedbackRead,
    FeedbackReviewRead,
    FeedbackSummary,
    FeedbackWrite,
)

messages_router = APIRouter(prefix="/chat/messages", tags=["chat"])
examples_router = APIRouter(prefix="/connections/{connection_id}/examples", tags=["connections"])
review_router = APIRouter(prefix="/analytics/feedback", tags=["analytics"])

ChatReader = Annotated[Principal, Depends(require_scopes(Scope.CHAT_READ))]
Rater = Annotated[Principal, Depends(require_scopes_released(Scope.CHAT_WRITE))]
"""The rater, read in a short session closed before the corrected SQL is checked."""
ExamplesReader = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_READ))]
ExamplesWriter = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_WRITE))]
ReleasedExamplesWriter = Annotated[
    Principal, Depends(require_scopes_released(Scope.CONNECTIONS_WRITE))
]
AnalyticsReader = Annotated[Principal, Depends(require_scopes(Scope.ANALYTICS_READ))]
PageSize = Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)]
DEFAULT_SUMMARY_DAYS = 30

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}
_GUARDED: dict[int | str, dict[str, Any]] = {
    **_ERRORS,
    400: {"model": ErrorResponse, "description": "The guard refused the SQL."},
    502: {"model": ErrorResponse, "description": "The database failed (introspecting it)."},
    504: {"model": ErrorResponse, "description": "The database timed out (introspecting it)."},
}


# --- feedback on an answer -------------------------------------------------------------------


@messages_router.post(
    "/{message_id}/feedback",
    summary="Rate an answer (1-5), optionally with a comment and corrected SQL",
    response_model=FeedbackRead,
    status_code=201,
    responses={
        **_GUARDED,
        200: {"model": FeedbackRead, "description": "Your earlier rating was replaced."},
        422: {
            "model": ErrorResponse,
            "description": "Invalid input, or `message_not_an_answer`: the message is a "
            "question or carries no SQL.",
        },
    },
)
def rate_answer(
    message_id: int,
    data: FeedbackWrite,
    request: Request,
    response: Response,
    principal: Rater,
    context: ClientContextDep,
) -> FeedbackRead:
    """Rates one of your answers: 1 (wrong) to 5 (right), an optional comment, and optionally
    the SQL that does answer the question (checked by the same guard as `POST /query/sql` on
    the answer's connection). A second rating of the same answer replaces the first (200).
    A rating of 4 or more, or a corrected SQL, makes a verified example of the connection,
    which LLM generators are shown for similar questions. Only the asker may rate an answer.
    """
    feedback, created = service.rate_answer(
        request.app.state.session_factory,
        principal=principal,
        message_id=message_id,
        data=data,
        settings=request.app.state.settings,
        context=context,
    )
    if not created:
        response.status_code = 200
    return feedback


@messages_router.get(
    "/{message_id}/feedback",
    summary="Your rating of an answer",
    response_model=FeedbackRead,
    responses=_ERRORS,
)
def get_feedback(message_id: int, session: SessionDep, principal: ChatReader) -> FeedbackRead:
    """Your feedback on one of your answers; 404 `feedback_not_found` when you have not rated
    it."""
    return service.get_feedback(session, principal, message_id=message_id)


# --- verified examples of a connection -------------------------------------------------------


@examples_router.get(
    "",
    summary="Verified examples of a connection",
    response_model=Page[ExampleRead],
    responses={**_ERRORS, 400: {"model": ErrorResponse}},
)
def list_examples(
    connection_id: str,
    session: SessionDep,
    principal: ExamplesReader,
    approved: bool | None = None,
    source: ExampleSource | None = None,
    limit: PageSize = 50,
    cursor: CursorParam = None,
) -> Page[ExampleRead]:
    """The question/SQL pairs known to be right on this connection, newest first: from
    well-rated answers (`feedback`), corrections, templates and ones added by hand. Approved
    ones are shown to LLM generators as examples; `approved=false` lists those waiting for the
    owner's approval. The owner's connection, or anyone's for an admin. Page with `cursor`."""
    rows, next_cursor = service.list_examples(
        session,
        principal,
        connection_id=connection_id,
        approved=approved,
        source=source,
        limit=limit,
        cursor=cursor,
    )
    return Page[ExampleRead](
        items=[ExampleRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@examples_router.post(
    "",
    summary="Add a verified example by hand",
    status_code=201,
    response_model=ExampleRead,
    responses=_GUARDED,
)
def add_example(
    connection_id: str,
    data: ExampleCreate,
    request: Request,
    principal: ReleasedExamplesWriter,
    context: ClientContextDep,
) -> ExampleRead:
    """Adds a question and the SQL that answers it as an example; the SQL must pass the guard
    on the connection (the same as `POST /query/sql`). The connection's owner's examples are
    approved at once; an admin may add one to any user's connection, pending until the owner
    approves it."""
    return service.add_example(
        request.app.state.session_factory,
        principal=principal,
        connection_id=connection_id,
        data=data,
        settings=request.app.state.settings,
        context=context,
    )


@examples_router.post(
    "/from-template/{template_id}",
    summary="Add a query template as a verified example",
    status_code=201,
    response_model=ExampleRead,
    responses={
        **_GUARDED,
        422: {
            "model": ErrorResponse,
            "description": "`template_has_parameters`: only a parameterless template can be one.",
        },
    },
)
def add_template_example(
    connection_id: str,
    template_id: str,
    request: Request,
    principal: ReleasedExamplesWriter,
    context: ClientContextDep,
) -> ExampleRead:
    """Copies the question and SQL of a parameterless query template that applies to the
    connection into a verified example (source `template`), after the guard checked the SQL."""
    return service.add_example(
        request.app.state.session_factory,
        principal=principal,
        connection_id=connection_id,
        template_id=template_id,
        settings=request.app.state.settings,
        context=context,
    )


@examples_router.post(
    "/{example_id}/approve",
    summary="Approve a verified example",
    response_model=ExampleRead,
    responses=_ERRORS,
)
def approve_example(
    connection_id: str,
    example_id: str,
    session: SessionDep,
    principal: ExamplesWriter,
    context: ClientContextDep,
) -> ExampleRead:
    """The connection's owner approves a pending example, so that prompts may show it."""
    example = service.approve_example(
        session, principal, connection_id=connection_id, example_id=example_id, context=context
    )
    return ExampleRead.model_validate(example)


@examples_router.delete(
    "/{example_id}", summary="Delete a verified example", status_code=204, responses=_ERRORS
)
def delete_example(
    connection_id: str,
    example_id: str,
    session: SessionDep,
    principal: ExamplesWriter,
    context: ClientContextDep,
) -> Response:
    """Deletes an example of the connection (audited)."""
    service.delete_example(
        session, principal, connection_id=connection_id, example_id=example_id, context=context
    )
    return Response(status_code=204)


# --- review ----------------------------------------------------------------------------------

_REVIEW_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
}
Rating = Annotated[int | None, Query(ge=1, le=5)]


@review_router.get("", responses=_REVIEW_ERRORS, summary="Ratings of answers, newest first")
def list_feedback(
    session: SessionDep,
    principal: AnalyticsReader,
    user_id: str | None = None,
    connection_id: str | None = None,
    generator: str | None = None,
    model: str | None = None,
    rating: Rating = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: PageSize = 50,
    cursor: CursorParam = None,
) -> Page[FeedbackReviewRead]:
    """Each rating with its answer's `query_id` (the `query_analytics` row), connection,
    generator and model. Users see their own; admins everyone's (or `user_id`'s)."""
    conditions = service.feedback_conditions(
        principal,
        user_id=user_id,
        connection_id=connection_id,
        generator=generator,
        model=model,
        rating=rating,
        since=since,
        until=until,
    )
    items, next_cursor = service.list_feedback(
        session, conditions=conditions, limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@review_router.get(
    "/export",
    responses={
        **_REVIEW_ERRORS,
        200: {
            "description": "CSV with a header row",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
    response_class=StreamingResponse,
    summary="Ratings as CSV (same filters as the list, no paging)",
)
def export_feedback(
    request: Request,
    session: SessionDep,
    principal: AnalyticsReader,
    context: ClientContextDep,
    user_id: str | None = None,
    connection_id: str | None = None,
    generator: str | None = None,
    model: str | None = None,
    rating: Rating = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> StreamingResponse:
    """Streams the same rows as `GET /analytics/feedback` as CSV (UTF-8, with a header row);
    the export is audited."""
    filters: dict[str, Any] = {
        "user_id": user_id,
        "connection_id": connection_id,
        "generator": generator,
        "model": model,
        "rating": rating,
        "since": since,
        "until": until,
    }
    conditions = service.feedback_conditions(principal, **filters)
    service.record_feedback_export(session, principal, filters=filters, context=context)
    return StreamingResponse(
        service.feedback_csv(request.app.state.session_factory, conditions),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="answer_feedback.csv"'},
    )


@review_router.get(
    "/summary", responses=_REVIEW_ERRORS, summary="Rating counts and averages per group"
)
def summarize_feedback(
    session: SessionDep,
    principal: AnalyticsReader,
    group_by: FeedbackGroupBy = "generator",
    since: Annotated[datetime | None, Query(description="Default: 30 days before until")] = None,
    until: Annotated[datetime | None, Query(description="Default: now")] = None,
    user_id: str | None = None,
    connection_id: str | None = None,
) -> FeedbackSummary:
    """How many answers were rated, their average rating, the count of each rating and of
    corrections, overall and per connection, generator or model, over a window (default: the
    last 30 days). Users see their own ratings; admins everyone's."""
    until = until or utcnow()
    since = since or until - timedelta(days=DEFAULT_SUMMARY_DAYS)
    conditions = service.feedback_conditions(
        principal, user_id=user_id, connection_id=connection_id, since=since, until=until
    )
    return service.summarize_feedback(
        session, group_by=group_by, conditions=conditions, since=since, until=until
    )
