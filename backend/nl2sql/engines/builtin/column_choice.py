"""Whether each column a reading uses is read from a table the question justifies.

A column's table is justified when the question names it (all the words of its name, or it is
the subject the reading counts or lists), when the question says the column's own words, when
a value the question gives is stored in that column, or when another column of the reading
already needs the table. A column that is none of these was taken from a joined table because
one of its words loosely matched ("the date of the account opened" read as
`invoices.invoice_date`, two joins away): the reading prefers the named table's column of the
same name, and otherwise the confidence counts it as an unjustified column (a decline with the
reading offered as a suggestion rather than a wrong answer shown as right).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlglot import exp

from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.joinplan import related, with_columns_swapped
from backend.nl2sql.engines.builtin.lexicon import (
    ABBREVIATIONS,
    PERSON_IN_CHARGE,
    STOP_WORDS,
    SYNONYMS,
)
from backend.nl2sql.engines.builtin.linking import (
    GENERIC_WORDS,
    ColumnRef,
    SchemaIndex,
    in_charge,
    same_word,
    value_keys,
)
from backend.nl2sql.engines.builtin.reading import same_measure

_PLAIN = GENERIC_WORDS | STOP_WORDS | {"id", "no", "num", "key", "fk"}


@dataclass(frozen=True, slots=True)
class Use:
    """A column of the reading and where it is used (`shown`, `grouped`, `ordered`,
    `filtered`), with the literals it is compared with (for a filter)."""

    column: ColumnRef
    role: str
    values: tuple[str, ...] = ()


def uses(intent: Intent) -> list[Use]:
    """The plain columns the reading shows, groups, orders and filters by (aggregated columns
    included, a key read through another row's reference left out)."""
    out: list[Use] = []
    for role, measures in (
        ("shown", intent.select),
        ("grouped", intent.group_by),
        ("ordered", [m for m, _ in intent.order_by]),
    ):
        for m in measures:
            if m.column is not None and m.via is None and m.sql is None:
                out.append(Use(m.column, role))
    for f in intent.filters:
        col = f.column.column if isinstance(f.column, Measure) else f.column
        if col is None or (isinstance(f.column, Measure) and f.column.via is not None):
            continue
        out.append(Use(col, "filtered", tuple(str(v) for v in f.values if isinstance(v, str))))
    return out


def _words(words: tuple[str, ...]) -> list[str]:
    """A name's words with abbreviations spelt out (`emp_fname` -> employee, first, name)."""
    out: list[str] = []
    for w in words:
        out.extend(ABBREVIATIONS.get(w, w).split())
    return out


@lru_cache(maxsize=16384)  # a pure function of two hashable values, asked again and again
def _said(word: str, question: frozenset[str]) -> bool:
    """Whether the question says `word`: itself, another inflection, a word of the same role
    or stem, or the first general synonym the lexicon gives it ("revenue" for `amount`; the
    looser ones, "revenue" for `price`, do not justify a table the question does not name)."""
    return any(
        related(q, word) or same_word(q, word) or word in SYNONYMS.get(q, ())[:1] for q in question
    )


def table_named(index: SchemaIndex, table: str, question: frozenset[str]) -> bool:
    """Whether the question says every word of the table's name, or of a synonym the semantic
    layer gives it."""
    for phrase, tables in index.table_synonyms.items():
        if any(t.name.lower() == table.lower() for t in tables) and all(
            _said(w, question) for w in phrase if w not in STOP_WORDS
        ):
            return True
    words = [w for w in _words(index.table(table).words) if w not in STOP_WORDS]
    return bool(words) and all(_said(w, question) for w in words)


def column_said(index: SchemaIndex, col: ColumnRef, question: frozenset[str]) -> bool:
    """Whether the question says the column's own words (those beyond its table's name and
    plain words such as `id`, `name`, `date`): `bikes_available`, `salary`, `milliseconds`."""
    for phrase, cols in index.column_synonyms.items():
        if col in cols and all(_said(w, question) for w in phrase if w not in STOP_WORDS):
            return True  # the semantic layer's word for the column
    whole = [w for w in _words(col.words) if w not in STOP_WORDS]
    if whole and all(_said(w, question) for w in whole):
        return True  # "each order id": `order_items.order_id`
    table_words = set(_words(index.table(col.table).words))
    own = [w for w in _words(col.words) if w not in _PLAIN and w not in table_words]
    joined = "".join(col.words)
    if joined in question or any(
        joined.startswith(q) and joined[len(q) :] in question | _PLAIN for q in question
    ):
        return True  # `class_room` for "classrooms", `Lastname` for "last name"
    return any(_said(w, question) for w in own)


def value_stored(index: SchemaIndex, col: ColumnRef, values: tuple[str, ...]) -> bool:
    """Whether every value the column is compared with is among its stored values."""
    if not values:
        return False
    for text in values:
        holders = {c for key in value_keys(text.strip("%")) for c, _ in index.values.get(key, [])}
        if col not in holders:
            return False
    return True


def _referred_by_role(
    index: SchemaIndex, table: str, justified: set[str], words: frozenset[str]
) -> bool:
    """Whether a justified table refers to `table` by a key whose role the question says
    ("each account manager": `accounts.account_manager_id` -> `staff`)."""
    for source in justified:
        for other, own, _ in index.edges.get(source, []):
            if other.lower() != table.lower():
                continue
            key = index.column(source, own)
            if key is None:
                continue
            if column_said(index, key, words) or _in_charge_said(index, key, words):
                return True
    return False


def _in_charge_said(index: SchemaIndex, key: ColumnRef, words: frozenset[str]) -> bool:
    """ "each rep": a word for the person looking after a row says the key naming that
    person (`accounts.account_manager_id`), as linking reads it."""
    return bool(words & PERSON_IN_CHARGE) and in_charge(index, key)


def justified_tables(intent: Intent, index: SchemaIndex) -> set[str]:
    """Lower-case names of the tables the reading may read columns from without a word of
    the column's own: the subject, the tables it names in full, the tables it counts, those
    named with no role of their own, and the tables of the semantic layer's measures."""
    out = {intent.table.lower(), *(t.lower() for t in intent.extra_tables)}
    out |= {m.count_table.lower() for m in intent.select if m.count_table}
    out |= {t.lower() for m in intent.select for t in m.sql_tables}
    out |= {c.lower() for cond in intent.conditions for c in cond.tables}
    out |= {a.table.lower() for a in intent.anti_joins}
    for name in index.tables:
        if table_named(index, name, intent.words):
            out.add(name)
        elif name in intent.preferred_tables and not _partly_named(index, name, intent.words):
            out.add(name)  # linked by a synonym ("performer" for `band`)
    for name in index.tables:
        if name not in out and _referred_by_role(index, name, set(out), intent.words):
            out.add(name)
    return out


def _partly_named(index: SchemaIndex, table: str, question: frozenset[str]) -> bool:
    words = [w for w in _words(index.table(table).words) if w not in STOP_WORDS]
    return any(_said(w, question) for w in words)


def unjustified(intent: Intent, index: SchemaIndex) -> list[ColumnRef]:
    """Columns of the reading taken from a table nothing in the question justifies."""
    justified = justified_tables(intent, index)
    found: list[ColumnRef] = []
    all_uses = uses(intent)
    for use in all_uses:
        col = use.column
        if col.table.lower() in justified or col in found:
            continue
        if column_said(index, col, intent.words) or value_stored(index, col, use.values):
            continue
        if col in index.label_columns(col.table):
            continue  # the name a row is shown by ("who performed": the performer's name)
        # another column of the same table that the question does justify needs the join
        if any(
            u.column.table == col.table
            and u.column != col
            and (
                column_said(index, u.column, intent.words)
                or value_stored(index, u.column, u.values)
            )
            for u in all_uses
        ):
            continue
        found.append(col)
    return found


def prefer_named_columns(intent: Intent, index: SchemaIndex) -> Intent:
    """The reading with each unjustified column replaced by the one column of a justified
    table that the same words fit: the same name, or the same plain word and kind ("the
    dates of registration of all passengers": `passengers.date_registered`, not
    `trips.trip_date` two joins away). A replacement the reading already shows is not shown
    twice. Unchanged when no justified table has exactly one such column."""
    justified = justified_tables(intent, index)
    swaps: dict[ColumnRef, ColumnRef] = {}
    for col in unjustified(intent, index):
        plain = set(col.words) & GENERIC_WORDS
        same = [
            other
            for table in sorted(justified)
            if table in index.tables
            for other in index.columns_of[table]
            if other.name.lower() == col.name.lower()
            or (plain and other.kind == col.kind and plain <= set(other.words))
        ]
        if len(same) == 1:
            swaps[col] = same[0]
    if not swaps:
        return intent
    variant = with_columns_swapped(intent, swaps)
    shown: list[Measure] = []
    for m in variant.select:
        if not any(same_measure(m, k) for k in shown):
            shown.append(m)
    variant.select = shown
    return variant


def echoed_values(tree: exp.Expr) -> bool:
    """Whether the answer only shows the columns its WHERE sets equal to values the question
    gave ("where is the history department?" read as the name of the department named
    History): every row would repeat the question's own words, so the column meant was
    another one."""
    if not isinstance(tree, exp.Select):
        return False
    shown: list[tuple[str, str]] = []
    for e in tree.expressions:
        column = e.unalias()
        if not isinstance(column, exp.Column) or isinstance(column.this, exp.Star):
            return False
        shown.append((column.table.lower(), column.name.lower()))
    where = tree.args.get("where")
    if not shown or where is None:
        return False
    picked = {
        (node.this.table.lower(), node.this.name.lower())
        for node in where.find_all(exp.EQ)
        if isinstance(node.this, exp.Column)
        and isinstance(node.expression, exp.Literal)
        and node.find_ancestor(exp.Select) is tree
    }
    names = {name for _, name in picked}
    # a layer's condition names its column with the table (`pupils.opt_in`), the single
    # table's shown column does not: the same column
    return all(s in picked or (not s[0] and s[1] in names) for s in shown)
