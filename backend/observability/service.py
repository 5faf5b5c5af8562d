"""Reading what was recorded: filtered pages, CSV streams, summaries, the chain check, metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    cast,
    or_,
    select,
)
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker

from backend.auth.deps import Principal
from backend.auth.scopes import Scope
from backend.core.context import ClientContext
from backend.core.csv_writer import CsvChunks
from backend.core.errors import BadRequest, Forbidden
from backend.core.pagination import keyset_page
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.observability.models import AuditLog, Event, QueryAnalytics
from backend.observability.recorder import (
    audit_row_content,
    compute_row_hash,
)
from backend.observability.schemas import (
    AuditChainReport,
)

T = TypeVar("T")
MAX_PAGE_SIZE = 200
EXPORT_BATCH_ROWS = 1000


class InvalidTimeRange(BadRequest):
    code = "invalid_time_range"
    message = "`since` must be before `until`."


def visible_user_id(principal: Principal, user_id: str | None) -> str | None:
    """Whose rows a review list shows: admins see everyone (or the user they name); everyone
    else sees only their own rows."""
    if principal.has_scope(Scope.ADMIN) and principal.user.is_admin:
        return user_id
    if user_id is not None and user_id != principal.user.id:
        raise Forbidden("Only admins may look at another user's analytics.")
    return principal.user.id


def check_time_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise InvalidTimeRange(details={"since": since.isoformat(), "until": until.isoformat()})


# --- CSV ---------------------------------------------------------------------------------------


def stream_csv(
    session_factory: sessionmaker[Session],
    stmt: Select[T],
    columns: Sequence[str],
    *,
    row_values: Callable[[T], Sequence[Any]] | None = None,
) -> Iterator[str]:
    """CSV text in chunks, read in batches by a session of its own (the request's is closed)."""

    def values_of(row: T) -> Sequence[Any]:
        if row_values is not None:
            return row_values(row)
        return [getattr(row, c) for c in columns]

    out = CsvChunks(header=columns)
    with session_factory() as session:
        result = session.scalars(stmt.execution_options(yield_per=EXPORT_BATCH_ROWS))
        for i, row in enumerate(result, start=1):
            out.write(values_of(row))
            if i % EXPORT_BATCH_ROWS == 0:
                yield out.take()
    yield out.take()


def record_export(
    session: Session,
    *,
    user_id: str,
    user_session_id: str | None,
    context: ClientContext,
    resource: str,
    filters: dict[str, Any],
) -> None:
    """Audit and record an export (before its first byte is streamed)."""
    used = {k: v for k, v in filters.items() if v is not None}
    recorder.audit(
        session,
        action=AuditAction.EXPORTED,
        user_id=user_id,
        context=context,
        resource_type=resource,
        new_values={"format": "csv", "filters": used},
    )
    recorder.event(
        session,
        event_type=EventType.EXPORTED,
        user_id=user_id,
        context=context,
        data={"resource": resource, "format": "csv"},
        user_session_id=user_session_id,
    )


# --- query analytics ---------------------------------------------------------------------------

ANALYTICS_CSV_COLUMNS = (
    "id",
    "query_id",
    "timestamp",
    "user_id",
    "connection_id",
    "chat_session_id",
    "source",
    "generator",
    "question",
    "sql_query",
    "success",
    "error_code",
    "error_message",
    "execution_time",
    "row_count",
    "chart_type",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "llm_model",
    "llm_cost_estimate",
)


def _filters(
    *,
    equal: Sequence[tuple[InstrumentedAttribute[Any], Any]],
    timestamp: InstrumentedAttribute[datetime],
    since: datetime | None,
    until: datetime | None,
    text: str | None,
    searched: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
) -> list[ColumnElement[bool]]:
    """Conditions of a review list: the equality filters that were given, the half-open time
    range `[since, until)`, and a case-insensitive substring search (wildcards taken literally)."""
    check_time_range(since, until)
    conds: list[ColumnElement[bool]] = [
        column == value for column, value in equal if value is not None
    ]
    if since is not None:
        conds.append(timestamp >= since)
    if until is not None:
        conds.append(timestamp < until)
    if text:
        conds.append(or_(*(column.icontains(text, autoescape=True) for column in searched)))
    return conds


def analytics_conditions(
    *,
    user_id: str | None = None,
    connection_id: str | None = None,
    success: bool | None = None,
    source: str | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    qa = QueryAnalytics
    return _filters(
        equal=[
            (qa.user_id, user_id),
            (qa.connection_id, connection_id),
            (qa.success, success),
            (qa.source, source),
            (qa.llm_model, model),
        ],
        timestamp=qa.timestamp,
        since=since,
        until=until,
        text=text,
        searched=[qa.question, qa.sql_query, qa.error_message],
    )


def list_queries(
    session: Session,
    *,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
) -> tuple[list[QueryAnalytics], str | None]:
    return keyset_page(
        session,
        select(QueryAnalytics).where(*conditions),
        keys=[QueryAnalytics.timestamp, QueryAnalytics.id],
        kinds=[datetime, int],
        key_of=lambda r: (r.timestamp, r.id),
        limit=limit,
        cursor=cursor,
    )


def queries_export_statement(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return (
        select(QueryAnalytics)
        .where(*conditions)
        .order_by(QueryAnalytics.timestamp.desc(), QueryAnalytics.id.desc())
    )


# --- audit log ---------------------------------------------------------------------------------

AUDIT_CSV_COLUMNS = (
    "id",
    "timestamp",
    "user_id",
    "action",
    "resource_type",
    "resource_id",
    "success",
    "error_message",
    "old_values",
    "new_values",
    "ip_address",
    "user_agent",
    "request_id",
    "prev_hash",
    "row_hash",
)


def audit_conditions(
    *,
    user_id: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    success: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    return _filters(
        equal=[
            (AuditLog.user_id, user_id),
            (AuditLog.action, action),
            (AuditLog.resource_type, resource_type),
            (AuditLog.resource_id, resource_id),
            (AuditLog.success, success),
        ],
        timestamp=AuditLog.timestamp,
        since=since,
        until=until,
        text=text,
        searched=[AuditLog.action, AuditLog.resource_id, AuditLog.error_message],
    )


def list_audit_logs(
    session: Session,
    *,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
) -> tuple[list[AuditLog], str | None]:
    return keyset_page(
        session,
        select(AuditLog).where(*conditions),
        keys=[AuditLog.timestamp, AuditLog.id],
        kinds=[datetime, int],
        key_of=lambda r: (r.timestamp, r.id),
        limit=limit,
        cursor=cursor,
    )


def audit_export_statement(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return select(AuditLog).where(*conditions).order_by(AuditLog.id.desc())


def verify_audit_chain(session: Session, *, anchor: str | None = None) -> AuditChainReport:
    """Walk the chain in id order; report the first row whose hash or link does not match.

    An edited row fails its own hash; a deleted row breaks the link of the row after it.
    Deleting the newest rows leaves a shorter chain that still links up, so a monitor keeps
    the `last_hash` of a check and passes it back as `anchor`: if that row is gone, the
    chain was truncated.
    """
    prev_hash: str | None = None
    checked = 0
    anchor_seen = anchor is None
    rows = session.scalars(
        select(AuditLog).order_by(AuditLog.id).execution_options(yield_per=EXPORT_BATCH_ROWS)
    )
    for row in rows:
        checked += 1
        if row.row_hash is None:
            return AuditChainReport(
                intact=False, checked_rows=checked, first_broken_id=row.id, reason="unhashed_row"
            )
        if row.prev_hash != prev_hash:
            return AuditChainReport(
                intact=False, checked_rows=checked, first_broken_id=row.id, reason="link_broken"
            )
        if compute_row_hash(audit_row_content(row), row.prev_hash) != row.row_hash:
            return AuditChainReport(
                intact=False, checked_rows=checked, first_broken_id=row.id, reason="row_modified"
            )
        prev_hash = row.row_hash
        anchor_seen = anchor_seen or row.row_hash == anchor
    if not anchor_seen:
        return AuditChainReport(
            intact=False, checked_rows=checked, reason="anchor_missing", last_hash=prev_hash
        )
    return AuditChainReport(intact=True, checked_rows=checked, last_hash=prev_hash)


# --- events ------------------------------------------------------------------------------------

EVENT_CSV_COLUMNS = (
    "id",
    "timestamp",
    "event_type",
    "user_id",
    "session_id",
    "event_data",
    "ip_address",
    "user_agent",
)


def event_conditions(
    *,
    event_type: str | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    text: str | None = None,
) -> list[ColumnElement[bool]]:
    return _filters(
        equal=[
            (Event.event_type, event_type),
            (Event.user_id, user_id),
            (Event.session_id, session_id),
        ],
        timestamp=Event.timestamp,
        since=since,
        until=until,
        text=text,
        searched=[Event.event_type, cast(Event.event_data, String)],
    )


def list_events(
    session: Session,
    *,
    conditions: Sequence[ColumnElement[bool]],
    limit: int,
    cursor: str | None,
) -> tuple[list[Event], str | None]:
    return keyset_page(
        session,
        select(Event).where(*conditions),
        keys=[Event.timestamp, Event.id],
        kinds=[datetime, int],
        key_of=lambda r: (r.timestamp, r.id),
        limit=limit,
        cursor=cursor,
    )


def events_export_statement(conditions: Sequence[ColumnElement[bool]]) -> Select[Any]:
    return select(Event).where(*conditions).order_by(Event.timestamp.desc(), Event.id.desc())
