"""The layer in force: a connection's current version, parsed once per process.

Kept apart from `service` so that lower domains (a connection's schema read) can read the
current layer without importing the semantic service.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.core.lru import LockedLru
from backend.semantic.layer import SemanticLayer
from backend.semantic.models import SemanticLayerHead, SemanticLayerVersion

_PARSED_CACHE_ENTRIES = 256

_parsed: LockedLru[tuple[str, int], SemanticLayer] = LockedLru(_PARSED_CACHE_ENTRIES)


def document_of(row: SemanticLayerVersion) -> SemanticLayer:
    """A committed version's document, parsed once per process (versions never change;
    connection ids are never reused)."""
    key = (row.connection_id, row.version)
    cached = _parsed.get(key)
    if cached is not None:
        return cached
    layer = SemanticLayer.model_validate(row.document)
    _parsed.put(key, layer)
    return layer


def load_current_layer(session: Session, connection_id: str) -> SemanticLayer | None:
    """The connection's current layer, or None when it has none (one indexed read)."""
    row = session.scalar(
        select(SemanticLayerVersion)
        .join(
            SemanticLayerHead,
            (SemanticLayerHead.connection_id == SemanticLayerVersion.connection_id)
            & (SemanticLayerHead.current_version == SemanticLayerVersion.version),
        )
        .where(SemanticLayerHead.connection_id == connection_id)
    )
    return document_of(row) if row is not None else None


def layer_at(session: Session, connection_id: str, version: int) -> SemanticLayer | None:
    """A committed version of the connection's layer: this process's parsed copy, read (one
    indexed read) and parsed only the first time. An ask reads the current version number
    with the rest of what it needs (`SemanticLayerHead.current_version`), then this."""
    key = (connection_id, version)
    cached = _parsed.get(key)
    if cached is not None:
        return cached
    row = session.scalar(
        select(SemanticLayerVersion).where(
            SemanticLayerVersion.connection_id == connection_id,
            SemanticLayerVersion.version == version,
        )
    )
    return document_of(row) if row is not None else None
