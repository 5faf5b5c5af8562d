"""Chat sessions and their messages: ownership, listing, and contiguous message numbering."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, cast

from sqlalchemy import (
    Insert,
    Integer,
    String,
    Table,
    Update,
    bindparam,
    func,
    insert,
    select,
    union_all,
    update,
)
from sqlalchemy import cast as cast_as
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from backend.chat.errors import ChatMessageNotFound, ChatSessionNotFound, MessageNotADraft
from backend.chat.models import ChatMessage, ChatSession
from backend.core.db import utcnow
from backend.core.pagination import keyset_page
from backend.feedback import retrieval as feedback_retrieval
from backend.nl2sql.charts import suggest_chart
from backend.observability.recorder import row_with_defaults

DEFAULT_TITLE = "New chat"
MAX_PAGE_SIZE = 100
MAX_MESSAGE_ID = 2**31 - 1
"""The largest id `chat_messages.id` (a 32-bit integer on PostgreSQL) can hold."""


@dataclass(frozen=True, slots=True)
class NewMessage:
    message_type: str
    content: str
    query_id: str | None = None
    sql_query: str | None = None
    query_result: dict[str, Any] | None = None
    execution_time_ms: float | None = None
    error_message: str | None = None


def create_chat_session(
    session: Session, *, user_id: str, title: str | None, connection_id: str | None
) -> ChatSession:
    """Flushes, does not commit; the caller has checked the connection is the user's."""
    chat = ChatSession(
        user_id=user_id, title=title or DEFAULT_TITLE, connection_id=connection_id, message_count=0
    )
    session.add(chat)
    session.flush()
    return chat


def get_chat_session(session: Session, *, user_id: str, session_id: str) -> ChatSession:
    """The user's active session; `ChatSessionNotFound` (404) for anyone else's or a deleted one."""
    return own_chat_session(
        session.get(ChatSession, session_id), user_id=user_id, session_id=session_id
    )


def own_chat_session(chat: ChatSession | None, *, user_id: str, session_id: str) -> ChatSession:
    """`get_chat_session`'s checks on a session the caller read (None: no such session)."""
    if chat is None or chat.user_id != user_id or not chat.is_active:
        raise ChatSessionNotFound(details={"session_id": session_id})
    return chat


def _activity() -> Any:
    return func.coalesce(ChatSession.last_message_at, ChatSession.created_at)


def list_chat_sessions(
    session: Session, *, user_id: str, limit: int, cursor: str | None
) -> tuple[list[ChatSession], str | None]:
    """The user's active sessions, newest activity first; returns (page, next cursor)."""
    activity = _activity()
    query = select(ChatSession).where(ChatSession.user_id == user_id, ChatSession.is_active)
    return keyset_page(
        session,
        query,
        keys=[activity, ChatSession.id],
        kinds=[datetime, str],
        key_of=lambda c: (c.last_message_at or c.created_at, c.id),
        limit=limit,
        cursor=cursor,
    )


def update_chat_session(
    session: Session, chat: ChatSession, *, changes: dict[str, Any]
) -> ChatSession:
    for field in ("title", "connection_id"):
        if field in changes:
            setattr(chat, field, changes[field])
    session.flush()
    return chat


def delete_chat_session(session: Session, chat: ChatSession) -> None:
    chat.is_active = False
    session.flush()


def list_messages(
    session: Session, chat: ChatSession, *, limit: int, cursor: str | None
) -> tuple[list[ChatMessage], str | None]:
    """Messages in conversation order; returns (page, next cursor)."""
    query = select(ChatMessage).where(ChatMessage.session_id == chat.id)
    return keyset_page(
        session,
        query,
        keys=[ChatMessage.sequence_number],
        kinds=[int],
        key_of=lambda m: (m.sequence_number,),
        limit=limit,
        cursor=cursor,
        descending=False,
    )


_RECENT_MESSAGES = (
    # Only the three columns a turn needs: not the stored results (JSON) nor ORM objects.
    # Built once: an ask reads it every time.
    select(ChatMessage.message_type, ChatMessage.content, ChatMessage.sql_query)
    .where(ChatMessage.session_id == bindparam("session_id", type_=String))
    .order_by(ChatMessage.sequence_number.desc())
    .limit(bindparam("messages", type_=Integer))
)


def recent_turns(
    session: Session, chat: ChatSession, *, max_turns: int
) -> list[tuple[str, str | None]]:
    """The last `max_turns` questions of the session with the SQL that answered each (or None)."""
    rows = session.execute(
        _RECENT_MESSAGES, {"session_id": chat.id, "messages": max_turns * 2}
    ).all()
    turns: list[tuple[str, str | None]] = []
    for message_type, content, sql_query in reversed(rows):
        if message_type == "user":
            turns.append((content, None))
        elif turns and message_type == "assistant" and turns[-1][1] is None:
            turns[-1] = (turns[-1][0], sql_query)
    return turns[-max_turns:]


