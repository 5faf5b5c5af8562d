"""The draft layer the platform proposes from a schema snapshot and sampled values.

Deterministic: the same snapshot and samples give the same document. It reads names, types,
keys, comments and the values introspection sampled; `flag_values` adds the distinct values of
integer columns named like flags (`is_`, `has_`), which only the database can tell are 0/1.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from backend.connections.snapshot import ColumnInfo, SchemaSnapshot, TableInfo
from backend.nl2sql.guard import sqlglot_dialect
from backend.semantic.layer import (
    ColumnDefinition,
    JoinPath,
    Measure,
    NamedFilter,
    SemanticLayer,
    TableDefinition,
)

MONEY_WORDS = frozenset({"amount", "price", "cost", "revenue", "mrr", "arr", "fee", "salary"})
END_WORDS = frozenset(
    {"end", "ended", "ends", "closed", "churned", "left", "cancelled", "canceled", "terminated"}
)
LABEL_NAMES = ("name", "title", "label", "full_name", "display_name")
FLAG_PREFIXES = ("is_", "has_")
_NUMERIC = ("int", "numeric", "decimal", "real", "float", "double", "money", "number")
_DATE = ("date", "time")
_WORD = re.compile(r"[a-z0-9]+")


def _words(name: str) -> list[str]:
    return _WORD.findall(name.lower())


def _phrase(name: str) -> str:
    return " ".join(_words(name)) or name


def singular(word: str) -> str:
    lowered = word.lower()
    if lowered.endswith("ies") and len(lowered) > 4:
        return lowered[:-3] + "y"
    if lowered.endswith(("ses", "xes", "ches", "shes")):
        return lowered[:-2]
    if lowered.endswith("s") and not lowered.endswith("ss"):
        return lowered[:-1]
    return lowered


def _ref(dialect: Dialect, table: str, column: str) -> str:
    """`table.column` with quotes only where the dialect needs them."""
    parts = [
        dialect.quote_identifier(exp.to_identifier(p), identify=False) for p in (table, column)
    ]
    return ".".join(p.sql(dialect=dialect) for p in parts)


def _is_numeric(column: ColumnInfo) -> bool:
    lowered = column.type.lower()
    return any(marker in lowered for marker in _NUMERIC)


def _is_date(column: ColumnInfo) -> bool:
    lowered = column.type.lower()
    return any(marker in lowered for marker in _DATE) and "interval" not in lowered


def _is_boolean(column: ColumnInfo) -> bool:
    return "bool" in column.type.lower()


def _is_flag(table: TableInfo, column: ColumnInfo, flag_values: Mapping[Any, list[Any]]) -> bool:
    if not column.name.lower().startswith(FLAG_PREFIXES):
        return False
    if _is_boolean(column):
        return True
    values = flag_values.get((table.name, column.name))
    return bool(values) and values is not None and {str(v) for v in values} <= {"0", "1"}


def _is_money(column: ColumnInfo) -> bool:
    return _is_numeric(column) and bool(MONEY_WORDS & set(_words(column.name)))


def _is_identifier(column: ColumnInfo) -> bool:
    lowered = column.name.lower()
    return column.primary_key or lowered == "id" or lowered.endswith("_id")


def _label_column(table: TableInfo) -> ColumnInfo | None:
    by_name = {c.name.lower(): c for c in table.columns}
    for name in (*LABEL_NAMES, f"{singular(table.name)}_name"):
        column = by_name.get(name)
        if column is not None and not _is_numeric(column) and not _is_date(column):
            return column
    return None


def _time_column(table: TableInfo) -> ColumnInfo | None:
    dates = [c for c in table.columns if _is_date(c) and not _is_end_date(c)]
    preferred = ("created_at", "created", "order_date", "date", "issued_at", "issue_date")
    for name in preferred:
        found = next((c for c in dates if c.name.lower() == name), None)
        if found is not None:
            return found
    return dates[0] if dates else None


def _is_end_date(column: ColumnInfo) -> bool:
    return _is_date(column) and bool(END_WORDS & set(_words(column.name)))


def _describe_column(
    table: TableInfo,
    column: ColumnInfo,
    label: ColumnInfo | None,
    flag_values: Mapping[Any, list[Any]],
) -> ColumnDefinition | None:
    description: str | None = None
    if _is_flag(table, column, flag_values):
        what = _phrase(column.name)
        description = f"Flag: true/1 when {what}, false/0 otherwise."
    elif _is_end_date(column) and column.nullable:
        description = (
            f"Date: when the {singular(table.name)} {_phrase(column.name)}; empty while it is not."
        )
    elif _is_date(column):
        description = "Date."
    elif _is_money(column):
        description = "Money amount."
    elif column.primary_key:
        description = f"Identifier of the {singular(_phrase(table.name))}."
    elif _is_identifier(column):
        description = "Identifier."
    elif label is not None and column is label:
        description = f"Label: the name each {singular(_phrase(table.name))} is known by."
    values: dict[str, str] = {}
    for value in column.sample_values or ():
        if isinstance(value, str) and ("_" in value or "-" in value):
            spoken = " ".join(_words(value))
            if spoken and spoken != value.lower():
                values[spoken] = value
    if description is None and not values:
        return None
    return ColumnDefinition(name=column.name, description=description, values=values)


def _referenced_table(
    column: ColumnInfo, tables: dict[str, TableInfo], declared: set[str]
) -> tuple[TableInfo, ColumnInfo] | None:
    lowered = column.name.lower()
    if not lowered.endswith("_id") or lowered in declared:
        return None
    stem = lowered[:-3]
    for candidate in (
        stem,
        f"{stem}s",
        f"{stem}es",
        f"{stem[:-1]}ies" if stem.endswith("y") else "",
    ):
        target = tables.get(candidate)
        if target is None:
            continue
        keys = [c for c in target.columns if c.primary_key] or [
            c for c in target.columns if c.name.lower() == "id"
        ]
        if len(keys) == 1:
            return target, keys[0]
    for name, target in tables.items():
        if singular(name) == stem:
            keys = [c for c in target.columns if c.primary_key]
            if len(keys) == 1:
                return target, keys[0]
    return None


def propose_layer(
    snapshot: SchemaSnapshot, *, flag_values: Mapping[Any, list[Any]] | None = None
) -> SemanticLayer:
    """A layer proposed from the snapshot: descriptions, value phrases, measures, filters and
    the joins foreign keys do not declare."""
    flag_values = flag_values or {}
    dialect = Dialect.get_or_raise(sqlglot_dialect(snapshot.db_type))
    ordered = sorted(snapshot.tables, key=lambda t: t.name.lower())
    tables_by_name = {t.name.lower(): t for t in ordered}
    tables: list[TableDefinition] = []
    measures: list[Measure] = []
    filters: list[NamedFilter] = []
    joins: list[JoinPath] = []
    names: set[str] = set()

    def unique(name: str, fallback: str) -> str | None:
        for candidate in (name, fallback):
            if candidate.lower() not in names:
                names.add(candidate.lower())
                return candidate
        return None

    for table in ordered:
        label = _label_column(table)
        columns = [
            d
            for d in (_describe_column(table, c, label, flag_values) for c in table.columns)
            if d is not None
        ]
        tables.append(
            TableDefinition(name=table.name, description=table.comment or None, columns=columns)
        )
        time_column = _time_column(table)
        dated_by = f"{table.name}.{time_column.name}" if time_column else None
        thing = _phrase(table.name)
        count_name = unique(f"number of {thing}", f"number of {table.name}")
        if count_name is not None:
            measures.append(
                Measure(
                    name=count_name, table=table.name, expression="COUNT(*)", time_column=dated_by
                )
            )
        for column in table.columns:
            if not _is_money(column):
                continue
            measure_name = unique(
                f"total {_phrase(column.name)}", f"total {singular(thing)} {_phrase(column.name)}"
            )
            if measure_name is not None:
                measures.append(
                    Measure(
                        name=measure_name,
                        table=table.name,
                        expression=f"SUM({_ref(dialect, table.name, column.name)})",
                        time_column=dated_by,
                    )
                )
        for column in table.columns:
            if not (_is_end_date(column) and column.nullable):
                continue
            filter_name = unique(
                f"active {singular(thing)}", f"active {singular(thing)} by {_phrase(column.name)}"
            )
            if filter_name is not None:
                filters.append(
                    NamedFilter(
                        name=filter_name,
                        table=table.name,
                        condition=f"{_ref(dialect, table.name, column.name)} IS NULL",
                        description=f"{_phrase(column.name).capitalize()} is not set yet.",
                    )
                )
        declared = {
            c.lower() for fk in table.foreign_keys if len(fk.columns) == 1 for c in fk.columns
        }
        for column in table.columns:
            if column.primary_key:
                continue
            found = _referenced_table(column, tables_by_name, declared)
            if found is None or found[0] is table:
                continue
            target, key = found
            joins.append(
                JoinPath(
                    from_table=table.name,
                    from_column=column.name,
                    to_table=target.name,
                    to_column=key.name,
                    description="Proposed from the column's name (no foreign key declares it).",
                )
            )
    return SemanticLayer(tables=tables, measures=measures, filters=filters, joins=joins)


def flag_candidates(snapshot: SchemaSnapshot) -> list[tuple[TableInfo, ColumnInfo]]:
    """Integer columns named like flags, whose distinct values tell whether they are 0/1."""
    return [
        (table, column)
        for table in sorted(snapshot.tables, key=lambda t: t.name.lower())
        for column in table.columns
        if column.name.lower().startswith(FLAG_PREFIXES)
        and _is_numeric(column)
        and not _is_boolean(column)
    ]
