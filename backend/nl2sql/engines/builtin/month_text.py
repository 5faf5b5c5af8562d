"""Months stored as text ('2024-03'): read as the month's first day wherever a date is needed.

A column whose sampled values are all ISO months is linked as a date (`linking._column_kind`),
so "in 2024", "per year" or "in the last year" find it. But the month text itself is no date:
`'2024-01' >= '2024-01-01'` is false in a text comparison, and SQLite's `STRFTIME('%Y',
'2024-03')` is NULL. Here the rendered query is rewritten so that, where the column is compared
with a date or handed to a date function, it reads `column || '-01'` (cast to a date outside
SQLite where a function needs one): the first day of the month. Where the column is shown,
grouped, ordered or compared with another month text it stays as stored.
"""

from __future__ import annotations

import re

from sqlglot import exp

from backend.nl2sql.engines.builtin.linking import ISO_MONTH, SchemaIndex

_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)

_DATE_FUNCTIONS = (
    exp.TimeToStr,
    exp.Extract,
    exp.DateTrunc,
    exp.TimestampTrunc,
    exp.DateAdd,
    exp.DateSub,
    exp.DateDiff,
    exp.Year,
    exp.Month,
)
_SQLITE_DATE_FUNCTIONS = frozenset({"STRFTIME", "DATE", "DATETIME", "JULIANDAY", "UNIXEPOCH"})


def month_text_columns(index: SchemaIndex) -> set[tuple[str, str]]:
    """(table, column), lower case, of the text columns whose samples are all ISO months."""
    out: set[tuple[str, str]] = set()
    for table in index.snapshot.tables:
        for col in table.columns:
            samples = col.sample_values or []
            if samples and all(ISO_MONTH.fullmatch(str(v)) for v in samples):
                out.add((table.name.lower(), col.name.lower()))
    return out


def _is_date_literal(node: exp.Expr) -> bool:
    return isinstance(node, exp.Literal) and node.is_string and bool(_ISO_DAY.match(node.this))


def _is_date_expression(node: exp.Expr) -> bool:
    """A computed date: a date function, an interval added, a cast to a date."""
    return any(
        isinstance(sub, exp.Interval | exp.CurrentDate | exp.CurrentTimestamp) or _makes_a_date(sub)
        for sub in node.walk()
    )


def _makes_a_date(node: exp.Expr) -> bool:
    """A date function (SQLite's by name), or a cast to a date or time type."""
    if isinstance(node, _DATE_FUNCTIONS):
        return True
    if isinstance(node, exp.Anonymous) and node.name.upper() in _SQLITE_DATE_FUNCTIONS:
        return True
    return isinstance(node, exp.Cast) and node.to.is_type(*exp.DataType.TEMPORAL_TYPES)


def _in_date_context(column: exp.Column) -> bool:
    """Whether the column is compared with a date or read by a date function (directly, or
    through the MIN/MAX a date function or comparison reads)."""
    node: exp.Expr = column
    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select):
        if _makes_a_date(parent):
            return True
        if isinstance(parent, _COMPARISONS):
            return any(
                _is_date_literal(other) or _is_date_expression(other)
                for other in parent.args.values()
                if isinstance(other, exp.Expr) and other is not node
            )
        if not isinstance(parent, exp.Max | exp.Min | exp.Paren | exp.Alias):
            return False
        node, parent = parent, parent.parent
    if isinstance(parent, exp.Select) and node is not column:
        # MAX(month) of a subquery whose result a date function or comparison reads
        outer = parent.parent
        if isinstance(outer, exp.Subquery):
            return _subquery_in_date_context(outer)
    return False


def _subquery_in_date_context(subquery: exp.Subquery) -> bool:
    parent = subquery.parent
    if isinstance(parent, exp.Anonymous) and parent.name.upper() in _SQLITE_DATE_FUNCTIONS:
        return True
    return isinstance(parent, (*_DATE_FUNCTIONS, *_COMPARISONS))


def table_of(column: exp.Column, tree: exp.Expr, index: SchemaIndex) -> str | None:
    """The table (lower case) a column of the query reads: its qualifier's, or the one table
    of its SELECT that has a column so named."""
    select = column.find_ancestor(exp.Select)
    if column.table:
        for table in tree.find_all(exp.Table):
            if table.alias_or_name.lower() == column.table.lower():
                return table.name.lower()
        return None
    if select is None:
        return None
    for table in select.find_all(exp.Table):
        if table.find_ancestor(exp.Select) is not select:
            continue
        names = {c.name.lower() for c in index.columns_of.get(table.name.lower(), [])}
        if column.name.lower() in names:
            return table.name.lower()
    return None


def as_first_days(tree: exp.Expr, index: SchemaIndex, dialect: str) -> exp.Expr:
    """The query with each month-text column read as its month's first day where a date is
    needed (see the module's text). Changes `tree` in place and returns it."""
    months = month_text_columns(index)
    if not months:
        return tree
    for column in list(tree.find_all(exp.Column)):
        table = table_of(column, tree, index)
        if table is None or (table, column.name.lower()) not in months:
            continue
        if not _in_date_context(column):
            continue
        first_day: exp.Expr = exp.Paren(
            this=exp.DPipe(this=column.copy(), expression=exp.Literal.string("-01"))
        )
        compared_with_text = isinstance(column.parent, _COMPARISONS) and any(
            _is_date_literal(v) for v in column.parent.args.values() if isinstance(v, exp.Expr)
        )
        if dialect != "sqlite" and not compared_with_text:
            first_day = exp.Cast(this=first_day, to=exp.DataType.build("DATE"))
        column.replace(first_day)
    return tree
