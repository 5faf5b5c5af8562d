"""Reading a user's database into a `SchemaSnapshot`."""

from __future__ import annotations

from sqlalchemy import Engine, column, func, inspect, select, table
from sqlalchemy.exc import SQLAlchemyError

from backend.connections.snapshot import ColumnInfo, ForeignKeyInfo, SchemaSnapshot, TableInfo

SAMPLE_MAX_DISTINCT = 50
"""A text column with at most this many distinct values gets them all as samples."""

_TEXT_TYPES = ("CHAR", "TEXT", "STRING", "CLOB", "VARCHAR")


def _is_text(type_name: str) -> bool:
    upper = type_name.upper()
    return any(t in upper for t in _TEXT_TYPES)


def introspect(
    engine: Engine, *, db_type: str, database_name: str, sample_values: bool = True
) -> SchemaSnapshot:
    inspector = inspect(engine)
    tables: list[TableInfo] = []
    with engine.connect() as conn:
        for table_name in sorted(inspector.get_table_names()):
            pk = set(inspector.get_pk_constraint(table_name).get("constrained_columns") or [])
            columns = []
            for col in inspector.get_columns(table_name):
                default = col.get("default")
                columns.append(
                    ColumnInfo(
                        name=col["name"],
                        type=str(col["type"]),
                        nullable=bool(col.get("nullable", True)),
                        primary_key=col["name"] in pk,
                        default=str(default) if default is not None else None,
                    )
                )
            fks = [
                ForeignKeyInfo(
                    columns=list(fk["constrained_columns"]),
                    referred_table=fk["referred_table"],
                    referred_columns=list(fk["referred_columns"]),
                    referred_schema=fk.get("referred_schema"),
                )
                for fk in inspector.get_foreign_keys(table_name)
                if fk.get("referred_table")
            ]
            tbl = table(table_name, *[column(c.name) for c in columns])
            try:
                row_count = int(conn.execute(select(func.count()).select_from(tbl)).scalar_one())
            except SQLAlchemyError:
                row_count = None
            if sample_values:
                for col_info in columns:
                    if not _is_text(col_info.type) or col_info.primary_key:
                        continue
                    values_query = (
                        select(tbl.c[col_info.name])
                        .where(tbl.c[col_info.name].is_not(None))
                        .distinct()
                        .limit(SAMPLE_MAX_DISTINCT + 1)
                    )
                    try:
                        values = [r[0] for r in conn.execute(values_query)]
                    except SQLAlchemyError:
                        continue
                    if len(values) <= SAMPLE_MAX_DISTINCT:
                        col_info.sample_values = sorted(str(v) for v in values)
                        col_info.distinct_count = len(values)
            tables.append(
                TableInfo(name=table_name, columns=columns, foreign_keys=fks, row_count=row_count)
            )
    return SchemaSnapshot(db_type=db_type, database_name=database_name, tables=tables)
