"""An ask's recording: one short write transaction, which a caller may join (`on_recorded`,
how a background job stores its outcome with the ask it ran)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.auth.deps import Principal
from backend.auth.models import User
from backend.auth.scopes import ROLE_SCOPES
from backend.chat import service as chat_service
from backend.chat.models import ChatMessage
from backend.core.config import Settings
from backend.nl2sql import pipeline
from backend.nl2sql.errors import QuestionNotUnderstoodError
from backend.observability.models import QueryAnalytics
from tests.chat.conftest import make_caller


def _principal_and_chat(session: Session, settings: Settings) -> tuple[Principal, str]:
    caller = make_caller(session, settings)
    user = session.get(User, caller.user_id)
    assert user is not None
    chat = chat_service.create_chat_session(
        session, user_id=user.id, title="recording", connection_id=caller.connection_id
    )
    session.commit()
    session.expunge(user)
    return Principal(user=user, scopes=ROLE_SCOPES[user.role]), chat.id


def _analytics_rows(session: Session, query_id: str) -> int:
    count = session.scalar(
        select(func.count()).select_from(QueryAnalytics).where(QueryAnalytics.query_id == query_id)
    )
    session.rollback()
    return int(count or 0)


def test_on_recorded_writes_in_the_asks_own_transaction(
    app: FastAPI, session: Session, settings: Settings
) -> None:
    principal, chat_id = _principal_and_chat(session, settings)
    seen: dict[str, Any] = {}

    def on_recorded(recording: Session, outcome: pipeline.AskAnswer | Exception) -> None:
        assert isinstance(outcome, pipeline.AskAnswer)
        seen["query_id"] = outcome.query_id
        seen["inside"] = recording.scalar(
            select(func.count())
            .select_from(QueryAnalytics)
            .where(QueryAnalytics.query_id == outcome.query_id)
        )
        seen["outside"] = _analytics_rows(session, outcome.query_id)
        message = recording.get(ChatMessage, outcome.message_id)
        seen["message"] = message.sql_query if message is not None else None

    answer = pipeline.ask(
        app.state.session_factory,
        principal=principal,
        chat_session_id=chat_id,
        question="How many customers are there?",
        settings=settings,
        on_recorded=on_recorded,
    )
    assert seen["query_id"] == answer.query_id
    assert seen["inside"] == 1  # the recording is visible to the hook's writes...
    assert seen["outside"] == 0  # ...and not committed before they are
    assert seen["message"] == answer.sql
    assert _analytics_rows(session, answer.query_id) == 1


def test_a_failing_hook_leaves_nothing_half_written(
    app: FastAPI, session: Session, settings: Settings
) -> None:
    principal, chat_id = _principal_and_chat(session, settings)
    query_ids: list[str] = []

    def on_recorded(_recording: Session, outcome: pipeline.AskAnswer | Exception) -> None:
        assert isinstance(outcome, QuestionNotUnderstoodError)
        query_ids.append(str(outcome.details["query_id"]))
        raise RuntimeError("the job row could not be written")

    with pytest.raises(RuntimeError, match="job row"):
        pipeline.ask(
            app.state.session_factory,
            principal=principal,
            chat_session_id=chat_id,
            question="zzz qqq xxyz",
            settings=settings,
            on_recorded=on_recorded,
        )
    assert len(query_ids) == 1
    assert _analytics_rows(session, query_ids[0]) == 0
    messages = session.scalar(
        select(func.count()).select_from(ChatMessage).where(ChatMessage.session_id == chat_id)
    )
    assert messages == 0


def test_an_ask_cancelled_while_it_waits_for_a_thread_is_recorded_cancelled(
    app: FastAPI, session: Session, settings: Settings
) -> None:
    # Every ask thread busy: the offline ask's work waits for one and is cancelled there (its
    # client went away). The work never began; it was lost, recorded nowhere.
    import asyncio

    from backend.core.cpu_slots import ask_threads

    principal, chat_id = _principal_and_chat(session, settings)
    factory = app.state.session_factory

    async def scenario() -> str:
        plan = await pipeline.read_ask_async(
            factory,
            principal=principal,
            chat_session_id=chat_id,
            question="How many customers are there?",
            settings=settings,
        )
        limiter = ask_threads()
        holders = [object() for _ in range(int(limiter.total_tokens))]
        for holder in holders:
            await limiter.acquire_on_behalf_of(holder)
        task = asyncio.create_task(pipeline.finish_ask_async(factory, plan))
        await asyncio.sleep(0.05)
        assert not task.done()
        task.cancel()
        for holder in holders:
            limiter.release_on_behalf_of(holder)
        with pytest.raises(asyncio.CancelledError):
            await task
        return plan.run.query_id

    query_id = asyncio.run(scenario())
    row = session.scalars(
        select(QueryAnalytics).where(QueryAnalytics.query_id == query_id)
    ).one_or_none()
    assert row is not None, "the cancelled ask was not recorded"
    assert (row.success, row.error_code, row.chat_session_id) == (False, "cancelled", chat_id)
