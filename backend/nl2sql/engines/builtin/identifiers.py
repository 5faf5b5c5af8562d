"""Words for a row's identifier: "the employee number of Omar Larsen", "the order number of
the last delivery", "what's the booking no. for ...". "<a table's noun> number" is that row's
number, its key or a column named as its number, not a count ("the number of employees") and
not some other column that merely holds a number (a phone number, a seat count)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.joinplan import stem
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

NUMBER_TAILS = frozenset({"number", "no", "num", "nr", "id", "code"})
"""Last words of a column name that make it an identifier."""


def identifier_column(index: SchemaIndex, table: str, word: str) -> ColumnRef | None:
    """The column holding the number `word` names for a row of `table` ("employee" for
    `staff`): a column named `<word or the table's noun>_number` (or `_no`, `_id`, `_code`),
    else the table's one-column primary key. None when neither is there or several fit."""
    own = {stem(word), *(stem(w) for w in index.table(table).words)}
    named = [
        c
        for c in index.columns_of.get(table.lower(), [])
        if len(c.words) >= 2 and c.words[-1] in NUMBER_TAILS and stem(c.words[-2]) in own
    ]
    by_number = [c for c in named if c.words[-1] != "id"]
    if len(by_number) == 1:
        return by_number[0]  # `invoice_number` before `invoice_id`
    if len(named) == 1:
        return named[0]
    key = index.table(table).primary_key
    return key if key is not None and not named else None
