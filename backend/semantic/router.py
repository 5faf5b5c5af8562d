"""HTTP endpoints of a connection's semantic layer: read, write, versions, files and draft.

Reading needs what reading the connection needs (`connections:read`), writing the
connection-write scope (`connections:write`); only the connection's owner, or an admin, reaches
either. Every write stores a new version, is audited and records an event.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Response, UploadFile, status

from backend.auth.deps import Principal, require_scopes
from backend.auth.scopes import Scope
from backend.connections.deps import SettingsDep
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import error_responses
from backend.core.pagination import CursorParam
from backend.core.schemas import Page
from backend.semantic import documents, service
from backend.semantic.layer import SemanticLayer
from backend.semantic.schemas import (
    EXAMPLE_DOCUMENT,
    NOTE_MAX_CHARS,
    SemanticLayerDraft,
    SemanticLayerPatch,
    SemanticLayerRead,
    SemanticLayerRevert,
    SemanticLayerVersionRead,
    SemanticLayerWrite,
)

router = APIRouter(prefix="/connections/{connection_id}/semantic-layer", tags=["connections"])

LayerReader = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_READ))]
LayerWriter = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_WRITE))]
VersionParam = Annotated[int | None, Query(ge=1, le=2**31 - 1)]

_READ = error_responses(401, 403, 404, 422, s404="No such connection of yours, layer or version")
_WRITE = error_responses(
    401,
    403,
    404,
    409,
    422,
    502,
    504,
    s404="No such connection of yours",
    s409="Another write of this layer happened at the same time",
    s422="A definition does not fit the connection: `details.errors` name each field",
    s502="The connection's database failed while its schema was read",
)
_EXPORT_CONTENT: dict[str, Any] = {
    "application/json": {"schema": {"type": "object", "examples": [EXAMPLE_DOCUMENT]}},
    "application/yaml": {"schema": {"type": "string"}},
}


@router.get(
    "",
    summary="The connection's semantic layer",
    response_model=SemanticLayerRead,
    responses=_READ,
)
def get_layer(
    connection_id: str,
    session: SessionDep,
    principal: LayerReader,
    version: VersionParam = None,
) -> SemanticLayerRead:
    """The current version of the layer, or `?version=N`; 404 `semantic_layer_not_found` when
    the connection has none yet."""
    connection = service.layer_connection(session, principal, connection_id)
    row, current = service.get_version(session, connection, version)
    return service.read_of(session, connection, row, current)


@router.put(
    "",
    summary="Replace the semantic layer (a new version)",
    response_model=SemanticLayerRead,
    responses=_WRITE,
)
def put_layer(
    connection_id: str,
    data: SemanticLayerWrite,
    session: SessionDep,
    principal: LayerWriter,
    settings: SettingsDep,
    context: ClientContextDep,
) -> SemanticLayerRead:
    """Validates the whole document against the connection's schema and stores it as the new
    current version, with the note."""
    connection = service.layer_connection(session, principal, connection_id)
    row, current = service.write_layer(
        session,
        principal=principal,
        connection=connection,
        layer=data.document,
        source="put",
        note=data.note,
        settings=settings,
        context=context,
    )
    return service.read_of(session, connection, row, current)


@router.patch(
    "",
    summary="Edit part of the semantic layer (a new version)",
    response_model=SemanticLayerRead,
    responses=_WRITE,
)
def patch_layer(
    connection_id: str,
    data: SemanticLayerPatch,
    session: SessionDep,
    principal: LayerWriter,
    settings: SettingsDep,
    context: ClientContextDep,
) -> SemanticLayerRead:
    """Adds or replaces definitions by name, removes those named in `remove_*`, sets the scalar
    fields given; the result is validated whole and stored as the new current version."""
    connection = service.layer_connection(session, principal, connection_id)
    layer = service.apply_patch(service.current_or_empty(session, connection), data)
    row, current = service.write_layer(
        session,
        principal=principal,
        connection=connection,
        layer=layer,
        source="patch",
        note=data.note,
        settings=settings,
        context=context,
    )
    return service.read_of(session, connection, row, current)


@router.get(
    "/versions",
    summary="Versions of the semantic layer",
    response_model=Page[SemanticLayerVersionRead],
    responses=error_responses(400, 401, 403, 404, 422, s404="No such connection of yours"),
)
def list_versions(
    connection_id: str,
    session: SessionDep,
    principal: LayerReader,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: CursorParam = None,
) -> Page[SemanticLayerVersionRead]:
    """Every version written, newest first, with who wrote it, when and why."""
    connection = service.layer_connection(session, principal, connection_id)
    items, next_cursor = service.list_versions(session, connection, limit=limit, cursor=cursor)
    return Page[SemanticLayerVersionRead](items=items, next_cursor=next_cursor)


@router.get(
    "/export",
    summary="The semantic layer as a YAML or JSON file",
    response_class=Response,
    responses={
        200: {"description": "The layer document", "content": _EXPORT_CONTENT},
        **_READ,
    },
)
def export_layer(
    connection_id: str,
    session: SessionDep,
    principal: LayerReader,
    version: VersionParam = None,
    format: Annotated[Literal["yaml", "json"] | None, Query()] = None,  # noqa: A002
    accept: Annotated[str | None, Header(max_length=1000)] = None,
) -> Response:
    """The current version (or `?version=N`) as a document to keep in git: YAML with
    `?format=yaml` or an `Accept` naming YAML, JSON otherwise. Import it back with
    `POST .../import`."""
    connection = service.layer_connection(session, principal, connection_id)
    fmt = format or ("yaml" if accept and "yaml" in accept.lower() else "json")
    text = service.export_layer(session, connection, version=version, fmt=fmt)
    suffix = "yaml" if fmt == "yaml" else "json"
    return Response(
        content=text.encode(),
        media_type=documents.MEDIA_TYPES[fmt],
        headers={
            "Content-Disposition": f'attachment; filename="semantic-layer.{suffix}"',
        },
    )


@router.post(
    "/import",
    summary="Replace the semantic layer from a YAML or JSON file (a new version)",
    response_model=SemanticLayerRead,
    responses=_WRITE,
)
def import_layer(
    connection_id: str,
    session: SessionDep,
    principal: LayerWriter,
    settings: SettingsDep,
    context: ClientContextDep,
    file: Annotated[UploadFile, File(description="The layer document, YAML or JSON")],
    note: Annotated[str | None, Form(max_length=NOTE_MAX_CHARS)] = None,
) -> SemanticLayerRead:
    """Reads an uploaded document (at most 512 KiB; no YAML anchors or object tags), validates
    it like a PUT and stores it as the new current version."""
    connection = service.layer_connection(session, principal, connection_id)
    raw = file.file.read(documents.MAX_IMPORT_BYTES + 1)
    suffix = PurePath(file.filename or "").suffix.lower()
    fmt = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(suffix)
    layer = documents.read_layer(raw, fmt=fmt)
    row, current = service.write_layer(
        session,
        principal=principal,
        connection=connection,
        layer=layer,
        source="import",
        note=note,
        settings=settings,
        context=context,
    )
    return service.read_of(session, connection, row, current)


@router.post(
    "/revert",
    summary="Make an earlier version current again (a new version)",
    response_model=SemanticLayerRead,
    responses=_WRITE,
)
def revert_layer(
    connection_id: str,
    data: SemanticLayerRevert,
    session: SessionDep,
    principal: LayerWriter,
    settings: SettingsDep,
    context: ClientContextDep,
) -> SemanticLayerRead:
    """Copies version N's document into a new current version (history is never rewritten);
    it is validated again against today's schema."""
    connection = service.layer_connection(session, principal, connection_id)
    old, _ = service.get_version(session, connection, data.version)
    row, current = service.write_layer(
        session,
        principal=principal,
        connection=connection,
        layer=SemanticLayer.model_validate(old.document),
        source="revert",
        note=data.note,
        reverted_from=data.version,
        settings=settings,
        context=context,
    )
    return service.read_of(session, connection, row, current)


@router.post(
    "/draft",
    summary="Propose a semantic layer from the schema and sampled values",
    status_code=status.HTTP_200_OK,
    response_model=SemanticLayerDraft,
    responses=error_responses(401, 403, 404, 422, 502, 504, s404="No such connection of yours"),
)
def draft_layer(
    connection_id: str,
    session: SessionDep,
    principal: LayerReader,
    settings: SettingsDep,
) -> SemanticLayerDraft:
    """Descriptions, value phrases, measures (counts, sums of money), filters (`active ...`
    for open-ended dates) and joins (`<table>_id` columns without a foreign key) read from the
    schema. Nothing is stored: PUT the document, edited or not, to keep it."""
    connection = service.layer_connection(session, principal, connection_id)
    return service.draft_layer(session, connection=connection, settings=settings)
