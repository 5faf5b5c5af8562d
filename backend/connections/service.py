"""Connections: the caller's own database connections, their test and their schema cache."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.admin.config_keys import get_config_value
from backend.auth.deps import Principal
from backend.auth.models import ROLE_ADMIN, User
from backend.auth.scopes import Scope
from backend.connections import schema_cache
from backend.connections.crypto import encrypt_password
from backend.connections.dialects import Dialect, get_dialect
from backend.connections.engines import engine_cache
from backend.connections.errors import (
    ConnectionNameTaken,
    ConnectionNotFound,
    InvalidConnectionSettings,
)
from backend.connections.models import DatabaseConnection
from backend.connections.network import network_policy
from backend.connections.paths import confine_database_path
from backend.connections.schemas import (
    ConnectionCreate,
    ConnectionRead,
    ConnectionSchemaRead,
    ConnectionTestResult,
    ConnectionUpdate,
    SchemaColumnRead,
    SchemaTableRead,
)
from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.connections.target import read_only_connection
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.pagination import keyset_page
from backend.observability import recorder
from backend.observability.event_types import AuditAction, EventType
from backend.semantic.current import load_current_layer
from backend.semantic.visibility import HiddenItems, hidden_items, visible_snapshot

RESOURCE_TYPE = "database_connection"
TEST_TIMEOUT_SECONDS = 10
"""Upper bound on `POST /connections/{id}/test`, below the configured query timeout."""

_TARGET_FIELDS = ("db_type", "db_host", "db_port", "db_user", "db_name", "options")
_AUDITED_FIELDS = ("connection_name", *_TARGET_FIELDS, "is_active")


def to_read(connection: DatabaseConnection) -> ConnectionRead:
    return ConnectionRead(
        id=connection.id,
        connection_name=connection.connection_name,
        db_type=connection.db_type,
        db_host=connection.db_host,
        db_port=connection.db_port,
        db_user=connection.db_user,
        db_name=connection.db_name,
        options=connection.options,
        is_active=connection.is_active,
        has_password=connection.encrypted_db_password is not None,
        created_at=connection.created_at,
        updated_at=connection.updated_at,
    )


def _audit_view(connection: DatabaseConnection, fields: tuple[str, ...]) -> dict[str, Any]:
    view: dict[str, Any] = {f: getattr(connection, f) for f in fields}
    # The recorder redacts any password-like key; only whether one is set is ever kept.
    view["db_password"] = "set" if connection.encrypted_db_password else None
    return view


def _user_id(owner: Principal | User) -> str:
    return owner.user.id if isinstance(owner, Principal) else owner.id


# --- reading -------------------------------------------------------------------------------


def get_connection_by_name_or_none(
    session: Session, *, user_id: str, connection_name: str
) -> DatabaseConnection | None:
    return session.scalar(
        select(DatabaseConnection).where(
            DatabaseConnection.user_id == user_id,
            DatabaseConnection.connection_name == connection_name,
        )
    )


def get_connection(
    session: Session, owner: Principal | User, connection_id: str
) -> DatabaseConnection:
    """The caller's connection. Raises `ConnectionNotFound` (404) for a missing or someone
    else's connection, `Forbidden` (403) for an API key not allowed to use it."""
    return usable_connection(session.get(DatabaseConnection, connection_id), owner, connection_id)


def usable_connection(
    connection: DatabaseConnection | None, owner: Principal | User, connection_id: str
) -> DatabaseConnection:
    """`get_connection`'s checks on a connection the caller read (None: no such connection)."""
    if connection is None or connection.user_id != _user_id(owner):
        raise ConnectionNotFound(details={"connection_id": connection_id})
    if isinstance(owner, Principal):
        owner.require_connection(connection.id)
    return connection


def get_connection_or_any_for_admin(
    session: Session, principal: Principal, connection_id: str
) -> DatabaseConnection:
    """The caller's connection, or anyone's for an admin (the `admin` role with the `admin`
    scope), for what admins curate on users' connections (semantic layers, examples). Raises
    `ConnectionNotFound` (404) otherwise, `Forbidden` (403) for an API key not allowed to use
    it."""
    if not (principal.user.role == ROLE_ADMIN and principal.has_scope(Scope.ADMIN)):
        return get_connection(session, principal, connection_id)
    connection = session.get(DatabaseConnection, connection_id)
    if connection is None:
        raise ConnectionNotFound(details={"connection_id": connection_id})
    principal.require_connection(connection.id)
    return connection


