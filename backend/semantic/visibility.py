"""What a layer hides: the hidden tables and columns, the snapshot and layer generators may see.

Generators get `visible_snapshot` and `public_layer`; the guard gets `HiddenItems` and refuses
SQL that reads anything hidden, whoever wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from backend.connections.snapshot import ForeignKeyInfo, SchemaSnapshot, TableInfo
from backend.semantic.layer import SemanticLayer


@dataclass(frozen=True, slots=True)
class HiddenItems:
    """Lowercase names: whole tables, and columns by their table."""

    tables: frozenset[str] = frozenset()
    columns: dict[str, frozenset[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.tables or self.columns)

    def is_table_hidden(self, table: str) -> bool:
        return table.lower() in self.tables

    def is_column_hidden(self, table: str, column: str) -> bool:
        lowered = table.lower()
        return lowered in self.tables or column.lower() in self.columns.get(lowered, frozenset())

    def columns_of(self, table: str) -> frozenset[str]:
        return self.columns.get(table.lower(), frozenset())


NOTHING_HIDDEN = HiddenItems()


def hidden_items(layer: SemanticLayer | None) -> HiddenItems:
    if layer is None:
        return NOTHING_HIDDEN
    tables: set[str] = set()
    columns: dict[str, frozenset[str]] = {}
    for table in layer.tables:
        name = table.name.lower()
        if table.hidden:
            tables.add(name)
            continue
        hidden = frozenset(c.name.lower() for c in table.columns if c.hidden)
        if hidden:
            columns[name] = columns.get(name, frozenset()) | hidden
    return HiddenItems(tables=frozenset(tables), columns=columns)


def _visible_foreign_keys(table: TableInfo, hidden: HiddenItems) -> list[ForeignKeyInfo]:
    return [
        fk
        for fk in table.foreign_keys
        if not hidden.is_table_hidden(fk.referred_table)
        and not any(hidden.is_column_hidden(table.name, c) for c in fk.columns)
        and not any(hidden.is_column_hidden(fk.referred_table, c) for c in fk.referred_columns)
    ]


def visible_snapshot(snapshot: SchemaSnapshot, hidden: HiddenItems) -> SchemaSnapshot:
    """The snapshot without hidden tables, hidden columns, and keys that lead to them."""
    if not hidden:
        return snapshot
    tables: list[TableInfo] = []
    for table in snapshot.tables:
        if hidden.is_table_hidden(table.name):
            continue
        tables.append(
            table.model_copy(
                update={
                    "columns": [
                        c for c in table.columns if not hidden.is_column_hidden(table.name, c.name)
                    ],
                    "foreign_keys": _visible_foreign_keys(table, hidden),
                }
            )
        )
    return snapshot.model_copy(update={"tables": tables})


def public_layer(layer: SemanticLayer) -> SemanticLayer:
    """The layer as generators see it: hidden tables and column definitions left out (their
    names never reach a prompt), joins that touch them dropped."""
    hidden = hidden_items(layer)
    if not hidden:
        return layer
    tables = [
        t.model_copy(update={"columns": [c for c in t.columns if not c.hidden]})
        for t in layer.tables
        if not t.hidden
    ]
    joins = [
        j
        for j in layer.joins
        if not hidden.is_column_hidden(j.from_table, j.from_column)
        and not hidden.is_column_hidden(j.to_table, j.to_column)
    ]
    return layer.model_copy(update={"tables": tables, "joins": joins})
