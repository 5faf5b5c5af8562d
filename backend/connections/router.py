"""HTTP endpoints of the caller's database connections."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from backend.connections import service
from backend.connections.deps import ConnectionsReader, ConnectionsWriter, SettingsDep
from backend.connections.schemas import (
    ConnectionCreate,
    ConnectionRead,
    ConnectionSchemaRead,
    ConnectionTestResult,
    ConnectionUpdate,
)
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import ErrorResponse
from backend.core.pagination import CursorParam
from backend.core.schemas import Page

router = APIRouter(prefix="/connections", tags=["connections"])

_AUTH: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No or bad credentials"},
    403: {"model": ErrorResponse, "description": "Missing scope or connection not allowed"},
}
_FOUND: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    404: {"model": ErrorResponse, "description": "No such connection of yours"},
}
_INVALID: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Connection name already used"},
    422: {"model": ErrorResponse, "description": "Invalid settings or file path not allowed"},
}
_TARGET: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorResponse,
        "description": "The network policy refuses the server, or the file path is not allowed",
    },
    502: {"model": ErrorResponse, "description": "The database failed or refused"},
    504: {"model": ErrorResponse, "description": "The database did not answer in time"},
}


@router.post(
    "",
    summary="Add a database connection",
    status_code=status.HTTP_201_CREATED,
    response_model=ConnectionRead,
    responses={**_AUTH, **_INVALID},
)
def create_connection(
    data: ConnectionCreate,
    session: SessionDep,
    principal: ConnectionsWriter,
    settings: SettingsDep,
    context: ClientContextDep,
) -> ConnectionRead:
    """Stores a connection to a PostgreSQL, MySQL/MariaDB, SQLite or DuckDB database; the password
    is encrypted at rest and never returned. SQLite and DuckDB paths must lie inside the allowed
    directories.
    """
    connection = service.create_connection(
        session, owner=principal, data=data, settings=settings, context=context
    )
    return service.to_read(connection)


@router.get(
    "", summary="The caller's connections", response_model=Page[ConnectionRead], responses=_AUTH
)
def list_connections(
    session: SessionDep,
    principal: ConnectionsReader,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorParam = None,
) -> Page[ConnectionRead]:
    """The caller's connections (an API key sees only those it is allowed), page with `limit` and
    `next_cursor`.
    """
    rows, next_cursor = service.list_connections(session, principal, limit=limit, cursor=cursor)
    return Page[ConnectionRead](items=[service.to_read(c) for c in rows], next_cursor=next_cursor)


@router.get(
    "/{connection_id}", summary="One connection", response_model=ConnectionRead, responses=_FOUND
)
def get_connection(
    connection_id: str, session: SessionDep, principal: ConnectionsReader
) -> ConnectionRead:
    """One of the caller's connections, without its password."""
    return service.to_read(service.get_connection(session, principal, connection_id))


@router.patch(
    "/{connection_id}",
    summary="Change a connection",
    response_model=ConnectionRead,
    responses={**_FOUND, **_INVALID},
)
def update_connection(
    connection_id: str,
    data: ConnectionUpdate,
    session: SessionDep,
    principal: ConnectionsWriter,
    settings: SettingsDep,
    context: ClientContextDep,
) -> ConnectionRead:
    """Changes the settings of a connection; a new password replaces the stored one. The cached
    schema is dropped when the target changes.
    """
    connection = service.update_connection(
        session,
        owner=principal,
        connection_id=connection_id,
        data=data,
        settings=settings,
        context=context,
    )
    return service.to_read(connection)


@router.delete(
    "/{connection_id}",
    summary="Delete a connection",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=_FOUND,
)
def delete_connection(
    connection_id: str,
    session: SessionDep,
    principal: ConnectionsWriter,
    context: ClientContextDep,
) -> Response:
    """Deletes a connection and its cached schema."""
    service.delete_connection(
        session, owner=principal, connection_id=connection_id, context=context
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{connection_id}/test",
    summary="Test a connection",
    response_model=ConnectionTestResult,
    responses={**_FOUND, **_TARGET},
)
def test_connection(
    connection_id: str,
    session: SessionDep,
    principal: ConnectionsReader,
    settings: SettingsDep,
    context: ClientContextDep,
) -> ConnectionTestResult:
    """Opens the database with the stored settings and runs a trivial query; answers whether it
    worked and how long it took.
    """
    return service.probe_connection(
        session, owner=principal, connection_id=connection_id, settings=settings, context=context
    )


@router.post(
    "/{connection_id}/refresh-schema",
    summary="Introspect the schema again",
    response_model=ConnectionSchemaRead,
    responses={**_FOUND, **_TARGET},
)
def refresh_schema(
    connection_id: str,
    session: SessionDep,
    principal: ConnectionsWriter,
    settings: SettingsDep,
    context: ClientContextDep,
) -> ConnectionSchemaRead:
    """Reads the tables, columns and foreign keys of the database again and caches them; questions
    are answered against this snapshot. Items the semantic layer hides are listed marked
    `hidden`.
    """
    return service.refresh_schema(
        session,
        owner=principal,
        connection_id=connection_id,
        settings=settings,
        context=context,
        include_hidden=True,
    )


@router.get(
    "/{connection_id}/schema",
    summary="The cached schema of a connection",
    response_model=ConnectionSchemaRead,
    responses={**_FOUND, **_TARGET},
)
def get_schema(
    connection_id: str,
    session: SessionDep,
    principal: ConnectionsReader,
    settings: SettingsDep,
    include_hidden: Annotated[bool, Query()] = True,
) -> ConnectionSchemaRead:
    """The tables, columns and foreign keys of the database (introspected on first use, cached).

    Tables and columns the semantic layer hides are listed marked `hidden: true` for a caller
    who may write the layer (`connections:write`), and left out for anyone else or with
    `include_hidden=false` (the schema as every generator sees it); `includes_hidden` says which.
    """
    return service.get_schema(
        session,
        owner=principal,
        connection_id=connection_id,
        settings=settings,
        include_hidden=include_hidden,
    )
