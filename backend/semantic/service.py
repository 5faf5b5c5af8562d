"""Semantic layers: each connection's versioned layer, its writes, draft and the current one."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlglot import exp

from backend.auth.deps import Principal
from backend.connections import schema_cache
from backend.connections import service as connections_service
from backend.connections.models import DatabaseConnection
from backend.connections.snapshot import SchemaSnapshot
from backend.connections.target import read_only_connection
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import utcnow
from backend.core.pagination import keyset_page
from backend.nl2sql.guard import sqlglot_dialect
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.semantic import documents
from backend.semantic.current import document_of as document_of
from backend.semantic.current import load_current_layer as load_current_layer
from backend.semantic.draft import flag_candidates, propose_layer
from backend.semantic.errors import (
    SemanticLayerConflict,
    SemanticLayerInvalid,
    SemanticLayerNotFound,
    SemanticLayerVersionNotFound,
)
from backend.semantic.layer import SemanticLayer
from backend.semantic.models import SemanticLayerHead, SemanticLayerVersion
from backend.semantic.schemas import (
    SemanticLayerDraft,
    SemanticLayerPatch,
    SemanticLayerRead,
    SemanticLayerVersionRead,
    TemplateReadingHidden,
)
from backend.semantic.validation import validate_layer
from backend.semantic.visibility import hidden_items
from backend.templates import service as templates_service

RESOURCE_TYPE = "semantic_layer"
DRAFT_SAMPLE_TIMEOUT_SECONDS = 10
MAX_DRAFT_FLAG_COLUMNS = 50
"""Integer `is_`/`has_` columns the draft asks the database about, at most."""


# --- reading -------------------------------------------------------------------------------


def layer_connection(
    session: Session, principal: Principal, connection_id: str
) -> DatabaseConnection:
    """The connection whose layer the caller may read and write: their own, or any for an
    admin. 404 otherwise; 403 for an API key not allowed to use it."""
    return connections_service.get_connection_or_any_for_admin(session, principal, connection_id)


def _head(
    session: Session, connection_id: str, *, for_update: bool = False
) -> SemanticLayerHead | None:
    query = select(SemanticLayerHead).where(SemanticLayerHead.connection_id == connection_id)
    if for_update:
        query = query.with_for_update()
    return session.scalar(query)


def current_version_number(session: Session, connection_id: str) -> int | None:
    """The number of the connection's current layer version, or None when it has no layer."""
    head = _head(session, connection_id)
    return head.current_version if head is not None else None


def get_version(
    session: Session, connection: DatabaseConnection, version: int | None = None
) -> tuple[SemanticLayerVersion, int]:
    """A version of the layer (the current one by default) and the current version number."""
    head = _head(session, connection.id)
    if head is None:
        raise SemanticLayerNotFound(details={"connection_id": connection.id})
    wanted = head.current_version if version is None else version
    row = session.scalar(
        select(SemanticLayerVersion).where(
            SemanticLayerVersion.connection_id == connection.id,
            SemanticLayerVersion.version == wanted,
        )
    )
    if row is None:
        raise SemanticLayerVersionNotFound(
            details={"connection_id": connection.id, "version": wanted}
        )
    return row, head.current_version


def to_version_read(row: SemanticLayerVersion, current: int) -> SemanticLayerVersionRead:
    return SemanticLayerVersionRead(
        connection_id=row.connection_id,
        version=row.version,
        is_current=row.version == current,
        source=row.source,
        note=row.note,
        author_id=row.author_id,
        reverted_from=row.reverted_from,
        created_at=row.created_at,
    )


def to_read(row: SemanticLayerVersion, current: int) -> SemanticLayerRead:
    # Parsed afresh, not from the cache: a version just written is not committed yet.
    return SemanticLayerRead(
        **to_version_read(row, current).model_dump(),
        document=SemanticLayer.model_validate(row.document),
    )


def read_of(
    session: Session, connection: DatabaseConnection, row: SemanticLayerVersion, current: int
) -> SemanticLayerRead:
    """`to_read`, with the templates that read what this version hides."""
    read = to_read(row, current)
    read.templates_reading_hidden = templates_reading_hidden(session, connection, read.document)
    return read


def templates_reading_hidden(
    session: Session, connection: DatabaseConnection, layer: SemanticLayer
) -> list[TemplateReadingHidden]:
    """The query templates that apply to the connection and read what `layer` hides."""
    hidden = hidden_items(layer)
    if not hidden:
        return []
    cached = schema_cache.load_snapshot(session, connection)
    found: list[TemplateReadingHidden] = []
    for template in templates_service.applicable_templates(session, connection):
        read = templates_service.hidden_read(
            template.sql_template,
            connection=connection,
            hidden=hidden,
            snapshot=cached[0] if cached is not None else None,
            parameters=[p["name"] for p in template.parameters or ()],
        )
        if read is not None:
            item = read.get("column") or read.get("table")
            found.append(
                TemplateReadingHidden(
                    template_id=template.id,
                    name=template.name,
                    item=str(item) if item is not None else None,
                )
            )
    return found


