"""The schema snapshot: what introspection stores and what the NL engines read."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from backend.core.schemas import AppSchema


class ColumnInfo(AppSchema):
    name: str
    type: str
    """The database's own type name, e.g. `INTEGER`, `character varying(100)`."""
    nullable: bool = True
    primary_key: bool = False
    default: str | None = None
    sample_values: list[Any] | None = None
    """Distinct values of a low-cardinality text column (links "in France" to a value)."""
    distinct_count: int | None = None
    indexed_values: list[str] | None = None
    """Distinct values of a text column with too many of them to be samples (names, codes,
    cities), kept within a byte budget per column and per schema (see
    `backend.connections.value_index`): only to tell which column a value a question names
    is stored in, never shown as the column's categories."""


class ForeignKeyInfo(AppSchema):
    columns: list[str]
    referred_table: str
    referred_columns: list[str]
    referred_schema: str | None = None


class TableInfo(AppSchema):
    name: str
    schema_name: str | None = None
    columns: list[ColumnInfo]
    foreign_keys: list[ForeignKeyInfo] = Field(default_factory=list)
    row_count: int | None = None
    row_count_is_estimate: bool = False
    size_bytes: int | None = None
    comment: str | None = None

    def column(self, name: str) -> ColumnInfo | None:
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)


class SchemaSnapshot(AppSchema):
    db_type: str
    """`sqlite`, `postgresql`, `mysql` or `duckdb`."""
    database_name: str
    tables: list[TableInfo]

    def table(self, name: str) -> TableInfo | None:
        lowered = name.lower()
        return next((t for t in self.tables if t.name.lower() == lowered), None)

    @property
    def table_names(self) -> list[str]:
        return [t.name for t in self.tables]
