"""Feedback on answers, and the verified examples per connection that good answers, corrections,
templates and owners contribute.

A rating of 4 or 5, or a corrected SQL, makes the answer a verified example of its connection:
approved at once when the rater owns the connection, else pending the owner's approval. A second
rating of the same answer replaces the first (audited with both); when it no longer qualifies,
its example is withdrawn. SQL is checked by the guard of `POST /query/sql` with no platform
transaction open while a schema is introspected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from backend.auth.deps import Principal
from backend.chat import service as chat_service
from backend.connections import service as connections_service
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.pagination import keyset_page
from backend.feedback.errors import (
    ConnectionGone,
    ExampleNotFound,
    FeedbackNotFound,
    MessageNotAnAnswer,
    NotConnectionOwner,
    TemplateHasParameters,
)
from backend.feedback.models import AnswerFeedback, VerifiedExample
from backend.feedback.schemas import (
    ExampleCreate,
    ExampleRead,
    ExampleRef,
    FeedbackGroup,
    FeedbackGroupBy,
    FeedbackRead,
    FeedbackReviewRead,
    FeedbackSummary,
    FeedbackWrite,
)
from backend.nl2sql import pipeline, row_cap
from backend.observability import recorder
from backend.observability import service as observability_service
from backend.observability.event_types import AuditAction, EventType
from backend.observability.models import QueryAnalytics
from backend.templates import service as templates_service

GOOD_RATING = 4
"""A rating at or above this makes the answer a verified example."""
FEEDBACK_RESOURCE = "answer_feedback"
EXAMPLE_RESOURCE = "verified_example"
MAX_PAGE_SIZE = 200

SessionFactory = Callable[[], Session]


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a rating needs to know of the rated answer, read in a short transaction."""

    message_id: int
    message_type: str
    sql: str
    question: str | None
    query_id: str | None
    connection: DatabaseConnection | None
    generator: str | None
    llm_model: str | None


# --- reading ---------------------------------------------------------------------------------


def _example_of(session: Session, feedback_id: str) -> VerifiedExample | None:
    return session.scalar(select(VerifiedExample).where(VerifiedExample.feedback_id == feedback_id))


def _feedback_read(feedback: AnswerFeedback, example: VerifiedExample | None) -> FeedbackRead:
    read = FeedbackRead.model_validate(feedback)
    read.example = ExampleRef(id=example.id, approved=example.approved) if example else None
    return read


def _rated_answer(session: Session, principal: Principal, message_id: int) -> _Answer:
    message = chat_service.get_message(session, user_id=principal.user.id, message_id=message_id)
    if message.message_type == "user" or not message.sql_query:
        raise MessageNotAnAnswer(
            details={"message_id": message_id, "message_type": message.message_type}
        )
    facts = (
        session.execute(
            select(
                QueryAnalytics.connection_id, QueryAnalytics.generator, QueryAnalytics.llm_model
            ).where(QueryAnalytics.query_id == message.query_id)
        ).first()
        if message.query_id is not None
        else None
    )
    connection = None
    if facts is not None and facts.connection_id is not None:
        connection = connections_service.get_connection(session, principal, facts.connection_id)
    return _Answer(
        message_id=message.id,
        message_type=message.message_type,
        sql=message.sql_query,
        question=chat_service.question_of(session, message),
        query_id=message.query_id,
        connection=connection,
        generator=facts.generator if facts is not None else None,
        llm_model=facts.llm_model if facts is not None else None,
    )


def get_feedback(session: Session, principal: Principal, *, message_id: int) -> FeedbackRead:
    """The caller's feedback on one of their answers; 404 when there is none."""
    chat_service.get_message(session, user_id=principal.user.id, message_id=message_id)
    feedback = session.scalar(
        select(AnswerFeedback).where(
            AnswerFeedback.message_id == message_id, AnswerFeedback.user_id == principal.user.id
        )
    )
    if feedback is None:
        raise FeedbackNotFound(details={"message_id": message_id})
    return _feedback_read(feedback, _example_of(session, feedback.id))


