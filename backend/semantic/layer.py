"""The semantic layer document: what a user tells every generator about one connection.

It is the one shape that is stored (one version per write), imported and exported as YAML or
JSON, validated against the connection's schema, and handed to generators through
`GenerationRequest.semantic`. Engines read it; they never import FastAPI or the database.

Names of tables and columns are the database's own (case-insensitive). Column references in
SQL fragments are written `table.column`; fragments are in the connection's SQL dialect.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import ConfigDict, Field

from backend.core.schemas import AppSchema


class LayerPart(AppSchema):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True, extra="forbid")


class ColumnDefinition(LayerPart):
    name: str
    description: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    """Words users write for this column ("seats sold" for `invoices.qty`)."""
    values: dict[str, str] = Field(default_factory=dict)
    """Words users write for stored values: phrase -> value as stored ("mobile": "mobile_app")."""
    hidden: bool = False
    """Never offered to any generator nor selectable by the engine (a privacy control)."""


class TableDefinition(LayerPart):
    name: str
    description: str | None = None
    synonyms: list[str] = Field(default_factory=list)
    """Words users write for this table ("clients", "customers" for `accounts`)."""
    hidden: bool = False
    columns: list[ColumnDefinition] = Field(default_factory=list)
    time_column: str | None = None
    """The column of this table its rows are dated by when a question gives a time but names
    no date ("invoices in 2024": `issue_date`, not `due_date`). Optional."""


class Measure(LayerPart):
    """A named business figure: `expression` aggregated over the rows of `table` that pass
    `filter`, dated by `time_column` when a question restricts or buckets it by time."""

    name: str
    synonyms: list[str] = Field(default_factory=list)
    table: str
    expression: str
    """An aggregate SQL fragment, e.g. `SUM(invoices.amount)`."""
    filter: str | None = None
    """A boolean SQL fragment, e.g. `invoices.paid_date IS NOT NULL`."""
    time_column: str | None = None
    """`table.column` the measure is dated by, e.g. `invoices.issue_date`."""
    description: str | None = None


class NamedFilter(LayerPart):
    """A named segment: "active customer" -> `accounts.churned_at IS NULL`."""

    name: str
    synonyms: list[str] = Field(default_factory=list)
    table: str
    condition: str
    description: str | None = None


class JoinPath(LayerPart):
    """A join the database does not declare: `from_table.from_column` refers to
    `to_table.to_column` (many rows of `from_table` to one of `to_table`)."""

    from_table: str
    from_column: str
    to_table: str
    to_column: str
    description: str | None = None


class SemanticLayer(LayerPart):
    tables: list[TableDefinition] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
    filters: list[NamedFilter] = Field(default_factory=list)
    joins: list[JoinPath] = Field(default_factory=list)
    today: dt.date | None = None
    """The date relative wording ("last year", "60 days overdue") counts back from; None: the
    clock. Set it for data that stops at a known day."""
    fiscal_year_start_month: int = Field(default=1, ge=1, le=12)
    fiscal_year_named_by: Literal["start", "end"] | None = None
    """Which calendar year names a fiscal year that does not start in January: "end" (FY2024
    ends in 2024, the usual US convention) or "start" (FY2024 starts in 2024). None: numbered
    fiscal years ("FY2024") are not read unless the fiscal year starts in January."""
    instructions: list[str] = Field(default_factory=list)
    """Free guidance for LLM generators ("amounts are in USD before tax")."""