def list_connections(
    session: Session, owner: Principal | User, *, limit: int, cursor: str | None = None
) -> tuple[list[DatabaseConnection], str | None]:
    """A page of the caller's connections, oldest first, and the cursor of the next page."""
    query = select(DatabaseConnection).where(DatabaseConnection.user_id == _user_id(owner))
    if isinstance(owner, Principal) and owner.allowed_connection_ids is not None:
        query = query.where(DatabaseConnection.id.in_(owner.allowed_connection_ids))
    return keyset_page(
        session,
        query,
        keys=[DatabaseConnection.created_at, DatabaseConnection.id],
        kinds=[datetime, str],
        key_of=lambda c: (c.created_at, c.id),
        limit=limit,
        cursor=cursor,
        descending=False,
    )


# --- validating ----------------------------------------------------------------------------


def _validate_options(dialect: Dialect, options: dict[str, Any] | None) -> dict[str, Any] | None:
    if not options:
        return None
    problems: dict[str, str] = {}
    for key, value in options.items():
        spec = dialect.ALLOWED_OPTIONS.get(key)
        if spec is None:
            problems[key] = f"not an option of {dialect.DB_TYPE} connections"
        elif not isinstance(value, spec.type) or (spec.type is int and isinstance(value, bool)):
            problems[key] = f"must be a {spec.type.__name__}"
        elif spec.choices is not None and value not in spec.choices:
            problems[key] = "must be one of " + ", ".join(map(str, spec.choices))
    if problems:
        raise InvalidConnectionSettings(
            details={"options": problems, "allowed": sorted(dialect.ALLOWED_OPTIONS)}
        )
    return dict(options)


def _validate_target(
    connection: DatabaseConnection, *, settings: Settings, has_password: bool
) -> None:
    """Check and normalise the target fields in place (the file path becomes its resolved,
    confined form). Raises `InvalidConnectionSettings` or `ConnectionPathNotAllowed` (422)."""
    dialect = get_dialect(connection.db_type)
    connection.options = _validate_options(dialect, connection.options)
    if dialect.IS_FILE_BASED:
        extra = [
            name
            for name, value in (
                ("db_host", connection.db_host),
                ("db_port", connection.db_port),
                ("db_user", connection.db_user),
                ("db_password", has_password or None),
            )
            if value
        ]
        if extra:
            raise InvalidConnectionSettings(
                f"A {dialect.DB_TYPE} connection is a file path in db_name; "
                "it takes no host, port, user or password.",
                details={"fields": extra},
            )
        connection.db_name = str(confine_database_path(connection.db_name, settings))
    else:
        if not connection.db_host:
            raise InvalidConnectionSettings(
                f"A {dialect.DB_TYPE} connection needs db_host.", details={"fields": ["db_host"]}
            )
        connection.db_port = connection.db_port or dialect.DEFAULT_PORT
        # Refused early where the answer does not depend on the server being up; checked
        # again, with the addresses the name then resolves to, at every connect.
        network_policy(settings).check_if_resolvable(
            connection.db_host, connection.db_port or 0, connection.db_name
        )


def _flush_unique_name(session: Session) -> None:
    try:
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise ConnectionNameTaken() from exc


# --- writing -------------------------------------------------------------------------------


def create_connection(
    session: Session,
    *,
    owner: Principal | User,
    data: ConnectionCreate,
    settings: Settings,
    context: ClientContext | None = None,
) -> DatabaseConnection:
    """Validate, encrypt the password, store and audit. Flushes, does not commit."""
    user_id = _user_id(owner)
    if get_connection_by_name_or_none(
        session, user_id=user_id, connection_name=data.connection_name
    ):
        raise ConnectionNameTaken(details={"connection_name": data.connection_name})
    password = data.db_password.get_secret_value() if data.db_password else None
    connection = DatabaseConnection(
        user_id=user_id,
        connection_name=data.connection_name,
        db_type=data.db_type,
        db_host=data.db_host or None,
        db_port=data.db_port,
        db_user=data.db_user or None,
        db_name=data.db_name,
        options=data.options,
    )
    _validate_target(connection, settings=settings, has_password=bool(password))
    if password:
        connection.encrypted_db_password = encrypt_password(settings, password)
    session.add(connection)
    _flush_unique_name(session)
    recorder.audit(
        session,
        action=AuditAction.CONNECTION_CREATED,
        user_id=user_id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=connection.id,
        new_values=_audit_view(connection, _AUDITED_FIELDS),
    )
    recorder.event(
        session,
        event_type=EventType.CONNECTION_CREATED,
        user_id=user_id,
        context=context,
        data={"connection_id": connection.id, "db_type": connection.db_type},
    )
    return connection


