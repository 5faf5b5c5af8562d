"""Checks a layer against its connection before it is stored: names, sizes and SQL fragments.

Every table and column named must exist in the connection's schema snapshot; every SQL fragment
must be one expression in the connection's dialect over real columns that passes the guard
(the same function allow-list, no hidden table or column); a measure aggregates, a filter is a
condition. Problems are collected with their field path (`measures[2].filter`) and raised
together as one 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from backend.connections.snapshot import SchemaSnapshot, TableInfo
from backend.nl2sql.errors import GuardRefused
from backend.nl2sql.guard import guard_sql, parse_statements, sqlglot_dialect
from backend.semantic.errors import SemanticLayerInvalid
from backend.semantic.layer import SemanticLayer
from backend.semantic.visibility import HiddenItems, hidden_items

MAX_TABLES = 1000
MAX_COLUMNS_PER_TABLE = 1000
MAX_MEASURES = 500
MAX_FILTERS = 500
MAX_JOINS = 500
MAX_INSTRUCTIONS = 100
MAX_SYNONYMS = 50
MAX_VALUES = 500
MAX_NAME_CHARS = 255
MAX_SYNONYM_CHARS = 200
MAX_DESCRIPTION_CHARS = 2000
MAX_INSTRUCTION_CHARS = 2000
MAX_FRAGMENT_CHARS = 4000
MAX_REPORTED_PROBLEMS = 100


@dataclass(slots=True)
class _Problems:
    items: list[dict[str, Any]] = field(default_factory=list)

    def add(self, path: str, message: str, **extra: Any) -> None:
        if len(self.items) < MAX_REPORTED_PROBLEMS:
            self.items.append({"field": path, "message": message, **extra})

    def raise_if_any(self) -> None:
        if self.items:
            raise SemanticLayerInvalid.naming(list(self.items))


def _check_text(problems: _Problems, path: str, value: str | None, limit: int) -> None:
    if value is None:
        return
    if not value.strip():
        problems.add(path, "must not be empty")
    elif len(value) > limit:
        problems.add(path, f"is longer than {limit} characters", max_length=limit)


def _check_count(problems: _Problems, path: str, items: Iterable[object], limit: int) -> None:
    count = sum(1 for _ in items)
    if count > limit:
        problems.add(path, f"has {count} entries; at most {limit} are allowed", max_items=limit)


def _check_synonyms(problems: _Problems, path: str, synonyms: list[str]) -> None:
    _check_count(problems, path, synonyms, MAX_SYNONYMS)
    for index, synonym in enumerate(synonyms[:MAX_SYNONYMS]):
        _check_text(problems, f"{path}[{index}]", synonym, MAX_SYNONYM_CHARS)


def _check_bounds(layer: SemanticLayer, problems: _Problems) -> None:
    """Sizes first: a document over the bounds is refused before any parsing."""
    _check_count(problems, "tables", layer.tables, MAX_TABLES)
    _check_count(problems, "measures", layer.measures, MAX_MEASURES)
    _check_count(problems, "filters", layer.filters, MAX_FILTERS)
    _check_count(problems, "joins", layer.joins, MAX_JOINS)
    _check_count(problems, "instructions", layer.instructions, MAX_INSTRUCTIONS)
    for i, instruction in enumerate(layer.instructions[:MAX_INSTRUCTIONS]):
        _check_text(problems, f"instructions[{i}]", instruction, MAX_INSTRUCTION_CHARS)
    for t, table in enumerate(layer.tables[:MAX_TABLES]):
        path = f"tables[{t}]"
        _check_text(problems, f"{path}.name", table.name, MAX_NAME_CHARS)
        _check_text(problems, f"{path}.description", table.description, MAX_DESCRIPTION_CHARS)
        _check_synonyms(problems, f"{path}.synonyms", table.synonyms)
        _check_count(problems, f"{path}.columns", table.columns, MAX_COLUMNS_PER_TABLE)
        for c, column in enumerate(table.columns[:MAX_COLUMNS_PER_TABLE]):
            cpath = f"{path}.columns[{c}]"
            _check_text(problems, f"{cpath}.name", column.name, MAX_NAME_CHARS)
            _check_text(problems, f"{cpath}.description", column.description, MAX_DESCRIPTION_CHARS)
            _check_synonyms(problems, f"{cpath}.synonyms", column.synonyms)
            _check_count(problems, f"{cpath}.values", column.values, MAX_VALUES)
            for phrase, value in list(column.values.items())[:MAX_VALUES]:
                _check_text(problems, f"{cpath}.values[{phrase[:40]!r}]", phrase, MAX_SYNONYM_CHARS)
                if len(value) > MAX_SYNONYM_CHARS:
                    problems.add(
                        f"{cpath}.values[{phrase[:40]!r}]",
                        f"the stored value is longer than {MAX_SYNONYM_CHARS} characters",
                    )
    named: list[tuple[str, Any]] = [
        *((f"measures[{i}]", m) for i, m in enumerate(layer.measures[:MAX_MEASURES])),
        *((f"filters[{i}]", f) for i, f in enumerate(layer.filters[:MAX_FILTERS])),
    ]
    for path, item in named:
        _check_text(problems, f"{path}.name", item.name, MAX_NAME_CHARS)
        _check_text(problems, f"{path}.description", item.description, MAX_DESCRIPTION_CHARS)
        _check_synonyms(problems, f"{path}.synonyms", item.synonyms)
    for i, measure in enumerate(layer.measures[:MAX_MEASURES]):
        _check_text(problems, f"measures[{i}].expression", measure.expression, MAX_FRAGMENT_CHARS)
        _check_text(problems, f"measures[{i}].filter", measure.filter, MAX_FRAGMENT_CHARS)
    for i, named_filter in enumerate(layer.filters[:MAX_FILTERS]):
        _check_text(problems, f"filters[{i}].condition", named_filter.condition, MAX_FRAGMENT_CHARS)
    for i, join in enumerate(layer.joins[:MAX_JOINS]):
        _check_text(problems, f"joins[{i}].description", join.description, MAX_DESCRIPTION_CHARS)


def _unique(problems: _Problems, entries: Iterable[tuple[str, str]], what: str) -> None:
    seen: dict[str, str] = {}
    for path, name in entries:
        key = " ".join(name.lower().split())
        if key in seen:
            problems.add(path, f"{what} {name!r} is already defined at {seen[key]}")
        else:
            seen[key] = path


@dataclass(slots=True)
class _Context:
    snapshot: SchemaSnapshot
    dialect: str
    hidden: HiddenItems
    problems: _Problems

    def table(self, path: str, name: str) -> TableInfo | None:
        info = self.snapshot.table(name)
        if info is None:
            self.problems.add(path, f"the table {name!r} is not in this connection's schema")
        elif self.hidden.is_table_hidden(info.name):
            self.problems.add(path, f"the table {name!r} is hidden by this layer")
            return None
        return info

    def column(self, path: str, table_name: str, column_name: str) -> bool:
        info = self.table(path, table_name)
        if info is None:
            return False
        if info.column(column_name) is None:
            self.problems.add(
                path, f"the column {column_name!r} is not a column of the table {info.name!r}"
            )
            return False
        if self.hidden.is_column_hidden(info.name, column_name):
            self.problems.add(path, f"the column {info.name}.{column_name} is hidden by this layer")
            return False
        return True


def _inside_subquery(node: exp.Expr, root: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None and parent is not root:
        if isinstance(parent, exp.Query):
            return True
        parent = parent.parent
    return False


def _inside_aggregate(node: exp.Expr, root: exp.Expr) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, exp.AggFunc):
            return True
        if parent is root:
            return False
        parent = parent.parent
    return False


def _parse_fragment(ctx: _Context, path: str, text: str) -> exp.Expr | None:
    try:
        statements = parse_statements(f"SELECT {text}", ctx.dialect)
    except GuardRefused as exc:
        reason = exc.details.get("reason") or exc.message
        ctx.problems.add(path, f"does not parse as {ctx.dialect} SQL: {reason}", rule="parse")
        return None
    statement = statements[0] if len(statements) == 1 else None
    if (
        not isinstance(statement, exp.Select)
        or len(statement.expressions) != 1
        or any(v for k, v in statement.args.items() if k != "expressions" and v)
        or isinstance(statement.expressions[0], exp.Alias | exp.Star)
    ):
        ctx.problems.add(path, "must be one SQL expression (no clauses, aliases or ;)")
        return None
    expression: exp.Expr = statement.expressions[0]
    return expression


def _check_columns(ctx: _Context, path: str, expression: exp.Expr, table: TableInfo) -> bool:
    """Every column of the fragment is a real, visible column; unqualified ones are the
    definition's table's own."""
    inner_aliases = {
        str(t.alias_or_name).lower() for t in expression.find_all(exp.Table) if t.alias_or_name
    }
    ok = True
    for column in expression.find_all(exp.Column):
        if isinstance(column.this, exp.Star):
            continue
        qualifier = column.table
        if qualifier:
            if ctx.snapshot.table(qualifier) is None and qualifier.lower() in inner_aliases:
                continue  # an alias of the fragment's own subquery
            ok = ctx.column(path, qualifier, column.name) and ok
        elif not _inside_subquery(column, expression):
            ok = ctx.column(path, table.name, column.name) and ok
    return ok


def _is_condition(expression: exp.Expr, table: TableInfo, snapshot: SchemaSnapshot) -> bool:
    while isinstance(expression, exp.Paren):
        expression = expression.this
    if isinstance(expression, exp.Predicate | exp.Connector | exp.Not | exp.Boolean):
        return True
    if isinstance(expression, exp.Column):
        owner = snapshot.table(expression.table) if expression.table else table
        info = owner.column(expression.name) if owner is not None else None
        return info is not None and "bool" in info.type.lower()
    return False


def _guard_fragment(
    ctx: _Context, path: str, expression: exp.Expr, table: TableInfo, *, as_condition: bool
) -> None:
    source = exp.Table(
        this=exp.to_identifier(table.name, quoted=True),
        db=exp.to_identifier(table.schema_name, quoted=True) if table.schema_name else None,
    )
    query = (
        exp.select("1").from_(source).where(expression.copy())
        if as_condition
        else exp.select(expression.copy()).from_(source)
    )
    try:
        guard_sql(
            query.sql(dialect=ctx.dialect),
            snapshot=ctx.snapshot,
            dialect=ctx.dialect,
            row_cap=None,
            hidden=ctx.hidden,
        )
    except GuardRefused as exc:
        ctx.problems.add(path, exc.message, rule=exc.details.get("rule"))


def _check_measure_expression(ctx: _Context, path: str, text: str, table: TableInfo) -> None:
    expression = _parse_fragment(ctx, path, text)
    if expression is None or not _check_columns(ctx, path, expression, table):
        return
    if expression.find(exp.Window) is not None:
        ctx.problems.add(path, "a measure may not use window functions (OVER ...)")
        return
    if expression.find(exp.AggFunc) is None:
        ctx.problems.add(path, "must be an aggregate, e.g. SUM(table.column) or COUNT(*)")
        return
    loose = [
        c.sql(dialect=ctx.dialect)
        for c in expression.find_all(exp.Column)
        if not _inside_aggregate(c, expression) and not _inside_subquery(c, expression)
    ]
    if loose:
        ctx.problems.add(path, f"column(s) outside an aggregate: {', '.join(loose[:5])}")
        return
    _guard_fragment(ctx, path, expression, table, as_condition=False)


def _check_condition(ctx: _Context, path: str, text: str, table: TableInfo) -> None:
    expression = _parse_fragment(ctx, path, text)
    if expression is None or not _check_columns(ctx, path, expression, table):
        return
    if not _is_condition(expression, table, ctx.snapshot):
        ctx.problems.add(path, "must be a condition (true or false for each row)")
        return
    aggregates = [
        a for a in expression.find_all(exp.AggFunc) if not _inside_subquery(a, expression)
    ]
    if aggregates or expression.find(exp.Window) is not None:
        ctx.problems.add(path, "a row condition may not aggregate")
        return
    _guard_fragment(ctx, path, expression, table, as_condition=True)


def _check_qualified_column(ctx: _Context, path: str, reference: str) -> None:
    table_name, dot, column_name = reference.rpartition(".")
    if not dot or not table_name or not column_name:
        ctx.problems.add(path, "must be written table.column")
        return
    ctx.column(path, table_name.strip(), column_name.strip())


def validate_layer(layer: SemanticLayer, snapshot: SchemaSnapshot) -> None:
    """Raise `SemanticLayerInvalid` (422) naming every field that does not fit the snapshot."""
    problems = _Problems()
    _check_bounds(layer, problems)
    problems.raise_if_any()
    ctx = _Context(
        snapshot=snapshot,
        dialect=sqlglot_dialect(snapshot.db_type),
        hidden=hidden_items(layer),
        problems=problems,
    )
    _unique(problems, ((f"tables[{i}].name", t.name) for i, t in enumerate(layer.tables)), "table")
    for t, table in enumerate(layer.tables):
        path = f"tables[{t}]"
        info = snapshot.table(table.name)
        if info is None:
            problems.add(
                f"{path}.name", f"the table {table.name!r} is not in this connection's schema"
            )
            continue
        _unique(
            problems,
            ((f"{path}.columns[{c}].name", col.name) for c, col in enumerate(table.columns)),
            "column",
        )
        for c, column in enumerate(table.columns):
            if info.column(column.name) is None:
                problems.add(
                    f"{path}.columns[{c}].name",
                    f"the column {column.name!r} is not a column of the table {info.name!r}",
                )
        if table.time_column is not None:
            ctx.column(f"{path}.time_column", info.name, table.time_column)
    _unique(
        problems,
        [
            *((f"measures[{i}].name", m.name) for i, m in enumerate(layer.measures)),
            *((f"filters[{i}].name", f.name) for i, f in enumerate(layer.filters)),
        ],
        "measure or filter",
    )
    for i, measure in enumerate(layer.measures):
        path = f"measures[{i}]"
        source = ctx.table(f"{path}.table", measure.table)
        if source is None:
            continue
        _check_measure_expression(ctx, f"{path}.expression", measure.expression, source)
        if measure.filter is not None:
            _check_condition(ctx, f"{path}.filter", measure.filter, source)
        if measure.time_column is not None:
            _check_qualified_column(ctx, f"{path}.time_column", measure.time_column)
    for i, named_filter in enumerate(layer.filters):
        path = f"filters[{i}]"
        source = ctx.table(f"{path}.table", named_filter.table)
        if source is not None:
            _check_condition(ctx, f"{path}.condition", named_filter.condition, source)
    for i, join in enumerate(layer.joins):
        path = f"joins[{i}]"
        ctx.column(f"{path}.from_column", join.from_table, join.from_column)
        ctx.column(f"{path}.to_column", join.to_table, join.to_column)
    problems.raise_if_any()