# --- rating ----------------------------------------------------------------------------------


def _audit_view(feedback: AnswerFeedback, example: VerifiedExample | None) -> dict[str, Any]:
    return {
        "message_id": feedback.message_id,
        "rating": feedback.rating,
        "comment": feedback.comment,
        "corrected_sql": feedback.corrected_sql,
        "example_id": example.id if example else None,
        "example_approved": example.approved if example else None,
    }


def _approve(example: VerifiedExample, approver_id: str) -> None:
    example.approved = True
    example.approved_by = approver_id
    example.approved_at = utcnow()


def _sync_example(
    session: Session, feedback: AnswerFeedback, answer: _Answer, *, rater_id: str
) -> VerifiedExample | None:
    """Create, update or withdraw the example this feedback makes; returns it (None: none)."""
    example = _example_of(session, feedback.id)
    qualifies = (
        answer.connection is not None
        and bool(answer.question)
        and (
            feedback.corrected_sql is not None
            or (feedback.rating >= GOOD_RATING and answer.message_type == "assistant")
        )
    )
    if not qualifies or answer.connection is None or not answer.question:
        if example is not None:
            session.delete(example)
            session.flush()
        return None
    sql = feedback.corrected_sql or row_cap.answer_query(
        session, answer.sql, dialect=answer.connection.db_type
    )  # the query rated, not its first screenful (a correction is kept as written)
    source = "correction" if feedback.corrected_sql is not None else "feedback"
    owner_rates = answer.connection.user_id == rater_id
    if example is None:
        example = VerifiedExample(
            connection_id=answer.connection.id,
            question=answer.question,
            sql=sql,
            source=source,
            owner_id=rater_id,
            approved=False,
            feedback_id=feedback.id,
        )
        session.add(example)
    elif example.sql != sql:
        example.sql, example.source = sql, source
        if not owner_rates:
            # Changed SQL needs the owner's look again.
            example.approved, example.approved_by, example.approved_at = False, None, None
    if owner_rates and not example.approved:
        _approve(example, rater_id)
    session.flush()
    return example


def _store_feedback(
    session: Session,
    principal: Principal,
    answer: _Answer,
    data: FeedbackWrite,
    corrected_sql: str | None,
    context: ClientContext | None,
) -> tuple[FeedbackRead, bool]:
    user_id = principal.user.id
    feedback = session.scalar(
        select(AnswerFeedback).where(
            AnswerFeedback.message_id == answer.message_id, AnswerFeedback.user_id == user_id
        )
    )
    created = feedback is None
    old_values = None
    if feedback is None:
        feedback = AnswerFeedback(message_id=answer.message_id, user_id=user_id, rating=data.rating)
        session.add(feedback)
    else:
        old_values = _audit_view(feedback, _example_of(session, feedback.id))
    feedback.rating = data.rating
    feedback.comment = data.comment
    feedback.corrected_sql = corrected_sql
    feedback.query_id = answer.query_id
    feedback.connection_id = answer.connection.id if answer.connection else None
    feedback.generator = answer.generator
    feedback.llm_model = answer.llm_model
    session.flush()
    example = _sync_example(session, feedback, answer, rater_id=user_id)
    recorder.event(
        session,
        event_type=EventType.ANSWER_RATED,
        user_id=user_id,
        context=context,
        user_session_id=principal.user_session_id,
        data={
            "message_id": answer.message_id,
            "query_id": answer.query_id,
            "connection_id": feedback.connection_id,
            "generator": answer.generator,
            "rating": feedback.rating,
            "corrected": corrected_sql is not None,
            "replaced": not created,
            "example_id": example.id if example else None,
        },
    )
    recorder.audit(
        session,
        action=AuditAction.FEEDBACK_GIVEN if created else AuditAction.FEEDBACK_REPLACED,
        user_id=user_id,
        context=context,
        resource_type=FEEDBACK_RESOURCE,
        resource_id=feedback.id,
        old_values=old_values,
        new_values=_audit_view(feedback, example),
    )
    return _feedback_read(feedback, example), created


