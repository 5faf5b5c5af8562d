"""What the ask reads of this domain: the verified examples a prompt may show, and which earlier
answers their asker judged wrong. Imports no service (the ask pipeline imports it)."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import BindParameter, Select, String, Table, bindparam, or_, select
from sqlalchemy.orm import Session

from backend.feedback.models import AnswerFeedback, VerifiedExample

MAX_CANDIDATES = 500
"""Most recent verified examples of a connection considered for one prompt."""
POOR_RATING = 2
"""A rating at or below this marks an answer as wrong: never reused as an example."""


def _usable_statement() -> Select[Any]:
    examples = cast("Table", VerifiedExample.__table__)
    return (
        select(examples.c.question, examples.c.sql)
        .where(
            examples.c.connection_id == bindparam("connection_id", type_=String()),
            or_(
                examples.c.approved.is_(True),
                examples.c.owner_id == bindparam("user_id", type_=String()),
            ),
        )
        .order_by(examples.c.created_at.desc(), examples.c.id)
        .limit(MAX_CANDIDATES)
    )


# Built once: a statement reused skips its construction and cache key on every LLM ask.
_USABLE = _usable_statement()


def usable_examples(session: Session, *, connection_id: str, user_id: str) -> list[tuple[str, str]]:
    """(question, SQL) of the connection's approved examples and the caller's own pending ones,
    newest first; never another user's unapproved material."""
    rows = session.connection().execute(
        _USABLE, {"connection_id": connection_id, "user_id": user_id}
    )
    return [(str(q), str(s)) for q, s in rows]


def wrong_query_ids(user_id: str | BindParameter[str]) -> Select[Any]:
    """The query ids whose answers `user_id` rated poorly or corrected (for `not_in`); the
    user may be a bound parameter of the statement this goes into."""
    feedback = cast("Table", AnswerFeedback.__table__)
    return select(feedback.c.query_id).where(
        feedback.c.user_id == user_id,
        feedback.c.query_id.is_not(None),
        or_(feedback.c.rating <= POOR_RATING, feedback.c.corrected_sql.is_not(None)),
    )


def ratings_of(session: Session, *, user_id: str, message_ids: list[int]) -> dict[int, int]:
    """The user's rating of each of these messages that they rated."""
    if not message_ids:
        return {}
    rows = session.execute(
        select(AnswerFeedback.message_id, AnswerFeedback.rating).where(
            AnswerFeedback.user_id == user_id, AnswerFeedback.message_id.in_(message_ids)
        )
    ).all()
    return {int(m): int(r) for m, r in rows}
