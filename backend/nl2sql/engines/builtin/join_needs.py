"""Which tables an answer really needs joined: the smallest tree over the tables whose columns
the reading uses, leaving out a table the question names only by a word that another table of
the tree already stands for.

"How many faculty members participate in an activity" names `participates_in` (students'
activities) by "participate", but the tree joining faculty to activities already passes through
`faculty_participates_in`, which that word names too: joining the students' table as well would
only restrict the answer to activities some student takes part in. "Apartments with bookings
with status code Confirmed" names `view_unit_status` by "status", a word the filtered column
`booking_status_code` already stands for. A table named by a word nothing else in the tree
explains ("students who have a pet": `has_pet`) stays: it says which rows are asked about.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.joinplan import Step, related
from backend.nl2sql.engines.builtin.lexicon import STOP_WORDS
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex


def used_columns(intent: Intent) -> list[ColumnRef]:
    """The columns the reading shows, groups, orders, filters or adds up."""
    measures: list[Measure] = [
        *intent.select,
        *intent.group_by,
        *intent.partition_by,
        *(m for m, _ in intent.order_by),
    ]
    out: list[ColumnRef] = []

    def add_filter(f: Filter) -> None:
        if isinstance(f.column, Measure):
            measures.append(f.column)
        else:
            out.append(f.column)

    for f in [*intent.filters, *intent.having, *(f for a in intent.anti_joins for f in a.filters)]:
        add_filter(f)
    for m in measures:
        for col in (m.column, m.via, m.since):
            if col is not None:
                out.append(col)
        for f in m.condition:
            add_filter(f)
    return out


def loose_tables(intent: Intent) -> list[str]:
    """Tables joined only because the question names them (no column of theirs is read)."""
    read = {c.table.lower() for c in used_columns(intent)}
    read |= {m.count_table.lower() for m in [*intent.select, *(m for m, _ in intent.order_by)]
             if m.count_table}  # fmt: skip
    read |= {t.lower() for c in intent.conditions for t in c.tables}
    read |= {t.lower() for m in intent.select for t in m.sql_tables}
    read.add(intent.table.lower())
    return [t for t in intent.extra_tables if t.lower() not in read]


def _naming_words(index: SchemaIndex, table: str, words: frozenset[str]) -> list[set[str]]:
    """For each word of the table's name the question names, the question's words naming it."""
    out = []
    for w in index.table(table).words:
        if w in STOP_WORDS:
            continue
        said = {q for q in words if related(q, w)}
        if said:
            out.append(said)
    return out


def explained_elsewhere(
    index: SchemaIndex,
    table: str,
    words: frozenset[str],
    tree: Iterable[str],
    columns: Iterable[ColumnRef],
) -> bool:
    """Whether every word by which the question names `table` names a table of `tree` (the
    tables joined without it) or a column the reading uses of another table just as well."""
    naming = _naming_words(index, table, words)
    if not naming:
        return False  # pointed at by a synonym: nothing else stands for it
    others: set[str] = set()
    for t in tree:
        if t.lower() != table.lower():
            others.update(index.table(t).words)
    refers = {
        (other.lower(), theirs.lower()) for other, _, theirs in index.edges.get(table.lower(), [])
    }  # the keys that refer to `table` stand for it, they do not explain it away
    for col in columns:
        if col.table.lower() != table.lower() and (
            (col.table.lower(), col.name.lower()) not in refers
        ):
            others.update(col.words)
    others -= STOP_WORDS
    return all(any(related(q, w) for q in said for w in others) for said in naming)


def without_redundant_tables(
    intent: Intent,
    index: SchemaIndex,
    needed: list[str],
    plan: Callable[[str, list[str]], list[Step]],
) -> tuple[list[str], list[Step]]:
    """(the tables to join, the joins) once each loose table whose naming words the rest of
    the tree explains is left out. `needed` starts with the intent's table; `plan` plans the
    joins from a table to a list of tables."""
    joins = plan(needed[0], needed[1:])
    loose = {t.lower() for t in loose_tables(intent)}
    if not loose:
        return needed, joins
    columns = used_columns(intent)
    beside = {
        s[k] for a in intent.anti_joins if a.exists
        for s in index.join_path(intent.table, a.table) or [] for k in (0, 2)
    }  # fmt: skip # the tables a "both X and Y" semi-join passes through
    for table in [t for t in needed[1:] if t.lower() in loose]:
        rest = [t for t in needed if t.lower() != table.lower()]
        try:
            fewer = plan(rest[0], rest[1:])
        except QuestionNotUnderstood:
            continue
        tree = {rest[0], *(s[0] for s in fewer), *(s[2] for s in fewer)} | beside
        if table.lower() in {t.lower() for t in tree}:
            continue  # on the way anyway
        near = [c for t in tree for c in index.columns_of.get(t.lower(), [])]
        if explained_elsewhere(index, table, intent.words, tree, [*columns, *near]):
            needed, joins = rest, fewer
    return needed, joins
