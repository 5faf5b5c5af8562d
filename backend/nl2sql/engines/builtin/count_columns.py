"""A count the rows already hold: "the total number of rooms" over `apartments.room_count`.

When the noun after "how many" / "number of" links to a numeric column whose name says it is
a count (`room_count`, `num_staff`, `number_of_beds`; never an identifier
such as `room_number`), the rows store the number the
question asks for: counting rows would answer another question (how many apartments). Two
readings are clear from the words around it:

* a total over the rows ("the total number of rooms of the apartments in ...", "how many rooms
  in total are there in ..."): the SUM of the column;
* the figure of each row ("the number of rooms for each apartment", the column's own table
  named after "for each"/"of each"): the column itself, one value a row.

Anything else ("how many rooms are there", which may ask for rows of a rooms table or the
sum) is left to the other readings and their confidence.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, Mention

_COUNT_LAST = frozenset({"count", "cnt"})
"""Last words of a column's name that say it holds a count (`room_count`)."""
_COUNT_FIRST = frozenset({"num", "number", "no", "total"})
"""First words that do (`num_staff`, `number_of_beds`); a name ending in one of them is an
identifier (`room_number`, `emp_num`), never a count."""
_TOTAL_AFTER = (("in", "total"), ("altogether",), ("combined",), ("overall",), ("all", "together"))
_EACH = frozenset({"each", "every", "per"})


def _count_column(m: Mention) -> ColumnRef | None:
    if m.kind != "column" or len({(c.table, c.name) for c in m.columns}) != 1:
        return None
    col = m.columns[0]
    if col.kind != "numeric" or col.is_primary_key:
        return None
    words = col.words
    if not words or words[-1] in _COUNT_FIRST:
        return None  # `invoice_number`, `emp_num`, `number`: an identifier
    counts = words[-1] in _COUNT_LAST or (len(words) >= 2 and words[0] in _COUNT_FIRST)
    return col if counts else None


def _words(tokens: list[Token], start: int, end: int) -> tuple[str, ...]:
    return tuple(t.lemma for t in tokens[start:end])


def read_count_columns(
    tokens: list[Token], cues: list[Cue], mentions: list[Mention]
) -> tuple[list[Cue], set[int], list[str]]:
    """(the cues with each count of a count column read as the sum or the column, tokens the
    reading spent, notes for the explanation); see the module's note."""
    out = list(cues)
    spent: set[int] = set()
    notes: list[str] = []
    for cue in cues:
        if cue.kind != "count" or cue.payload:
            continue
        m = next((m for m in mentions if m.start == cue.end), None)
        col = _count_column(m) if m is not None else None
        if m is None or col is None:
            continue
        after = m.end
        total_after = next(
            (w for w in _TOTAL_AFTER if _words(tokens, after, after + len(w)) == w), None
        )
        sum_cue = next(
            (c for c in out if c.kind == "agg" and c.start >= after and c.start - after <= 1),
            None,
        )
        if "total" in _words(tokens, cue.start, cue.end) or total_after is not None:
            out = [c for c in out if c is not cue and c is not sum_cue]
            out.append(Cue("agg", cue.start, cue.end, "SUM"))
            if total_after is not None:
                spent.update(range(after, after + len(total_after)))
            notes.append(f"the number of {m.text} is the total of {col.table}.{col.name}")
            continue
        lead = _words(tokens, after, after + 2)
        table_after = next(
            (o for o in mentions if o.start == after + 2 and o.kind == "table"), None
        )
        if (
            len(lead) == 2
            and lead[0] in ("for", "of", "in")
            and lead[1] in _EACH
            and table_after is not None
            and any(t.name.lower() == col.table.lower() for t in table_after.tables)
        ):
            out = [c for c in out if c is not cue and not (c.kind == "group" and c.start == after)]
            spent.update(range(cue.start, cue.end))
            spent.update(range(after, table_after.end))
            notes.append(f"the number of {m.text} of each row is {col.table}.{col.name}")
    return sorted(out, key=lambda c: c.start), spent, notes
