"""The platform's row cap taken back out of an answer's SQL.

An ask's SQL is shown and recorded with the row cap the platform adds (`LIMIT <cap>`, and
`LIMIT <cap + 1>` as executed, one row more to tell a truncated result). The answer a user
rated is the query itself, not its first screenful: a golden question or a verified example
made from it keeps the question's own LIMIT ("top 5") and drops the cap, or a later run of the
same query over all its rows would be judged against a truncated gold."""

from __future__ import annotations

from functools import lru_cache

import sqlglot
from sqlalchemy.orm import Session
from sqlglot import exp

from backend.admin.config_keys import get_config_value
from backend.nl2sql.guard import sqlglot_dialect

WITHOUT_ROW_CAP_CACHE_ENTRIES = 2048
"""Answers' SQL this process keeps with the cap taken out (an LLM ask's few-shot examples are
mostly the same earlier answers from one ask to the next: each was parsed on every ask)."""

WITHOUT_ROW_CAP_CACHED_CHARS = 8192
"""Longest SQL kept in that cache (a longer one is parsed each time), so that the cache holds
at most a few tens of MB whatever SQL was recorded."""


def without_row_cap(sql: str, *, dialect: str, row_cap: int) -> str:
    """`sql` without a top-level `LIMIT` of `row_cap` or `row_cap + 1` (no OFFSET); anything
    else, or SQL that does not parse as one statement, is returned unchanged."""
    if str(row_cap) not in sql and str(row_cap + 1) not in sql:
        # No literal of the cap anywhere in the text: no parse needed to know it has none.
        return sql
    if len(sql) > WITHOUT_ROW_CAP_CACHED_CHARS:
        return _strip_row_cap(sql, dialect, row_cap)
    return _cached_without_row_cap(sql, dialect, row_cap)


def _strip_row_cap(sql: str, dialect: str, row_cap: int) -> str:
    try:
        statements = sqlglot.parse(sql, read=sqlglot_dialect(dialect))
    except sqlglot.errors.SqlglotError:
        return sql
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        return sql
    query = statements[0]
    limit = query.args.get("limit")
    if not isinstance(limit, exp.Limit) or query.args.get("offset") is not None:
        return sql
    value = limit.expression
    if not isinstance(value, exp.Literal) or not value.is_int:
        return sql
    if int(value.this) not in (row_cap, row_cap + 1):
        return sql
    query.set("limit", None)
    return query.sql(dialect=sqlglot_dialect(dialect))


_cached_without_row_cap = lru_cache(maxsize=WITHOUT_ROW_CAP_CACHE_ENTRIES)(_strip_row_cap)


def answer_query(session: Session, sql: str, *, dialect: str) -> str:
    """An answer's SQL as the query it stands for: without the platform's current row cap."""
    row_cap = max(1, min(100_000, int(get_config_value(session, "query.row_cap"))))
    return without_row_cap(sql, dialect=dialect, row_cap=row_cap)
