"""Exporting a recorded query: re-run its SQL through the guard and stream every row as CSV.

Only the owner of the recorded query may export it. The preview's row cap does not apply (the
LIMIT the guard added for the preview is lifted to `export.max_rows`); a LIMIT the query itself
had stays. Rows are fetched in chunks through a server-side cursor where the driver has one,
so memory stays bounded whatever the size of the result.

The request's session is committed and closed before the body streams, so the stream holds
only plain values and a detached connection row, and records its outcome in a session of its
own when it ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlglot
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlglot import exp
from sqlglot.errors import SqlglotError

from backend.admin.config_keys import get_config_value
from backend.auth.deps import Principal
from backend.connections import executor, schema_cache
from backend.connections.executor import RowChunk
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.csv_writer import CsvChunks
from backend.core.errors import AppError
from backend.nl2sql.errors import ExportNotPossible, QueryNotFound
from backend.nl2sql.export_csv import csv_rows
from backend.nl2sql.guard import cap_limit_parameter, guard_sql, sqlglot_dialect
from backend.nl2sql.pipeline import DRAFT_SOURCE, ensure_usable_connection
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.observability.models import Event, QueryAnalytics
from backend.semantic import service as semantic_service
from backend.semantic.visibility import hidden_items

logger = logging.getLogger("nlsql.export")

CHUNK_ROWS = 2000
"""Rows fetched and formatted at a time (larger batches gain nothing: fewer fit in the cache)."""
BODY_PIECE_BYTES = 1 << 20
"""The body goes out in pieces of about this many bytes rather than one per batch: each piece
is a hop between the event loop and the thread that writes the rows, and every hop costs a
wait for the GIL (about one switch interval, 5 ms) that 500 small pieces would add up to."""
RESOURCE_TYPE = "query"
_RUN_EVENTS = (EventType.TEMPLATE_RAN, EventType.ASKED, EventType.SQL_RAN)
_EVENT_WINDOW = timedelta(minutes=10)


@dataclass(slots=True)
class CsvExport:
    """An export that passed every check; `rows()` streams it (the first chunk already ran)."""

    query_id: str
    user_id: str
    filename: str
    sql: str
    max_rows: int
    first: RowChunk | None
    rest: Iterator[RowChunk]
    session_factory: sessionmaker[Session]
    context: ClientContext
    user_session_id: str | None
    connection_id: str
    rows_sent: int = 0

    def rows(self) -> Iterator[bytes]:
        """The CSV body: a header line, then every row, a chunk at a time."""
        error: str | None = None
        try:
            if self.first is None:
                return
            header = CsvChunks(header=[c.name for c in self.first.columns]).take()
            pending = [header.encode("utf-8"), csv_rows(self.first.rows)]
            pending_rows, pending_bytes = len(self.first.rows), len(pending[1])
            self.first = None
            for chunk in self.rest:
                if pending_bytes >= BODY_PIECE_BYTES:
                    yield b"".join(pending)
                    self.rows_sent += pending_rows
                    pending, pending_rows, pending_bytes = [], 0, 0
                text = csv_rows(chunk.rows)
                pending.append(text)
                pending_rows += len(chunk.rows)
                pending_bytes += len(text)
            yield b"".join(pending)
            self.rows_sent += pending_rows
        except AppError as exc:
            error = exc.code
            logger.warning("export of query %s failed mid-stream: %s", self.query_id, exc)
            raise
        finally:
            # A client that hangs up stops the body early: end the query and free its
            # connection now rather than whenever the generator is collected.
            close = getattr(self.rest, "close", None)
            if close is not None:
                close()
            self._record_outcome(error)

    def _record_outcome(self, error: str | None) -> None:
        try:
            with self.session_factory() as session:
                recorder.event(
                    session,
                    event_type=EventType.EXPORTED,
                    user_id=self.user_id,
                    context=self.context,
                    user_session_id=self.user_session_id,
                    data={
                        "query_id": self.query_id,
                        "connection_id": self.connection_id,
                        "format": "csv",
                        "rows": self.rows_sent,
                        "success": error is None,
                        "error_code": error,
                    },
                )
                session.commit()
        except Exception:  # the rows went out; a lost record must not turn into a broken body
            logger.exception("could not record the export of query %s", self.query_id)


def _lift_preview_cap(
    sql: str, *, dialect: str, preview_cap: int, max_rows: int, recorded: dict[str, Any] | None
) -> str:
    """The recorded SQL with the preview's LIMIT lifted: back to the LIMIT the query was
    written with (from the run's event), or to `max_rows` when it had none. Without the event
    (pruned), a LIMIT of exactly row cap + 1 is taken for the guard's."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except SqlglotError:
        return sql  # the guard reports it
    limit = tree.args.get("limit")
    if not isinstance(limit, exp.Limit):
        return sql
    value = limit.expression
    if not (isinstance(value, exp.Literal) and not value.is_string and str(value.this).isdigit()):
        return sql
    if recorded is not None and "limit_applied" in recorded:
        if not recorded["limit_applied"]:
            return sql
        written = recorded.get("written_limit")
        lifted = min(written, max_rows) if isinstance(written, int) else max_rows
    elif int(value.this) == preview_cap + 1:
        lifted = max_rows
    else:
        return sql
    limit.set("expression", exp.Literal.number(lifted))
    return tree.sql(dialect=dialect)


def _recorded_event(session: Session, row: QueryAnalytics) -> dict[str, Any] | None:
    """The data of the event recorded with the run (parameters, LIMIT), if still kept."""
    events = session.scalars(
        select(Event).where(
            Event.user_id == row.user_id,
            Event.event_type.in_([str(e) for e in _RUN_EVENTS]),
            Event.timestamp >= row.timestamp - _EVENT_WINDOW,
            Event.timestamp <= row.timestamp + _EVENT_WINDOW,
        )
    )
    for event in events:
        data = event.event_data or {}
        if data.get("query_id") == row.query_id:
            return dict(data)
    return None


def _recorded_parameters(recorded: dict[str, Any] | None) -> dict[str, Any] | None:
    """The values a template run bound (they are not part of the SQL)."""
    if recorded is None or not isinstance(recorded.get("parameters"), dict):
        return None
    values = dict(recorded["parameters"])
    # A value recorded under a secret-looking name was redacted: it cannot be re-run.
    return None if recorder.REDACTED in values.values() else values


def _audit(
    session: Session,
    principal: Principal,
    query_id: str,
    values: dict[str, Any],
    context: ClientContext | None,
    *,
    error: AppError | None,
) -> None:
    recorder.audit(
        session,
        action=AuditAction.EXPORTED,
        user_id=principal.user.id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=query_id,
        new_values=values,
        success=error is None,
        error_message=error.message if error is not None else None,
    )


def prepare_csv_export(
    session_factory: sessionmaker[Session],
    *,
    principal: Principal,
    query_id: str,
    settings: Settings,
    context: ClientContext | None = None,
) -> CsvExport:
    """Check ownership, guard the SQL again and start the query; audits the export.

    Reads in one short session that is closed before the query starts; the audit row is
    written in a short transaction of its own. Raises `QueryNotFound` (404) for another
    user's or an unknown query, `ExportNotPossible` (409) for one that failed or lost its
    connection, and the guard's or the database's errors as an ask would.
    """
    with session_factory() as session:
        row = session.scalar(
            select(QueryAnalytics).where(
                QueryAnalytics.query_id == query_id, QueryAnalytics.user_id == principal.user.id
            )
        )
        if row is None:
            raise QueryNotFound(details={"query_id": query_id})
        if not row.success or not row.sql_query:
            raise ExportNotPossible(
                "Only a query that succeeded can be exported; this one failed.",
                details={"query_id": query_id, "error_code": row.error_code},
            )
        if row.source == DRAFT_SOURCE:
            raise ExportNotPossible(
                "This query was only drafted (execute: false); run it with POST /query/sql and "
                "export that run.",
                details={"query_id": query_id},
            )
        if row.connection_id is None:
            raise ExportNotPossible(
                "The connection this query ran on was deleted.", details={"query_id": query_id}
            )
        connection = ensure_usable_connection(
            session, principal=principal, connection_id=row.connection_id
        )
        max_rows = int(get_config_value(session, "export.max_rows"))
        timeout_seconds = float(get_config_value(session, "export.timeout_seconds"))
        preview_cap = executor.configured_limits(session).row_cap
        recorded = _recorded_event(session, row)
        cached = schema_cache.load_snapshot(session, connection)
        hidden = hidden_items(semantic_service.load_current_layer(session, connection.id))
        recorded_sql, source = row.sql_query, row.source
    dialect = sqlglot_dialect(connection.db_type)
    params = _recorded_parameters(recorded) if source == "template" else None
    if source == "template" and params is None:
        raise ExportNotPossible(
            "The parameters of this template run are no longer on record; run the template "
            "again and export that run.",
            details={"query_id": query_id},
        )
    snapshot = (
        cached[0]
        if cached is not None
        else schema_cache.introspect_and_store(session_factory, connection, settings=settings)
    )
    sql = _lift_preview_cap(
        recorded_sql,
        dialect=dialect,
        preview_cap=preview_cap,
        max_rows=max_rows,
        recorded=recorded,
    )
    guarded = guard_sql(
        sql,
        snapshot=snapshot,
        dialect=connection.db_type,
        row_cap=max_rows,
        parameters=list(params) if params is not None else None,
        hidden=hidden,
    )
    if params is not None:
        params = cap_limit_parameter(guarded, params, max_rows)
    audited = {"format": "csv", "connection_id": connection.id, "max_rows": max_rows}
    stream = executor.stream_on_connection(
        connection,
        guarded.sql,
        settings=settings,
        timeout_seconds=timeout_seconds,
        chunk_size=CHUNK_ROWS,
        max_rows=max_rows,
        params=params,
        raw_values=True,
    )
    # The first chunk runs now, so a refused or failing query is an error status, not a
    # truncated body.
    try:
        first = next(stream, None)
    except AppError as exc:
        with session_factory() as session:
            _audit(session, principal, query_id, audited, context, error=exc)
            session.commit()
        raise
    with session_factory() as session:
        _audit(session, principal, query_id, audited, context, error=None)
        session.commit()
    return CsvExport(
        query_id=query_id,
        user_id=principal.user.id,
        filename=f"query-{query_id}.csv",
        sql=guarded.sql,
        max_rows=max_rows,
        first=first,
        rest=stream,
        session_factory=session_factory,
        context=context or ClientContext(),
        user_session_id=principal.user_session_id,
        connection_id=connection.id,
    )
