"""Reading a user's database into a `SchemaSnapshot`, with a few catalog queries per dialect
(not a round of inspector calls per table), so hundreds of tables take seconds."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect
from sqlalchemy.exc import SQLAlchemyError

from backend.connections.snapshot import ColumnInfo, ForeignKeyInfo, SchemaSnapshot, TableInfo
from backend.connections.value_index import bound_schema_index, column_index

SAMPLE_MAX_DISTINCT = 50
"""A text column with at most this many distinct values gets them as samples."""

SAMPLE_SCAN_ROWS = 10_000
"""Rows read per table to find distinct values: a bound on the cost of a large table."""

SAMPLE_MAX_VALUE_LENGTH = 100
"""A column holding a longer value is free text, not a category."""

EXACT_COUNT_MAX_FILE_BYTES = 256 * 1024 * 1024
"""SQLite files up to this size get exact row counts."""

EXACT_COUNT_MAX_TABLE_BYTES = 16 * 1024 * 1024
"""PostgreSQL tables never analysed get an exact count up to this size."""

_TEXT_TYPES = ("CHAR", "TEXT", "STRING", "CLOB", "VARCHAR", "ENUM")
_SECRET_COLUMN_MARKERS = ("password", "passwd", "secret", "token", "hash", "api_key", "apikey")


def _is_text(type_name: str) -> bool:
    upper = type_name.upper()
    return any(t in upper for t in _TEXT_TYPES)


def _may_index(column: ColumnInfo) -> bool:
    """A text column whose values may be read: not one of secrets."""
    lowered = column.name.lower()
    return _is_text(column.type) and not any(m in lowered for m in _SECRET_COLUMN_MARKERS)


def _may_sample(column: ColumnInfo) -> bool:
    return _may_index(column) and not column.primary_key and column.sample_values is None


@dataclass(slots=True)
class _Table:
    """A table as the catalog queries find it, before it becomes a `TableInfo`."""

    key: Any
    name: str
    schema_name: str | None
    is_view: bool = False
    columns: list[ColumnInfo] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    foreign_keys: list[ForeignKeyInfo] = field(default_factory=list)
    row_count: int | None = None
    row_count_is_estimate: bool = False
    size_bytes: int | None = None
    comment: str | None = None
    quoted: str = ""
    """The table's name quoted for a query in this dialect."""

    def info(self) -> TableInfo:
        pk = set(self.primary_key)
        for column in self.columns:
            column.primary_key = column.primary_key or column.name in pk
        return TableInfo(
            name=self.name,
            schema_name=self.schema_name,
            columns=self.columns,
            foreign_keys=self.foreign_keys,
            row_count=self.row_count,
            row_count_is_estimate=self.row_count_is_estimate,
            size_bytes=self.size_bytes,
            comment=self.comment,
        )


def _rows(conn: Connection, sql: str) -> list[Any]:
    return list(conn.exec_driver_sql(sql, execution_options={"no_parameters": True}).fetchall())


def _quote(conn: Connection, *parts: str | None) -> str:
    preparer = conn.dialect.identifier_preparer
    return ".".join(preparer.quote_identifier(p) for p in parts if p)


# --- SQLite --------------------------------------------------------------------------------