def rate_answer(
    session_factory: SessionFactory,
    *,
    principal: Principal,
    message_id: int,
    data: FeedbackWrite,
    settings: Settings,
    context: ClientContext | None = None,
) -> tuple[FeedbackRead, bool]:
    """Rate one of the caller's answers; returns the feedback and whether it is new (else it
    replaced the caller's earlier rating). Raises 404 for another user's message, 422
    `message_not_an_answer` for a message without SQL, the guard's 400 for a refused
    corrected SQL."""
    with session_factory() as session:
        answer = _rated_answer(session, principal, message_id)
    corrected_sql = None
    if data.corrected_sql is not None:
        if answer.connection is None:
            raise ConnectionGone(details={"message_id": message_id})
        corrected_sql = pipeline.check_sql(
            session_factory, connection=answer.connection, sql=data.corrected_sql, settings=settings
        )
    for attempt in (1, 2):
        with session_factory() as session:
            try:
                result = _store_feedback(session, principal, answer, data, corrected_sql, context)
                session.commit()
                return result
            except IntegrityError:
                # A concurrent first rating of the same answer won: replace it instead.
                session.rollback()
                if attempt == 2:
                    raise
    raise AssertionError("unreachable")  # pragma: no cover


# --- verified examples -----------------------------------------------------------------------


def list_examples(
    session: Session,
    principal: Principal,
    *,
    connection_id: str,
    approved: bool | None,
    source: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[VerifiedExample], str | None]:
    """A page of a connection's verified examples, newest first (the owner's connection, or
    anyone's for an admin)."""
    connections_service.get_connection_or_any_for_admin(session, principal, connection_id)
    query = select(VerifiedExample).where(VerifiedExample.connection_id == connection_id)
    if approved is not None:
        query = query.where(VerifiedExample.approved.is_(approved))
    if source is not None:
        query = query.where(VerifiedExample.source == source)
    return keyset_page(
        session,
        query,
        keys=[VerifiedExample.created_at, VerifiedExample.id],
        kinds=[datetime, str],
        key_of=lambda e: (e.created_at, e.id),
        limit=limit,
        cursor=cursor,
    )


def _example_view(example: VerifiedExample) -> dict[str, Any]:
    return {
        "connection_id": example.connection_id,
        "question": example.question,
        "sql": example.sql,
        "source": example.source,
        "approved": example.approved,
        "template_id": example.template_id,
    }


def add_example(
    session_factory: SessionFactory,
    *,
    principal: Principal,
    connection_id: str,
    data: ExampleCreate | None = None,
    template_id: str | None = None,
    settings: Settings,
    context: ClientContext | None = None,
) -> ExampleRead:
    """Add a question and its SQL (`data`), or a parameterless query template that applies to
    the connection (`template_id`), as an example of the connection, after the guard checked
    the SQL; approved at once for the connection's owner. An admin may add one to anyone's
    connection: it is pending until the owner approves it."""
    with session_factory() as session:
        connection = connections_service.get_connection_or_any_for_admin(
            session, principal, connection_id
        )
        if template_id is not None:
            template = templates_service.get_template(session, principal, template_id)
            templates_service.ensure_template_applies(template, connection)
            if template.parameters:
                raise TemplateHasParameters(details={"template_id": template.id})
            question, sql = template.question_template, template.sql_template
        else:
            assert data is not None  # noqa: S101
            question, sql = data.question, data.sql
    checked = pipeline.check_sql(session_factory, connection=connection, sql=sql, settings=settings)
    user_id = principal.user.id
    with session_factory() as session:
        example = VerifiedExample(
            connection_id=connection.id,
            question=question,
            sql=checked,
            source="template" if template_id is not None else "manual",
            owner_id=user_id,
            approved=False,
            template_id=template_id,
        )
        if connection.user_id == user_id:
            _approve(example, user_id)
        session.add(example)
        session.flush()
        recorder.audit(
            session,
            action=AuditAction.EXAMPLE_CREATED,
            user_id=user_id,
            context=context,
            resource_type=EXAMPLE_RESOURCE,
            resource_id=example.id,
            new_values=_example_view(example),
        )
        recorder.event(
            session,
            event_type=EventType.EXAMPLE_ADDED,
            user_id=user_id,
            context=context,
            user_session_id=principal.user_session_id,
            data={
                "example_id": example.id,
                "connection_id": connection.id,
                "source": example.source,
                "approved": example.approved,
            },
        )
        session.commit()
        return ExampleRead.model_validate(example)