def update_connection(
    session: Session,
    *,
    owner: Principal | User,
    connection_id: str,
    data: ConnectionUpdate,
    settings: Settings,
    context: ClientContext | None = None,
) -> DatabaseConnection:
    """Apply the fields given; a change of target drops the cached schema and engine."""
    connection = get_connection(session, owner, connection_id)
    changes = data.model_dump(exclude_unset=True)
    password_given = "db_password" in changes
    new_password = data.db_password.get_secret_value() if data.db_password else None
    changes.pop("db_password", None)
    if "connection_name" in changes and changes["connection_name"] is None:
        raise InvalidConnectionSettings("connection_name cannot be null.")
    if "db_type" in changes and changes["db_type"] is None:
        raise InvalidConnectionSettings("db_type cannot be null.")
    if "db_name" in changes and changes["db_name"] is None:
        raise InvalidConnectionSettings("db_name cannot be null.")
    if "is_active" in changes and changes["is_active"] is None:
        changes.pop("is_active")
    name = changes.get("connection_name")
    if name and name != connection.connection_name:
        other = get_connection_by_name_or_none(
            session, user_id=connection.user_id, connection_name=name
        )
        if other is not None:
            raise ConnectionNameTaken(details={"connection_name": name})

    before = _audit_view(connection, _AUDITED_FIELDS)
    for field, value in changes.items():
        setattr(connection, field, value)
    if password_given:
        connection.encrypted_db_password = (
            encrypt_password(settings, new_password) if new_password else None
        )
    target_changed = password_given or any(f in changes for f in _TARGET_FIELDS)
    if target_changed:
        _validate_target(
            connection, settings=settings, has_password=connection.encrypted_db_password is not None
        )
    after = _audit_view(connection, _AUDITED_FIELDS)
    changed = [k for k in after if after[k] != before[k] or (k == "db_password" and password_given)]
    if not changed:
        return connection
    _flush_unique_name(session)
    if target_changed:
        schema_cache.clear_snapshot(session, connection.id)
        engine_cache.dispose(connection.id)
    recorder.audit(
        session,
        action=AuditAction.CONNECTION_UPDATED,
        user_id=connection.user_id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=connection.id,
        old_values={k: before[k] for k in changed},
        new_values={k: after[k] for k in changed},
    )
    return connection


def delete_connection(
    session: Session,
    *,
    owner: Principal | User,
    connection_id: str,
    context: ClientContext | None = None,
) -> None:
    connection = get_connection(session, owner, connection_id)
    recorder.audit(
        session,
        action=AuditAction.CONNECTION_DELETED,
        user_id=connection.user_id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=connection.id,
        old_values=_audit_view(connection, _AUDITED_FIELDS),
    )
    schema_cache.clear_snapshot(session, connection.id)
    session.delete(connection)
    session.flush()
    engine_cache.dispose(connection_id)


def ensure_sqlite_connection(
    session: Session, *, user_id: str, connection_name: str, path: str
) -> DatabaseConnection:
    """Create or repoint the user's SQLite connection of that name. Flushes, does not commit."""
    connection = get_connection_by_name_or_none(
        session, user_id=user_id, connection_name=connection_name
    )
    if connection is None:
        connection = DatabaseConnection(
            user_id=user_id, connection_name=connection_name, db_type="sqlite", db_name=path
        )
        session.add(connection)
    else:
        connection.db_type = "sqlite"
        connection.db_name = path
        connection.is_active = True
    session.flush()
    return connection


# --- using ---------------------------------------------------------------------------------


def probe_connection(
    session: Session,
    *,
    owner: Principal | User,
    connection_id: str,
    settings: Settings,
    context: ClientContext | None = None,
) -> ConnectionTestResult:
    """Connect and ask the server version, within a bounded time; 502/504 on failure."""
    connection = get_connection(session, owner, connection_id)
    configured = float(get_config_value(session, "query.statement_timeout_seconds"))
    timeout_seconds = min(configured, TEST_TIMEOUT_SECONDS)
    dialect = get_dialect(connection.db_type)
    started = time.perf_counter()
    with read_only_connection(connection, settings=settings, timeout_seconds=timeout_seconds) as (
        conn,
        _,
    ):
        version = conn.exec_driver_sql(dialect.SERVER_VERSION_QUERY).scalar()
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    recorder.audit(
        session,
        action=AuditAction.CONNECTION_TESTED,
        user_id=connection.user_id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=connection.id,
        new_values={"ok": True, "latency_ms": latency_ms},
    )
    return ConnectionTestResult(
        ok=True, server_version=str(version) if version is not None else None, latency_ms=latency_ms
    )


def _schema_tables(
    tables: list[TableInfo], hidden: HiddenItems, *, include_hidden: bool
) -> list[SchemaTableRead]:
    """The tables as read: hidden items marked `hidden`, or left out (`include_hidden=False`)."""
    if not include_hidden:
        tables = visible_snapshot(
            SchemaSnapshot(db_type="", database_name="", tables=tables), hidden
        ).tables
    out: list[SchemaTableRead] = []
    for table in tables:
        columns = [
            SchemaColumnRead(
                **column.model_dump(), hidden=hidden.is_column_hidden(table.name, column.name)
            )
            for column in table.columns
        ]
        out.append(
            SchemaTableRead(
                **table.model_dump(exclude={"columns"}),
                columns=columns,
                hidden=hidden.is_table_hidden(table.name),
            )
        )
    return out


