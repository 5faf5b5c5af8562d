"""What the ask reads of this domain: the verified examples a prompt may show, and which earlier
answers their asker judged wrong. Imports no service (the ask pipeline imports it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from backend.feedback.models import AnswerFeedback, VerifiedExample

MAX_CANDIDATES = 500
"""Most recent verified examples of a connection considered for one prompt."""
POOR_RATING = 2
"""A rating at or below this marks an answer as wrong: never reused as an example."""


def usable_examples(session: Session, *, connection_id: str, user_id: str) -> list[tuple[str, str]]:
    """(question, SQL) of the connection's approved examples and the caller's own pending ones,
    newest first; never another user's unapproved material."""
    rows = session.execute(
        select(VerifiedExample.question, VerifiedExample.sql)
        .where(
            VerifiedExample.connection_id == connection_id,
            or_(VerifiedExample.approved.is_(True), VerifiedExample.owner_id == user_id),
        )
        .order_by(VerifiedExample.created_at.desc(), VerifiedExample.id)
        .limit(MAX_CANDIDATES)
    ).all()
    return [(str(q), str(s)) for q, s in rows]


def wrong_query_ids(user_id: str) -> Select[Any]:
    """The query ids whose answers `user_id` rated poorly or corrected (for `not_in`)."""
    return select(AnswerFeedback.query_id).where(
        AnswerFeedback.user_id == user_id,
        AnswerFeedback.query_id.is_not(None),
        or_(AnswerFeedback.rating <= POOR_RATING, AnswerFeedback.corrected_sql.is_not(None)),
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