_CHAT_SESSIONS = cast("Table", ChatSession.__table__)
_CHAT_MESSAGES = cast("Table", ChatMessage.__table__)
_MESSAGE_COLUMNS = (
    "session_id",
    "message_type",
    "content",
    "query_id",
    "sql_query",
    "query_result",
    "execution_time",
    "error_message",
    "timestamp",
)


def _reserve() -> Update:
    """Reserves `:count` sequence numbers on the session row `:chat_id` (and takes its write
    lock); answers the new `message_count`."""
    sessions = _CHAT_SESSIONS
    now = bindparam("now", type_=sessions.c.updated_at.type)
    return (
        update(sessions)
        .where(sessions.c.id == bindparam("chat_id", type_=sessions.c.id.type))
        .values(
            message_count=sessions.c.message_count + bindparam("count", type_=Integer()),
            last_message_at=now,
            updated_at=now,
        )
        .returning(sessions.c.message_count)
    )


# Built once: a statement object reused skips its construction and its cache key each time.
_RESERVE = _reserve()
_INSERT_MESSAGES = insert(_CHAT_MESSAGES).returning(
    _CHAT_MESSAGES.c.sequence_number, _CHAT_MESSAGES.c.id
)


@cache
def _plain_insert(table: Table) -> Insert:
    return insert(table)


def append_messages(
    session: Session,
    chat: ChatSession,
    messages: list[NewMessage],
    *,
    along: Sequence[tuple[Table, Mapping[str, Any]]] = (),
    then: Sequence[tuple[Update, Mapping[str, Any]]] = (),
) -> list[int]:
    """Add messages with the next sequence numbers; returns their ids, in order. Does not
    commit. `along`: rows of other tables (an ask's analytics row and event) written in the
    same transaction; `then`: statements built once with parameter names of their own (an LLM
    ask's token usage), written in it too.

    One UPDATE both reserves the numbers and takes the row's write lock (PostgreSQL row lock,
    SQLite's database write lock) until the transaction ends, so concurrent asks on the same
    session get contiguous, distinct numbers and `message_count` stays equal to the highest.
    On PostgreSQL everything is one statement, the UPDATE, the rows of `along` and the
    statements of `then` as data-modifying common table expressions of the messages' INSERT
    (one round trip instead of one per statement; on its own, a statement is its own
    transaction). Elsewhere the rows of `along` are inserted first, then the UPDATE, one INSERT
    of every message and the statements of `then`.
    """
    now = utcnow()
    count = len(messages)
    # Built before the first write: only the sequence numbers wait for the UPDATE's answer.
    rows = [
        {
            "session_id": chat.id,
            "message_type": m.message_type,
            "content": m.content,
            "query_id": m.query_id,
            "sql_query": m.sql_query,
            "query_result": m.query_result,
            "execution_time": m.execution_time_ms,
            "error_message": m.error_message,
            "timestamp": now,
        }
        for m in messages
    ]
    reserve = {"chat_id": chat.id, "count": count, "now": now}
    if session.get_bind().dialect.name == "postgresql":
        full = [(table, row_with_defaults(table, row)) for table, row in along]
        statement = _one_statement(
            count,
            tuple((t, tuple(sorted(r))) for t, r in full),
            tuple(written_then for written_then, _ in then),
        )
        parameters: dict[str, Any] = dict(reserve)
        for _, then_parameters in then:
            parameters.update(then_parameters)
        for index, (_, values) in enumerate(full):
            parameters.update({f"a{index}_{key}": value for key, value in values.items()})
        for index, message in enumerate(rows):
            parameters.update({f"m{index}_{key}": value for key, value in message.items()})
        written = session.execute(statement, parameters).all()
        first = min(int(seq) for seq, _ in written)
        new_count = first + count - 1
    else:
        for table, row in along:
            session.execute(_plain_insert(table), [dict(row)])
        new_count = session.execute(_RESERVE, reserve).scalar_one()
        first = new_count - count + 1
        written = session.execute(
            _INSERT_MESSAGES,
            [{**row, "sequence_number": first + offset} for offset, row in enumerate(rows)],
        ).all()
        for then_statement, then_parameters in then:
            session.connection().execute(then_statement, dict(then_parameters))
    set_committed_value(chat, "message_count", new_count)
    set_committed_value(chat, "last_message_at", now)
    set_committed_value(chat, "updated_at", now)
    ids: dict[int, int] = {int(seq): int(i) for seq, i in written}
    return [ids[first + offset] for offset in range(count)]