def _schema_read(
    session: Session,
    connection: DatabaseConnection,
    snapshot: SchemaSnapshot,
    taken_at: datetime,
    *,
    include_hidden: bool,
) -> ConnectionSchemaRead:
    hidden = hidden_items(load_current_layer(session, connection.id))
    tables = _schema_tables(snapshot.tables, hidden, include_hidden=include_hidden)
    return ConnectionSchemaRead(
        connection_id=connection.id,
        db_type=snapshot.db_type,
        database_name=snapshot.database_name,
        last_updated=taken_at,
        table_count=len(tables),
        tables=tables,
        includes_hidden=include_hidden,
    )


def manages_layer(owner: Principal | User) -> bool:
    """Whether the caller may write the connection's semantic layer, and so see what it hides
    (marked); a reader (an API key without `connections:write`) sees what generators see."""
    return not isinstance(owner, Principal) or owner.has_scope(Scope.CONNECTIONS_WRITE)


def get_schema(
    session: Session,
    *,
    owner: Principal | User,
    connection_id: str,
    settings: Settings,
    include_hidden: bool = False,
) -> ConnectionSchemaRead:
    """The cached schema, introspected and stored on first use. Tables and columns the
    semantic layer hides are left out, or listed marked `hidden` with `include_hidden` for a
    caller who manages the layer (`manages_layer`)."""
    connection = get_connection(session, owner, connection_id)
    cached = schema_cache.load_snapshot(session, connection)
    if cached is None:
        cached = schema_cache.refresh_schema_snapshot(session, connection, settings=settings)
    return _schema_read(
        session, connection, *cached, include_hidden=include_hidden and manages_layer(owner)
    )


def generator_view(
    session: Session, *, owner: Principal | User, connection_id: str, settings: Settings
) -> tuple[SchemaSnapshot, datetime]:
    """The stored snapshot as every generator and agent sees it (hidden tables and columns left
    out, plain `TableInfo` items that carry no `hidden` mark), and when it was taken."""
    connection = get_connection(session, owner, connection_id)
    cached = schema_cache.load_snapshot(session, connection)
    if cached is None:
        cached = schema_cache.refresh_schema_snapshot(session, connection, settings=settings)
    snapshot, taken_at = cached
    hidden = hidden_items(load_current_layer(session, connection.id))
    return visible_snapshot(snapshot, hidden), taken_at


def stored_schema(
    session: Session, *, owner: Principal | User, connection_id: str
) -> ConnectionSchemaRead | None:
    """The stored snapshot as `owner` may read it (marked for a layer manager, else the
    generators' view), or None when nothing is stored. Never introspects."""
    connection = get_connection(session, owner, connection_id)
    cached = schema_cache.load_snapshot(session, connection)
    if cached is None:
        return None
    return _schema_read(session, connection, *cached, include_hidden=manages_layer(owner))


def refresh_summary(read: ConnectionSchemaRead) -> dict[str, Any]:
    """What a background refresh keeps of its outcome: which snapshot it stored, not a copy of
    one view of it (the view is derived from the stored snapshot when the job is read)."""
    return read.model_dump(mode="json", include={"connection_id", "database_name", "last_updated"})


def refresh_schema(
    session: Session,
    *,
    owner: Principal | User,
    connection_id: str,
    settings: Settings,
    context: ClientContext | None = None,
    include_hidden: bool = False,
) -> ConnectionSchemaRead:
    connection = get_connection(session, owner, connection_id)
    started = time.perf_counter()
    snapshot, taken_at = schema_cache.refresh_schema_snapshot(
        session, connection, settings=settings
    )
    elapsed_ms = round((time.perf_counter() - started) * 1000, 3)
    recorder.audit(
        session,
        action=AuditAction.SCHEMA_REFRESHED,
        user_id=connection.user_id,
        context=context,
        resource_type=RESOURCE_TYPE,
        resource_id=connection.id,
        new_values={"table_count": len(snapshot.tables)},
    )
    recorder.event(
        session,
        event_type=EventType.SCHEMA_REFRESHED,
        user_id=connection.user_id,
        context=context,
        data={"connection_id": connection.id, "table_count": len(snapshot.tables)},
    )
    recorder.metric(
        session,
        name="connections.introspection_ms",
        value=elapsed_ms,
        unit="ms",
        data={"db_type": connection.db_type, "table_count": len(snapshot.tables)},
    )
    return _schema_read(
        session,
        connection,
        snapshot,
        taken_at,
        include_hidden=include_hidden and manages_layer(owner),
    )