def _connection_example(
    session: Session, principal: Principal, connection_id: str, example_id: str
) -> tuple[DatabaseConnection, VerifiedExample]:
    connection = connections_service.get_connection_or_any_for_admin(
        session, principal, connection_id
    )
    example = session.get(VerifiedExample, example_id)
    if example is None or example.connection_id != connection.id:
        raise ExampleNotFound(details={"example_id": example_id})
    return connection, example


def approve_example(
    session: Session,
    principal: Principal,
    *,
    connection_id: str,
    example_id: str,
    context: ClientContext | None = None,
) -> VerifiedExample:
    """The connection's owner approves an example (it then reaches prompts); idempotent."""
    connection, example = _connection_example(session, principal, connection_id, example_id)
    if connection.user_id != principal.user.id:
        raise NotConnectionOwner(details={"connection_id": connection_id})
    if not example.approved:
        _approve(example, principal.user.id)
        session.flush()
        recorder.audit(
            session,
            action=AuditAction.EXAMPLE_APPROVED,
            user_id=principal.user.id,
            context=context,
            resource_type=EXAMPLE_RESOURCE,
            resource_id=example.id,
            old_values={"approved": False},
            new_values={"approved": True},
        )
    return example


def delete_example(
    session: Session,
    principal: Principal,
    *,
    connection_id: str,
    example_id: str,
    context: ClientContext | None = None,
) -> None:
    """Delete one of the connection's examples (audited with what it held)."""
    _, example = _connection_example(session, principal, connection_id, example_id)
    old_values = _example_view(example)
    session.delete(example)
    session.flush()
    recorder.audit(
        session,
        action=AuditAction.EXAMPLE_DELETED,
        user_id=principal.user.id,
        context=context,
        resource_type=EXAMPLE_RESOURCE,
        resource_id=example_id,
        old_values=old_values,
    )


# --- review ----------------------------------------------------------------------------------


