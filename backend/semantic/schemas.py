"""Request and response shapes of the semantic-layer endpoints."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field
from pydantic.config import JsonDict

from backend.core.schemas import AppSchema, Omitted
from backend.semantic.layer import JoinPath, Measure, NamedFilter, SemanticLayer, TableDefinition

NOTE_MAX_CHARS = 500

EXAMPLE_DOCUMENT: JsonDict = {
    "tables": [
        {
            "name": "customers",
            "description": "People and companies who buy from the shop.",
            "synonyms": ["clients", "buyers"],
            "columns": [{"name": "email", "hidden": True}],
        }
    ],
    "measures": [
        {
            "name": "revenue",
            "synonyms": ["sales"],
            "table": "payments",
            "expression": "SUM(payments.amount)",
            "filter": "payments.paid_at IS NOT NULL",
            "time_column": "payments.paid_at",
        }
    ],
    "filters": [
        {"name": "shipped order", "table": "orders", "condition": "orders.shipped_date IS NOT NULL"}
    ],
    "joins": [],
    "today": "2024-06-30",
    "fiscal_year_start_month": 4,
    "instructions": ["Amounts are in USD before tax."],
}
_EXAMPLE_VERSION: JsonDict = {
    "connection_id": "6f1c2b4e-8d1a-4c55-9d0b-0f3f8f0a1b2c",
    "version": 3,
    "is_current": True,
    "source": "put",
    "note": "Revenue counts paid invoices only.",
    "author_id": "0b7e4a51-3c2d-4f0e-8a9b-1c2d3e4f5a6b",
    "reverted_from": None,
    "created_at": "2024-06-30T09:15:00Z",
}


class SemanticLayerVersionRead(AppSchema):
    """One version of a layer, without its document."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE_VERSION]})

    connection_id: str
    version: int
    is_current: bool
    source: str
    """How it was written: `put`, `patch`, `import` or `revert`."""
    note: str | None = None
    author_id: str | None = None
    reverted_from: int | None = None
    created_at: datetime


class TemplateReadingHidden(AppSchema):
    """A query template that applies to the connection and reads what the layer hides."""

    template_id: str
    name: str
    item: str | None = None
    """The hidden table or `table.column` it reads, where the guard could tell."""


class SemanticLayerRead(SemanticLayerVersionRead):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_EXAMPLE_VERSION, "document": EXAMPLE_DOCUMENT}]}
    )

    document: SemanticLayer
    templates_reading_hidden: list[TemplateReadingHidden] = Field(default_factory=list)
    """Query templates that apply to the connection and read a table or column this version
    hides. While it is current they answer no question and serve as no example, and running
    one is refused (400 `sql_reads_hidden`); edit them (the edit is checked against the layer)
    or delete them."""


class SemanticLayerWrite(AppSchema):
    """A whole document, stored as a new version."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"document": EXAMPLE_DOCUMENT, "note": "Revenue counts paid invoices."}]
        }
    )

    document: SemanticLayer
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)
    """Why it changed, kept with the version."""


class SemanticLayerPatch(AppSchema):
    """A partial edit of the current version, stored as a new version.

    Definitions given by name replace those of the same name (or are added); `remove_*` drop
    them by name; `joins` are added unless already declared; scalar fields given replace theirs.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "note": "Orders count; no more shipped filter.",
                    "measures": [
                        {"name": "order count", "table": "orders", "expression": "COUNT(*)"}
                    ],
                    "remove_filters": ["shipped order"],
                    "today": None,
                }
            ]
        }
    )

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
    fiscal_year_start_month: Annotated[int, Field(ge=1, le=12)] | Omitted = None
    fiscal_year_named_by: Literal["start", "end"] | Omitted = None
    instructions: list[str] | Omitted = None


class SemanticLayerRevert(AppSchema):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"version": 2, "note": "Back to the reviewed one."}]}
    )

    version: int = Field(ge=1, le=2**31 - 1)
    """The version whose document becomes the new current version."""
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS)


class SemanticLayerDraft(AppSchema):
    """A proposed layer, not stored: PUT it (edited or not) to keep it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "connection_id": "6f1c2b4e-8d1a-4c55-9d0b-0f3f8f0a1b2c",
                    "document": EXAMPLE_DOCUMENT,
                    "schema_taken_at": "2024-06-30T09:00:00Z",
                }
            ]
        }
    )

    connection_id: str
    document: SemanticLayer
    schema_taken_at: datetime
    """When the schema snapshot the draft reads was taken."""
