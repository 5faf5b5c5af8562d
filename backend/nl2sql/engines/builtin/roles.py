"""The roles a question gives one table's rows when another table refers to it twice.

"Trips from Leeds to York", "matches at home", "the seller of each sale": a table with two
keys to the same table (`origin_station_id`, `destination_station_id`) is joined by the key
whose role the question names. The join planner reads the role from the question's words
(`joinplan.related`); this module adds the roles that small words carry: "from" before a
name is where something starts, "to" before a name where it ends. Only a name (a capitalised
word, a quoted value or a number) after the preposition counts, so "from the list" or "how
to" give no role.
"""

from __future__ import annotations

import copy

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.joinplan import related
from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex, value_keys

PREPOSITION_ROLES = {"from": "origin", "to": "destination"}
"""A preposition before a name, and the role word (of `joinplan`'s role groups) it stands for."""


def role_words(tokens: list[Token]) -> frozenset[str]:
    """The role words the question's prepositions carry ("from Leeds": origin)."""
    out: set[str] = set()
    for k, tok in enumerate(tokens[:-1]):
        role = PREPOSITION_ROLES.get(tok.lemma) if tok.kind == "word" else None
        if role is None:
            continue
        nxt = tokens[k + 1]
        if nxt.kind == "quoted" or nxt.is_capitalised:
            out.add(role)
    return frozenset(out)


def one_row_for_two_roles(sql: str, dialect: str, index: SchemaIndex) -> int:
    """Tables of `sql` joined once to a table that refers to them in two ways, whose rows are
    both shown and picked by a value of the same column ("which stations do trips go to from
    Leeds": the stations shown are where trips end, the one named is where they start; read
    as one row, the answer only repeats the name asked about). Such a question needs the
    table once per role: the reading is not answered."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return 0
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return 0
    tables = [t.name.lower() for t in select.find_all(exp.Table)]
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in select.find_all(exp.Table)}

    def owner(col: exp.Column) -> str | None:
        if col.table:
            return aliases.get(col.table.lower())
        return tables[0] if len(set(tables)) == 1 else None

    shown = {
        (owner(c), c.name.lower())
        for e in select.expressions
        for c in e.find_all(exp.Column)
        if not e.find(exp.AggFunc)
    }
    where = select.args.get("where")
    picked: set[tuple[str | None, str]] = set()
    if where is not None:
        for node in where.find_all(exp.EQ, exp.In):
            if isinstance(node.this, exp.Column) and node.find(exp.Literal) is not None:
                picked.add((owner(node.this), node.this.name.lower()))
    count = 0
    for table, column in shown & picked:
        if table is None or tables.count(table) != 1:
            continue
        referrers = [
            other
            for other, _, _ in index.edges.get(table, [])
            if other.lower() in tables
            and sum(1 for o, _, _ in index.edges.get(table, []) if o.lower() == other.lower()) > 1
        ]
        if referrers and column:
            count += 1
    return count


def unclear_value_roles(intent: Intent, index: SchemaIndex) -> int:
    """Filters comparing a value with one of two columns of a table that refer to the same
    rows (`friendship.person`, `friendship.friend`; `match.home_team`, `match.away_team`)
    when the value is stored in both: which role the named row plays is the question's
    word order ("Bob's friends", "friends of Bob", "who has Bob as a friend"), not a word
    the engine can tie to one column. Counted, the reading is declined with itself offered."""
    count = 0
    for f in intent.filters:
        col = f.column
        if not isinstance(col, ColumnRef) or f.op not in ("=", "in"):
            continue
        target = index.referred_row(col)
        if target is None:
            continue
        values = [str(v) for v in f.values if isinstance(v, str)]
        holders = {c for v in values for key in value_keys(v) for c, _ in index.values.get(key, [])}
        twins = [
            other
            for other in holders
            if other.table == col.table and other != col and index.referred_row(other) == target
        ]
        if twins:
            count += 1
    return count


def _named_after(tokens: list[Token]) -> dict[str, str]:
    """Lower-case names written right after a role preposition, with the role ("from York to
    Hull Paragon": york -> origin, hull paragon -> destination)."""
    out: dict[str, str] = {}
    for k, tok in enumerate(tokens[:-1]):
        role = PREPOSITION_ROLES.get(tok.lemma) if tok.kind == "word" else None
        if role is None:
            continue
        nxt = tokens[k + 1]
        if nxt.kind == "quoted":
            out[nxt.text.lower()] = role
            continue
        words: list[str] = []
        for t in tokens[k + 1 :]:
            if not t.is_capitalised:
                break
            words.append(t.text)
        for n in range(len(words), 0, -1):
            out.setdefault(" ".join(words[:n]).lower(), role)
    return out


def role_keys(index: SchemaIndex, table: str) -> dict[str, ColumnRef]:
    """The keys of the one table that refers to `table` in two or more ways, by the
    preposition role their name carries (`origin_station_id` -> origin); empty when none or
    several tables do, or a role names no key or two."""
    referrers: dict[str, list[ColumnRef]] = {}
    for col in index.columns:
        target = index.referred_row(col) if col.table.lower() != table.lower() else None
        if target is not None and target[0].lower() == table.lower():
            referrers.setdefault(col.table.lower(), []).append(col)
    twice = [cols for cols in referrers.values() if len(cols) >= 2]
    if len(twice) != 1:
        return {}
    out: dict[str, ColumnRef] = {}
    for role in PREPOSITION_ROLES.values():
        keys = [k for k in twice[0] if any(related(role, w) for w in k.words)]
        if len(keys) != 1:
            return {}
        out[role] = keys[0]
    return out


def split_roles(intent: Intent, index: SchemaIndex, tokens: list[Token]) -> tuple[Intent, int]:
    """ "Trips from York to Hull Paragon": one filter on the stations' name holding both names
    becomes one filter per role, each read on the station its own key points to (the table
    joined once per role, under the role's alias). Returns the reading and the number of
    role joins it settles (0: unchanged)."""
    named = _named_after(tokens)
    if len(set(named.values())) < 2:
        return intent, 0
    for pos, f in enumerate(intent.filters):
        col = f.column
        if not isinstance(col, ColumnRef) or f.op not in ("=", "in"):
            continue
        values = [v for v in f.values if isinstance(v, str)]
        if len(values) != len(f.values) or len(values) < 2:
            continue
        roles = [named.get(v.lower()) for v in values]
        if None in roles or len(set(roles)) != len(roles):
            continue
        keys = role_keys(index, col.table)
        if not keys:
            continue
        variant = copy.deepcopy(intent)
        split = [
            Filter(Measure(col, via=keys[role]), "=", [value])
            for role, value in zip(roles, values, strict=True)
            if role is not None
        ]
        variant.filters[pos : pos + 1] = split
        return variant, len(split)
    return intent, 0