def feedback_conditions(
    principal: Principal,
    *,
    user_id: str | None = None,
    connection_id: str | None = None,
    generator: str | None = None,
    model: str | None = None,
    rating: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[ColumnElement[bool]]:
    """Conditions of a feedback review: users see their own ratings, admins anyone's."""
    observability_service.check_time_range(since, until)
    fb = AnswerFeedback
    conds: list[ColumnElement[bool]] = [
        column == value
        for column, value in (
            (fb.user_id, observability_service.visible_user_id(principal, user_id)),
            (fb.connection_id, connection_id),
            (fb.generator, generator),
            (fb.llm_model, model),
            (fb.rating, rating),
        )
        if value is not None
    ]
    if since is not None:
        conds.append(fb.created_at >= since)
    if until is not None:
        conds.append(fb.created_at < until)
    return conds


def list_feedback(
    session: Session, *, conditions: Sequence[ColumnElement[bool]], limit: int, cursor: str | None
) -> tuple[list[FeedbackReviewRead], str | None]:
    rows, next_cursor = keyset_page(
        session,
        select(AnswerFeedback).where(*conditions),
        keys=[AnswerFeedback.created_at, AnswerFeedback.id],
        kinds=[datetime, str],
        key_of=lambda r: (r.created_at, r.id),
        limit=limit,
        cursor=cursor,
    )
    examples = {
        e.feedback_id: e
        for e in session.scalars(
            select(VerifiedExample).where(VerifiedExample.feedback_id.in_([r.id for r in rows]))
        )
    }
    items = []
    for row in rows:
        item = FeedbackReviewRead.model_validate(row)
        example = examples.get(row.id)
        item.example = ExampleRef(id=example.id, approved=example.approved) if example else None
        items.append(item)
    return items, next_cursor


FEEDBACK_CSV_COLUMNS = (
    "id",
    "created_at",
    "updated_at",
    "user_id",
    "message_id",
    "query_id",
    "connection_id",
    "generator",
    "llm_model",
    "rating",
    "comment",
    "corrected_sql",
)


def record_feedback_export(
    session: Session,
    principal: Principal,
    *,
    filters: dict[str, Any],
    context: ClientContext,
) -> None:
    """Audit and record an export of ratings (before its first byte is streamed)."""
    observability_service.record_export(
        session,
        user_id=principal.user.id,
        user_session_id=principal.user_session_id,
        context=context,
        resource=FEEDBACK_RESOURCE,
        filters=filters,
    )


def feedback_csv(
    session_factory: sessionmaker[Session], conditions: Sequence[ColumnElement[bool]]
) -> Iterator[str]:
    """The ratings `conditions` select as CSV chunks, newest first, read by a session of its
    own (the request's is closed by then)."""
    statement = (
        select(AnswerFeedback)
        .where(*conditions)
        .order_by(AnswerFeedback.created_at.desc(), AnswerFeedback.id.desc())
    )
    return observability_service.stream_csv(session_factory, statement, FEEDBACK_CSV_COLUMNS)


_GROUP_COLUMNS = {
    "connection": AnswerFeedback.connection_id,
    "generator": AnswerFeedback.generator,
    "model": AnswerFeedback.llm_model,
}


def _group(key: str | None, counts: dict[int, int], corrected: int) -> FeedbackGroup:
    total = sum(counts.values())
    average = sum(r * n for r, n in counts.items()) / total if total else None
    return FeedbackGroup(
        key=key,
        count=total,
        average_rating=round(average, 3) if average is not None else None,
        ratings={str(r): counts.get(r, 0) for r in range(1, 6)},
        corrected=corrected,
    )


def summarize_feedback(
    session: Session,
    *,
    group_by: FeedbackGroupBy,
    conditions: Sequence[ColumnElement[bool]],
    since: datetime | None,
    until: datetime | None,
) -> FeedbackSummary:
    """Counts and average rating overall and per connection, generator or model."""
    key = _GROUP_COLUMNS[group_by]
    rows = session.execute(
        select(
            key,
            AnswerFeedback.rating,
            func.count(),
            func.sum(case((AnswerFeedback.corrected_sql.is_not(None), 1), else_=0)),
        )
        .where(*conditions)
        .group_by(key, AnswerFeedback.rating)
    ).all()
    per_key: dict[str | None, tuple[dict[int, int], list[int]]] = {}
    total_counts: dict[int, int] = {}
    total_corrected = 0
    for group_key, rating, count, corrected in rows:
        counts, fixed = per_key.setdefault(group_key, ({}, [0]))
        counts[int(rating)] = counts.get(int(rating), 0) + int(count)
        fixed[0] += int(corrected or 0)
        total_counts[int(rating)] = total_counts.get(int(rating), 0) + int(count)
        total_corrected += int(corrected or 0)
    groups = [_group(k, counts, fixed[0]) for k, (counts, fixed) in per_key.items()]
    groups.sort(key=lambda g: (-g.count, g.key or ""))
    return FeedbackSummary(
        group_by=group_by,
        since=since,
        until=until,
        total=_group(None, total_counts, total_corrected),
        groups=groups,
    )
