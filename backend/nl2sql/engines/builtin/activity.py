""" "Active" said of rows whose table records activity two ways: a status value and an end date.

A table with a status column holding 'active' and a nullable date that ends a row's life
(`end_date`, `cancelled_at`) says who is active twice. Where the status also names an ended
state ('cancelled', 'expired', 'inactive'), it records the same life the end date does and the
two readings agree. Where it does not ('active', 'suspended', 'alumni'), nothing says the
rows that ended left the 'active' state, nor that the rows without an end are all active: the
reading `status = 'active'` is doubted (the engine declines) and both are offered as choices.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.lexicon import EVENT_WORDS, tokenise
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex
from backend.nl2sql.engines.builtin.month_text import table_of

_END_WORDS = EVENT_WORDS["lose"]
"""First words of the dates that end a row's life (`left_on`, `churned_at`, `end_date`)."""

_ENDED_STATES = frozenset(
    {*_END_WORDS, "expired", "inactive", "lapsed", "former", "retired", "resigned", "deleted",
     "archived", "closed", "cancelled", "canceled", "terminated", "ended", "churned", "left"}
)  # fmt: skip
"""Status values that say a row's life has ended."""


def _names_an_end(table: str, column: str, index: SchemaIndex) -> bool:
    """Whether the status column's sampled values name an ended state."""
    for info in index.snapshot.tables:
        if info.name.lower() != table:
            continue
        for col in info.columns:
            if col.name.lower() == column.lower():
                words = {w for v in col.sample_values or [] for w in str(v).lower().split()}
                return bool(words & _ENDED_STATES)
    return False


def end_date_of(table: str, index: SchemaIndex) -> ColumnRef | None:
    """The one nullable date of the table that ends a row's life, if it has exactly one."""
    ends = [
        c
        for c in index.columns_of.get(table.lower(), [])
        if c.kind == "date" and c.nullable and c.words and c.words[0] in _END_WORDS
    ]
    return ends[0] if len(ends) == 1 else None


def _status_tests(tree: exp.Expr, index: SchemaIndex) -> list[tuple[exp.EQ, ColumnRef]]:
    """`column = 'active'` conditions whose table also has one end date: (the condition, the
    end date)."""
    out: list[tuple[exp.EQ, ColumnRef]] = []
    for eq in tree.find_all(exp.EQ):
        column, value = eq.this, eq.expression
        if not isinstance(column, exp.Column):
            column, value = value, column
        if not isinstance(column, exp.Column) or not isinstance(value, exp.Literal):
            continue
        if not value.is_string or value.this.strip().lower() != "active":
            continue
        table = table_of(column, tree, index)
        end = end_date_of(table, index) if table is not None else None
        if end is not None and table is not None and not _names_an_end(table, column.name, index):
            out.append((eq, end))
    return out


def two_way_activity(tree: exp.Expr, question: str, index: SchemaIndex) -> int:
    """Conditions `status = 'active'` read from the word "active" on a table that also has an
    end date saying which rows are still active."""
    if "active" not in {t.lemma for t in tokenise(question) if t.kind == "word"}:
        return 0
    tested = {
        node.this.name.lower()
        for node in tree.find_all(exp.Is)
        if isinstance(node.this, exp.Column) and isinstance(node.expression, exp.Null)
    }  # the end date is read too (a layer's "active" filter): both ways agree in the query
    return sum(1 for _, end in _status_tests(tree, index) if end.name.lower() not in tested)


def end_date_variant(sql: str, dialect: str, index: SchemaIndex) -> str | None:
    """The query with each such status condition read by the end date instead (`IS NULL`)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    tests = _status_tests(tree, index)
    if not tests:
        return None
    for eq, end in tests:
        column = eq.this if isinstance(eq.this, exp.Column) else eq.expression
        qualifier = column.table if isinstance(column, exp.Column) else ""
        eq.replace(
            exp.Is(this=exp.column(end.name, table=qualifier or None), expression=exp.Null())
        )
    return tree.sql(dialect=dialect)
