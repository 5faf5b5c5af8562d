"""The data's own "today": what relative time ("last month", "this year", "in the last 90
days", "created more than three years ago") counts from when the semantic layer gives no
`today`.

A database is often a copy whose rows end some time before the clock (an export, a snapshot, a
demo); counted from the clock, "last month" would then be an empty month. So, without the
layer's `today`, the day counted from is the latest day recorded in the table whose date the
period applies to: the greatest value of its dates that record what has happened (when a row
was created, opened, paid, ended), leaving out the dates named for days that may lie ahead (a
due date, an expiry, a renewal). On a database that is written to every day this is today;
on a copy it is the copy's last day. The explanation says which table's last day was used.

The calendar periods are then counted from that day the same way as from the layer's `today`
(`fiscal.previous_period` for the period a day falls in, `fiscal`'s "last / this quarter"):
the whole previous calendar month, quarter or year, or the current one from its first day.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.intents import Intent
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

AHEAD_WORDS = frozenset(
    {"due", "expiry", "expires", "expire", "expiration", "deadline", "scheduled", "planned",
     "next", "renewal", "renews", "renew", "until", "valid", "target", "estimated", "expected",
     "eta", "forecast", "future"}
)  # fmt: skip
"""Words of a date column's name that mark a day which may still lie ahead."""


def recorded_dates(index: SchemaIndex, table: str) -> list[ColumnRef]:
    """The table's date columns that record what has happened (see the module's text)."""
    return [
        c
        for c in index.columns_of.get(table.lower(), [])
        if c.kind == "date" and c.words and not set(c.words) & AHEAD_WORDS
    ]


RELATIVE_OPS = frozenset({"recent", "not recent", "this", "previous"})
"""Filters whose bounds count from today."""


def today_note(intent: Intent) -> str | None:
    """The explanation's words for the day relative time counted from, when it was the data's
    own last day (no layer `today`, no other anchor)."""
    if intent.today is not None:
        return None
    tables = [
        f.column.table
        for f in intent.filters
        if f.op in RELATIVE_OPS and f.anchor is None and isinstance(f.column, ColumnRef)
    ]
    if not tables:
        return None
    names = " and ".join(dict.fromkeys(tables))
    return (
        f"counting time back from the latest day recorded in {names}"
        " (the data's last day, standing for today)"
    )
