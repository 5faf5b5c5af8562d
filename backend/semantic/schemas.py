"""Request and response shapes of the semantic-layer endpoints."""

from __future__ import annotations

import datetime as dt
from datetime import datetime

from pydantic import Field

from backend.core.schemas import AppSchema, Omitted
from backend.semantic.layer import JoinPath, Measure, NamedFilter, SemanticLayer, TableDefinition

NOTE_MAX_CHARS = 500


class SemanticLayerVersionRead(AppSchema):
    """One version of a layer, without its document."""

    connection_id: str
    version: int
    is_current: bool
    source: str
    """How it was written: `put`, `patch`, `import` or `revert`."""
    note: str | None = None
    author_id: str | None = None
    reverted_from: int | None = None
    created_at: datetime


class SemanticLayerRead(SemanticLayerVersionRead):
    document: SemanticLayer


class SemanticLayerWrite(AppSchema):
    """A whole document, stored as a new version."""

    document: SemanticLayer
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    """Why it changed, kept with the version."""


class SemanticLayerPatch(AppSchema):
    """A partial edit of the current version, stored as a new version.

    Definitions given by name replace those of the same name (or are added); `remove_*` drop
    them by name; `joins` are added unless already declared; scalar fields given replace theirs.
    """

    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    tables: list[TableDefinition] | Omitted = None
    remove_tables: list[str] | Omitted = None
    measures: list[Measure] | Omitted = None
    remove_measures: list[str] | Omitted = None
    filters: list[NamedFilter] | Omitted = None
    remove_filters: list[str] | Omitted = None
    joins: list[JoinPath] | Omitted = None
    remove_joins: list[JoinPath] | Omitted = None
    today: dt.date | None = None
    """A date, or null to count from the clock again."""
    fiscal_year_start_month: int | Omitted = Field(default=None, ge=1, le=12)
    instructions: list[str] | Omitted = None


class SemanticLayerRevert(AppSchema):
    version: int = Field(ge=1, le=2**31 - 1)
    """The version whose document becomes the new current version."""
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class SemanticLayerDraft(AppSchema):
    """A proposed layer, not stored: PUT it (edited or not) to keep it."""

    connection_id: str
    document: SemanticLayer
    schema_taken_at: datetime
    """When the schema snapshot the draft reads was taken."""