def list_versions(
    session: Session, connection: DatabaseConnection, *, limit: int, cursor: str | None
) -> tuple[list[SemanticLayerVersionRead], str | None]:
    """Versions newest first, a page at a time."""
    head = _head(session, connection.id)
    if head is None:
        return [], None
    rows, next_cursor = keyset_page(
        session,
        select(SemanticLayerVersion).where(SemanticLayerVersion.connection_id == connection.id),
        keys=[SemanticLayerVersion.version],
        kinds=[int],
        key_of=lambda r: (r.version,),
        limit=limit,
        cursor=cursor,
        descending=True,
    )
    return [to_version_read(r, head.current_version) for r in rows], next_cursor


def export_layer(
    session: Session, connection: DatabaseConnection, *, version: int | None, fmt: str
) -> str:
    row, _ = get_version(session, connection, version)
    return documents.dump_layer(SemanticLayer.model_validate(row.document), fmt)


# --- writing -------------------------------------------------------------------------------


def _snapshot(
    session: Session, connection: DatabaseConnection, settings: Settings
) -> tuple[SchemaSnapshot, datetime]:
    """The cached snapshot; on first use the database is introspected with no platform
    transaction open (the request's reads so far are committed first), then stored."""
    cached = schema_cache.load_snapshot(session, connection)
    if cached is not None:
        return cached
    session.commit()
    return schema_cache.refresh_schema_snapshot(session, connection, settings=settings)


def _counts(layer: SemanticLayer) -> dict[str, int]:
    hidden = hidden_items(layer)
    return {
        "tables": len(layer.tables),
        "measures": len(layer.measures),
        "filters": len(layer.filters),
        "joins": len(layer.joins),
        "instructions": len(layer.instructions),
        "hidden_tables": len(hidden.tables),
        "hidden_columns": sum(len(c) for c in hidden.columns.values()),
    }