@lru_cache(maxsize=64)
def _one_statement(
    count: int,
    along: tuple[tuple[Table, tuple[str, ...]], ...],
    then: tuple[Update, ...] = (),
) -> Insert:
    """PostgreSQL, built once per shape (how many messages; which tables and columns along;
    which statements then): `WITH along_0 AS (INSERT ...), ..., then_0 AS (UPDATE ...), ...,
    reserved AS (UPDATE chat_sessions ... RETURNING message_count) INSERT INTO chat_messages
    SELECT ... FROM reserved UNION ALL ...`. Values are bound by name: `a{i}_{column}` for the
    rows along, `m{i}_{column}` for the messages, the statements' own names for `then`."""
    stored = _CHAT_MESSAGES
    reserved = _RESERVE.cte("reserved")
    first = reserved.c.message_count - (count - 1)
    selects = [
        select(
            # Cast: an untyped NULL in a UNION would be read as text (a float column refuses it).
            *(
                cast_as(
                    bindparam(f"m{offset}_{key}", type_=stored.c[key].type), stored.c[key].type
                ).label(key)
                for key in _MESSAGE_COLUMNS
            ),
            (first + offset).label("sequence_number"),
        ).select_from(reserved)
        for offset in range(count)
    ]
    source = selects[0] if count == 1 else union_all(*selects)
    statement = (
        insert(stored)
        .from_select([*_MESSAGE_COLUMNS, "sequence_number"], source)
        .returning(stored.c.sequence_number, stored.c.id)
    )
    writes = [
        insert(table)
        .values({key: bindparam(f"a{index}_{key}", type_=table.c[key].type) for key in keys})
        .cte(f"along_{index}")
        for index, (table, keys) in enumerate(along)
    ]
    writes += [written.cte(f"then_{index}") for index, written in enumerate(then)]
    return statement.add_cte(*writes) if writes else statement


def get_message(session: Session, *, user_id: str, message_id: int) -> ChatMessage:
    """A message of one of the user's active sessions; `ChatMessageNotFound` (404) otherwise."""
    if not 1 <= message_id <= MAX_MESSAGE_ID:
        # Beyond the id column's range no message can exist (PostgreSQL would refuse the bind).
        raise ChatMessageNotFound(details={"message_id": message_id})
    row = session.execute(
        select(ChatMessage)
        .join(ChatSession, ChatSession.id == ChatMessage.session_id)
        .where(
            ChatMessage.id == message_id,
            ChatSession.user_id == user_id,
            ChatSession.is_active,
        )
    ).scalar_one_or_none()
    if row is None:
        raise ChatMessageNotFound(details={"message_id": message_id})
    return row


def question_of(session: Session, message: ChatMessage) -> str | None:
    """The question an answer replied to: the user message of the same ask."""
    if message.query_id is None:
        return None
    return session.scalar(
        select(ChatMessage.content).where(
            ChatMessage.session_id == message.session_id,
            ChatMessage.query_id == message.query_id,
            ChatMessage.message_type == "user",
        )
    )


def is_draft(message: ChatMessage) -> bool:
    """An answer given as SQL only (`execute: false`) and not run since."""
    result = message.query_result or {}
    return message.message_type == "assistant" and result.get("executed") is False


def get_draft(session: Session, *, user_id: str, message_id: int) -> ChatMessage:
    """The user's draft answer; 404 for anyone else's, 409 `message_not_a_draft` otherwise."""
    message = get_message(session, user_id=user_id, message_id=message_id)
    if not is_draft(message):
        raise MessageNotADraft(details={"message_id": message_id})
    return message


def record_draft_run(
    session: Session,
    *,
    message_id: int,
    sql: str,
    query_result: dict[str, Any],
    execution_time_ms: float | None,
) -> bool:
    """Show a draft's run in its thread: the message takes the SQL that ran and its result.
    False when the message is no longer a draft (run meanwhile). Flushes."""
    message = session.get(ChatMessage, message_id, with_for_update=True)
    if message is None or not is_draft(message):
        return False
    message.sql_query = sql
    message.query_result = query_result
    message.execution_time = execution_time_ms
    session.flush()
    return True


def ratings_of(session: Session, *, user_id: str, messages: list[ChatMessage]) -> dict[int, int]:
    """The user's own rating of each of these answers that they rated, by message id."""
    return feedback_retrieval.ratings_of(
        session, user_id=user_id, message_ids=[m.id for m in messages if m.message_type != "user"]
    )


def with_chart(query_result: dict[str, Any] | None) -> dict[str, Any] | None:
    """An answer's stored result with its chart spec: answers kept before the spec was stored
    get it suggested again from their stored columns and rows."""
    if not query_result or "chart" in query_result or not query_result.get("rows"):
        return query_result
    columns = query_result.get("columns") or []
    named = [
        (str(c.get("name")), c.get("type")) if isinstance(c, dict) else (str(c), None)
        for c in columns
    ]
    rows = query_result["rows"]
    if not named or not all(isinstance(r, list) and len(r) == len(named) for r in rows):
        return query_result
    return {**query_result, "chart": suggest_chart(named, rows).spec}