def _read_sqlite(conn: Connection) -> list[_Table]:
    tables: dict[str, _Table] = {}
    for name, kind in _rows(
        conn,
        "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite_%' ORDER BY name",
    ):
        tables[name] = _Table(
            key=name, name=name, schema_name=None, is_view=kind == "view", quoted=_quote(conn, name)
        )
    for table_name, col_name, col_type, not_null, default, pk in _rows(
        conn,
        'SELECT m.name, p.name, p.type, p."notnull", p.dflt_value, p.pk '
        "FROM sqlite_master m JOIN pragma_table_info(m.name) p "
        "WHERE m.type IN ('table', 'view') AND m.name NOT LIKE 'sqlite_%' "
        "ORDER BY m.name, p.cid",
    ):
        table = tables.get(table_name)
        if table is None:
            continue
        table.columns.append(
            ColumnInfo(
                name=col_name,
                type=col_type or "",
                nullable=not not_null and not pk,
                primary_key=bool(pk),
                default=str(default) if default is not None else None,
            )
        )
    fks: dict[tuple[str, int], dict[str, Any]] = {}
    for table_name, fk_id, referred, col_from, col_to in _rows(
        conn,
        'SELECT m.name, f.id, f."table", f."from", f."to" '
        "FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f "
        "WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, f.id, f.seq",
    ):
        entry = fks.setdefault((table_name, fk_id), {"referred": referred, "from": [], "to": []})
        entry["from"].append(col_from)
        entry["to"].append(col_to)
    for (table_name, _), entry in fks.items():
        referred_table = tables.get(entry["referred"])
        to_columns = entry["to"]
        if any(c is None for c in to_columns) and referred_table is not None:
            # `REFERENCES parent` without columns means the parent's primary key.
            to_columns = [c.name for c in referred_table.columns if c.primary_key]
        tables[table_name].foreign_keys.append(
            ForeignKeyInfo(
                columns=entry["from"], referred_table=entry["referred"], referred_columns=to_columns
            )
        )
    file_size = _sqlite_file_size(conn)
    if file_size is not None and file_size <= EXACT_COUNT_MAX_FILE_BYTES:
        for table in tables.values():
            if not table.is_view:
                _tolerate(conn, partial(_count_rows, conn, table))
    sizes: dict[str, int] = {}

    def _read_sizes() -> None:
        # dbstat exists only where SQLite was built with it; sizes are a nicety.
        sizes.update(_rows(conn, "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))

    _tolerate(conn, _read_sizes)
    for table in tables.values():
        if table.name in sizes:
            table.size_bytes = int(sizes[table.name])
    return list(tables.values())


def _sqlite_file_size(conn: Connection) -> int | None:
    for _, name, file_name in _rows(conn, "PRAGMA database_list"):
        if name == "main" and file_name:
            try:
                return Path(file_name).stat().st_size
            except OSError:
                return None
    return None


# --- PostgreSQL ----------------------------------------------------------------------------


def _read_postgresql(conn: Connection) -> list[_Table]:
    current_schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    tables: dict[int, _Table] = {}
    for oid, schema, name, kind, reltuples, size, comment in _rows(
        conn,
        "SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples::bigint, "
        "CASE WHEN c.relkind IN ('r', 'p', 'm') THEN pg_total_relation_size(c.oid) END, "
        "obj_description(c.oid, 'pg_class') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND NOT c.relispartition "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
        "AND has_schema_privilege(n.oid, 'USAGE') "
        "ORDER BY n.nspname, c.relname",
    ):
        is_view = kind == "v"
        table = _Table(
            key=oid,
            name=name if schema == current_schema else f"{schema}.{name}",
            schema_name=schema,
            is_view=is_view,
            size_bytes=int(size) if size is not None else None,
            comment=comment,
            quoted=_quote(conn, schema, name),
        )
        if not is_view and reltuples is not None and reltuples >= 0:
            table.row_count, table.row_count_is_estimate = int(reltuples), True
        tables[oid] = table
    enum_values: dict[int, list[str]] = defaultdict(list)
    for type_oid, label in _rows(
        conn, "SELECT enumtypid, enumlabel FROM pg_enum ORDER BY enumtypid, enumsortorder"
    ):
        enum_values[type_oid].append(label)
    for relid, col_name, col_type, not_null, default, type_oid in _rows(
        conn,
        "SELECT a.attrelid, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "pg_get_expr(d.adbin, d.adrelid), a.atttypid "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attnum > 0 AND NOT a.attisdropped "
        "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' "
        "AND has_schema_privilege(n.oid, 'USAGE') "
        "ORDER BY a.attrelid, a.attnum",
    ):
        owner = tables.get(relid)
        if owner is None:
            continue
        column = ColumnInfo(name=col_name, type=col_type, nullable=not not_null, default=default)
        if type_oid in enum_values:
            column.sample_values = list(enum_values[type_oid])
            column.distinct_count = len(column.sample_values)
        owner.columns.append(column)
    for relid, col_name in _rows(
        conn,
        "SELECT con.conrelid, a.attname FROM pg_constraint con "
        "CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum "
        "WHERE con.contype = 'p' ORDER BY con.conrelid, k.ord",
    ):
        if relid in tables:
            tables[relid].primary_key.append(col_name)
    for relid, ref_schema, ref_name, from_cols, to_cols in _rows(
        conn,
        "SELECT con.conrelid, rn.nspname, rc.relname, "
        "ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o) "
        "  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), "
        "ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o) "
        "  JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) "
        "FROM pg_constraint con JOIN pg_class rc ON rc.oid = con.confrelid "
        "JOIN pg_namespace rn ON rn.oid = rc.relnamespace "
        "WHERE con.contype = 'f' ORDER BY con.conrelid, con.conname",
    ):
        if relid in tables:
            tables[relid].foreign_keys.append(
                ForeignKeyInfo(
                    columns=list(from_cols),
                    referred_table=ref_name
                    if ref_schema == current_schema
                    else f"{ref_schema}.{ref_name}",
                    referred_columns=list(to_cols),
                    referred_schema=ref_schema,
                )
            )
    for table in tables.values():
        never_analysed = table.row_count is None and not table.is_view
        if never_analysed and (table.size_bytes or 0) <= EXACT_COUNT_MAX_TABLE_BYTES:
            _tolerate(conn, partial(_count_rows, conn, table))
    return list(tables.values())


def _count_rows(conn: Connection, table: _Table) -> None:
    table.row_count = int(
        conn.exec_driver_sql(
            f"SELECT count(*) FROM {table.quoted}",  # noqa: S608 - a quoted catalog name
            execution_options={"no_parameters": True},
        ).scalar_one()
    )


# --- MySQL and MariaDB ---------------------------------------------------------------------

_ENUM_VALUE = re.compile(r"'((?:[^']|'')*)'")


def _read_mysql(conn: Connection) -> list[_Table]:
    tables: dict[str, _Table] = {}
    for name, kind, rows, size, comment in _rows(
        conn,
        "SELECT table_name, table_type, table_rows, data_length + index_length, table_comment "
        "FROM information_schema.tables WHERE table_schema = DATABASE() ORDER BY table_name",
    ):
        is_view = kind == "VIEW"
        tables[name] = _Table(
            key=name,
            name=name,
            schema_name=None,
            is_view=is_view,
            row_count=int(rows) if rows is not None and not is_view else None,
            row_count_is_estimate=not is_view,
            size_bytes=int(size) if size is not None else None,
            comment=comment or None,
            quoted=_quote(conn, name),
        )
    for table_name, col_name, col_type, nullable, default, key in _rows(
        conn,
        "SELECT table_name, column_name, column_type, is_nullable, column_default, column_key "
        "FROM information_schema.columns WHERE table_schema = DATABASE() "
        "ORDER BY table_name, ordinal_position",
    ):
        table = tables.get(table_name)
        if table is None:
            continue
        column = ColumnInfo(
            name=col_name,
            type=str(col_type),
            nullable=nullable == "YES",
            primary_key=key == "PRI",
            default=str(default) if default is not None else None,
        )
        if str(col_type).lower().startswith("enum("):
            column.sample_values = [v.replace("''", "'") for v in _ENUM_VALUE.findall(col_type)]
            column.distinct_count = len(column.sample_values)
        table.columns.append(column)
    fks: dict[tuple[str, str], dict[str, Any]] = {}
    for table_name, name, col, ref_schema, ref_table, ref_col in _rows(
        conn,
        "SELECT table_name, constraint_name, column_name, referenced_table_schema, "
        "referenced_table_name, referenced_column_name "
        "FROM information_schema.key_column_usage "
        "WHERE table_schema = DATABASE() AND referenced_table_name IS NOT NULL "
        "ORDER BY table_name, constraint_name, ordinal_position",
    ):
        entry = fks.setdefault(
            (table_name, name), {"schema": ref_schema, "table": ref_table, "from": [], "to": []}
        )
        entry["from"].append(col)
        entry["to"].append(ref_col)
    for (table_name, _), entry in fks.items():
        if table_name in tables:
            tables[table_name].foreign_keys.append(
                ForeignKeyInfo(
                    columns=entry["from"],
                    referred_table=entry["table"],
                    referred_columns=entry["to"],
                    referred_schema=entry["schema"],
                )
            )
    return list(tables.values())


# --- DuckDB --------------------------------------------------------------------------------


def _read_duckdb(conn: Connection) -> list[_Table]:
    current_schema = conn.exec_driver_sql("SELECT current_schema()").scalar_one()
    tables: dict[tuple[str, str], _Table] = {}
    for schema, name, estimate, comment, is_view in _rows(
        conn,
        "SELECT schema_name, table_name, estimated_size, comment, false FROM duckdb_tables() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary "
        "UNION ALL SELECT schema_name, view_name, NULL, comment, true FROM duckdb_views() "
        "WHERE database_name = current_database() AND NOT internal AND NOT temporary "
        "ORDER BY 1, 2",
    ):
        tables[(schema, name)] = _Table(
            key=(schema, name),
            name=name if schema == current_schema else f"{schema}.{name}",
            schema_name=schema,
            is_view=bool(is_view),
            row_count=int(estimate) if estimate is not None else None,
            row_count_is_estimate=estimate is not None,
            comment=comment,
            quoted=_quote(conn, schema, name),
        )
    for schema, table_name, col_name, col_type, nullable, default in _rows(
        conn,
        "SELECT schema_name, table_name, column_name, data_type, is_nullable, column_default "
        "FROM duckdb_columns() WHERE database_name = current_database() AND NOT internal "
        "ORDER BY schema_name, table_name, column_index",
    ):
        table = tables.get((schema, table_name))
        if table is not None:
            table.columns.append(
                ColumnInfo(
                    name=col_name,
                    type=str(col_type),
                    nullable=bool(nullable),
                    default=str(default) if default is not None else None,
                )
            )
    for schema, table_name, kind, cols, ref_table, ref_cols in _rows(
        conn,
        "SELECT schema_name, table_name, constraint_type, constraint_column_names, "
        "referenced_table, referenced_column_names FROM duckdb_constraints() "
        "WHERE database_name = current_database() "
        "AND constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY')",
    ):
        table = tables.get((schema, table_name))
        if table is None:
            continue
        if kind == "PRIMARY KEY":
            table.primary_key.extend(cols)
        else:
            table.foreign_keys.append(
                ForeignKeyInfo(
                    columns=list(cols), referred_table=ref_table, referred_columns=list(ref_cols)
                )
            )
    return list(tables.values())


# --- any other engine ----------------------------------------------------------------------


def _read_with_inspector(conn: Connection) -> list[_Table]:
    inspector = inspect(conn)
    tables = []
    for name in sorted(inspector.get_table_names()):
        pk = inspector.get_pk_constraint(name).get("constrained_columns") or []
        table = _Table(key=name, name=name, schema_name=None, quoted=_quote(conn, name))
        table.primary_key = list(pk)
        for col in inspector.get_columns(name):
            default = col.get("default")
            table.columns.append(
                ColumnInfo(
                    name=col["name"],
                    type=str(col["type"]),
                    nullable=bool(col.get("nullable", True)),
                    default=str(default) if default is not None else None,
                )
            )
        table.foreign_keys = [
            ForeignKeyInfo(
                columns=list(fk["constrained_columns"]),
                referred_table=fk["referred_table"],
                referred_columns=list(fk["referred_columns"]),
                referred_schema=fk.get("referred_schema"),
            )
            for fk in inspector.get_foreign_keys(name)
            if fk.get("referred_table")
        ]
        tables.append(table)
    return tables


_READERS: dict[str, Callable[[Connection], list[_Table]]] = {
    "sqlite": _read_sqlite,
    "postgresql": _read_postgresql,
    "mysql": _read_mysql,
    "duckdb": _read_duckdb,
}


# --- samples -------------------------------------------------------------------------------


def _tolerate(conn: Connection, work: Callable[[], None]) -> None:
    """Run `work`; if the database refuses it (a table we may not read), roll back and go on.
    The session stays read-only: every dialect opens its connections read-only too."""
    try:
        work()
    except SQLAlchemyError:
        conn.rollback()


def _sample_table(conn: Connection, table: _Table) -> None:
    """Distinct values of the table's text columns, from one bounded scan: all of them as
    samples where there are few, else a bounded value index (`value_index`)."""
    candidates = [
        c for c in table.columns if _may_index(c) and c.sample_values is None
    ]  # (a text key is indexed, never sampled: its values are the rows, not categories)
    if not candidates:
        return
    # Values are cut in the database one character past the longest sample, so a column of
    # large documents costs the scan no more than one of short labels.
    select_list = ", ".join(
        f"substr({_quote(conn, c.name)}, 1, {SAMPLE_MAX_VALUE_LENGTH + 1})" for c in candidates
    )
    rows = conn.exec_driver_sql(
        f"SELECT {select_list} FROM {table.quoted} LIMIT {SAMPLE_SCAN_ROWS}",  # noqa: S608 - quoted catalog names
        execution_options={"no_parameters": True},
    ).fetchall()
    complete = len(rows) < SAMPLE_SCAN_ROWS
    for index, column in enumerate(candidates):
        seen: set[str] = set()
        free_text = False
        for row in rows:
            value = row[index]
            if value is None:
                continue
            text = str(value)
            if len(text) > SAMPLE_MAX_VALUE_LENGTH:
                free_text = True
                break
            seen.add(text)
            if len(seen) > SAMPLE_MAX_DISTINCT:
                break
        if free_text or not seen:
            continue
        if len(seen) <= SAMPLE_MAX_DISTINCT and _may_sample(column):
            column.sample_values = sorted(seen)
            column.distinct_count = len(seen) if complete else None
        else:
            column.indexed_values = column_index(row[index] for row in rows) or None


def _sample_values(conn: Connection, tables: Iterable[_Table]) -> None:
    read = [t for t in tables if not t.is_view]
    for table in read:
        _tolerate(conn, partial(_sample_table, conn, table))
    bound_schema_index([c for t in read for c in t.columns])


def introspect_connection(
    conn: Connection, *, db_type: str, database_name: str, sample_values: bool = True
) -> SchemaSnapshot:
    """The snapshot of the database behind an open connection."""
    reader = _READERS.get(db_type, _read_with_inspector)
    tables = reader(conn)
    if sample_values:
        _sample_values(conn, tables)
    return SchemaSnapshot(
        db_type=db_type,
        database_name=database_name,
        tables=[t.info() for t in sorted(tables, key=lambda t: t.name)],
    )


def introspect(
    engine: Engine, *, db_type: str, database_name: str, sample_values: bool = True
) -> SchemaSnapshot:
    with engine.connect() as conn:
        try:
            return introspect_connection(
                conn, db_type=db_type, database_name=database_name, sample_values=sample_values
            )
        finally:
            conn.rollback()