def write_layer(
    session: Session,
    *,
    principal: Principal,
    connection: DatabaseConnection,
    layer: SemanticLayer,
    source: str,
    settings: Settings,
    note: str | None = None,
    reverted_from: int | None = None,
    context: ClientContext | None = None,
) -> tuple[SemanticLayerVersion, int]:
    """Validate against the connection's schema and store as the new current version; audits
    and records an event. Flushes, does not commit. 422 for a bad definition, 409 when another
    write took the same version number."""
    validate_layer(layer, _snapshot(session, connection, settings)[0])
    head = _head(session, connection.id, for_update=True)
    previous = head.current_version if head is not None else None
    number = (previous or 0) + 1
    if head is None:
        head = SemanticLayerHead(connection_id=connection.id, current_version=number)
        session.add(head)
    else:
        head.current_version = number
        head.updated_at = utcnow()
    row = SemanticLayerVersion(
        connection_id=connection.id,
        version=number,
        document=layer.model_dump(mode="json"),
        author_id=principal.user.id,
        note=note,
        source=source,
        reverted_from=reverted_from,
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise SemanticLayerConflict(details={"connection_id": connection.id}) from exc
    counts = _counts(layer)
    recorder.audit(
        session,
        action=AuditAction.SEMANTIC_LAYER_WRITTEN,
        user_id=principal.user.id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=connection.id,
        old_values={"version": previous},
        new_values={
            "version": number,
            "source": source,
            "note": note,
            "reverted_from": reverted_from,
            **counts,
        },
    )
    recorder.event(
        session,
        event_type=EventType.SEMANTIC_LAYER_CHANGED,
        user_id=principal.user.id,
        context=context,
        user_session_id=principal.user_session_id,
        data={
            "connection_id": connection.id,
            "version": number,
            "previous_version": previous,
            "source": source,
            **counts,
        },
    )
    return row, number


def _upsert(items: list[Any], changes: list[Any], key: str) -> list[Any]:
    result = list(items)
    positions = {getattr(item, key).lower(): i for i, item in enumerate(result)}
    for change in changes:
        at = positions.get(getattr(change, key).lower())
        if at is None:
            positions[getattr(change, key).lower()] = len(result)
            result.append(change)
        else:
            result[at] = change
    return result


def _remove(items: list[Any], names: list[str], key: str, field: str) -> list[Any]:
    present = {getattr(item, key).lower() for item in items}
    missing = [
        {"field": f"{field}[{i}]", "message": f"nothing named {name!r} to remove"}
        for i, name in enumerate(names)
        if name.lower() not in present
    ]
    if missing:
        raise SemanticLayerInvalid.naming(missing)
    dropped = {name.lower() for name in names}
    return [item for item in items if getattr(item, key).lower() not in dropped]


def apply_patch(layer: SemanticLayer, patch: SemanticLayerPatch) -> SemanticLayer:
    """The layer with the patch's edits applied (not validated against the schema)."""
    given = patch.model_fields_set
    data: dict[str, Any] = {}
    tables, measures, filters, joins = (
        layer.tables,
        layer.measures,
        layer.filters,
        layer.joins,
    )
    if patch.remove_tables:
        tables = _remove(tables, patch.remove_tables, "name", "remove_tables")
    if patch.tables:
        tables = _upsert(tables, patch.tables, "name")
    if patch.remove_measures:
        measures = _remove(measures, patch.remove_measures, "name", "remove_measures")
    if patch.measures:
        measures = _upsert(measures, patch.measures, "name")
    if patch.remove_filters:
        filters = _remove(filters, patch.remove_filters, "name", "remove_filters")
    if patch.filters:
        filters = _upsert(filters, patch.filters, "name")
    if patch.remove_joins:
        unwanted = [_join_key(j) for j in patch.remove_joins]
        missing = [
            {"field": f"remove_joins[{i}]", "message": "no such declared join to remove"}
            for i, key in enumerate(unwanted)
            if key not in {_join_key(j) for j in joins}
        ]
        if missing:
            raise SemanticLayerInvalid.naming(missing)
        joins = [j for j in joins if _join_key(j) not in unwanted]
    if patch.joins:
        known = {_join_key(j) for j in joins}
        joins = [*joins, *(j for j in patch.joins if _join_key(j) not in known)]
    data.update(tables=tables, measures=measures, filters=filters, joins=joins)
    if "today" in given:
        data["today"] = patch.today
    if patch.fiscal_year_start_month is not None:
        data["fiscal_year_start_month"] = patch.fiscal_year_start_month
    if patch.fiscal_year_named_by is not None:
        data["fiscal_year_named_by"] = patch.fiscal_year_named_by
    if patch.instructions is not None:
        data["instructions"] = patch.instructions
    return layer.model_copy(update=data)


def _join_key(join: Any) -> tuple[str, str, str, str]:
    return (
        join.from_table.lower(),
        join.from_column.lower(),
        join.to_table.lower(),
        join.to_column.lower(),
    )


def current_or_empty(session: Session, connection: DatabaseConnection) -> SemanticLayer:
    return load_current_layer(session, connection.id) or SemanticLayer()


# --- the draft -----------------------------------------------------------------------------


def _flag_values(
    connection: DatabaseConnection, snapshot: SchemaSnapshot, settings: Settings
) -> dict[tuple[str, str], list[Any]]:
    """Up to three distinct values of each integer flag-named column, from the database."""
    candidates = flag_candidates(snapshot)[:MAX_DRAFT_FLAG_COLUMNS]
    if not candidates:
        return {}
    dialect = sqlglot_dialect(connection.db_type)
    found: dict[tuple[str, str], list[Any]] = {}
    with read_only_connection(
        connection, settings=settings, timeout_seconds=DRAFT_SAMPLE_TIMEOUT_SECONDS
    ) as (conn, _):
        for table, column in candidates:
            source = exp.Table(
                this=exp.to_identifier(table.name, quoted=True),
                db=exp.to_identifier(table.schema_name, quoted=True) if table.schema_name else None,
            )
            query = (
                exp.select(exp.column(column.name, quoted=True))
                .distinct()
                .from_(source)
                .where(exp.column(column.name, quoted=True).is_(exp.null()).not_())
                .limit(3)
            )
            rows = conn.exec_driver_sql(
                query.sql(dialect=dialect), execution_options={"no_parameters": True}
            ).fetchall()
            found[(table.name, column.name)] = [row[0] for row in rows]
    return found


def draft_layer(
    session: Session, *, connection: DatabaseConnection, settings: Settings
) -> SemanticLayerDraft:
    """A proposed layer for the connection; nothing is stored."""
    snapshot, taken_at = _snapshot(session, connection, settings)
    # Nothing of the platform's is held while the user's database is sampled.
    session.commit()
    layer = propose_layer(snapshot, flag_values=_flag_values(connection, snapshot, settings))
    return SemanticLayerDraft(connection_id=connection.id, document=layer, schema_taken_at=taken_at)
