"""Doubts read from the rendered SQL beside the question: shapes that answer something other
than what was asked, whatever words the reading linked.

* `lost_disjunction`: the question joins two conditions with "or", the query requires both
  ("movies made before 1980 or directed by James Cameron" read as `year < 1980 AND director =
  ...`). `either_variant` renders the query with the conditions joined by OR, the alternative
  offered when the engine declines.
* `empty_ranges`: a column bounded from below above where it is bounded from above (`year < 2000
  AND year > 2010`): no row can pass, the answer is always empty.
* `split_counts`: a count of one table's rows grouped, beside another table's columns, by the
  counted rows' own columns ("the name of each room and the number of its reservations" grouped
  by the guests' names too): every group is one counted row, the count is 1 throughout.
* `counted_superlatives`: "the highest rated wine", "the largest payment" ranked by how many
  rows share a value (`GROUP BY name ORDER BY COUNT(*)`): the superlative sizes one value.
* `summed_non_additive`: a SUM of ages, years, rates or scores, or of a column that already
  holds a minimum or an average (`SUM(min_salary)`): no question means such a total.
* `uncounted_thresholds`: "reviewers who rated 3 or more movies", "directors who made exactly
  one movie": a bound on how many rows of a table, read with no count at all (a bound on a
  column, or dropped).
* `ranked_attributes`: "the country of the artist who made the fewest songs" ranked by
  country (`GROUP BY artist.country ORDER BY COUNT(...)`): the question ranks artists, the
  query ranks countries.
* `shown_flags`: a yes/no column shown beside the answer ("the primary contact and their
  email" showing `is_primary`, "scholarship students" showing `on_scholarship`): the question
  used the flag to pick rows, the query shows it instead.
* `lost_contains`: the question asks for a part of a text ("'senior' in their titles", "the
  word 'you'", "the substring 'ee'") and the query matches no pattern.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.cues import (
    EXTREME_PREFIXES,
    FREQUENCY_SUPERLATIVES,
    NON_ADDITIVE_WORDS,
    QUANTITY_NOUNS,
    YES_NO_VALUES,
    is_superlative,
)
from backend.nl2sql.engines.builtin.lexicon import NUMBER_WORDS, lemmatise, split_identifier
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

_OR = re.compile(r"\bor\b", re.IGNORECASE)
_NOT_A_CHOICE = re.compile(
    r"\bor\s+(?:(?:more|less|fewer|greater|higher|lower)\b(?!\s+than\b)|(?:above|below|over|under|equal|not)\b)"
    r"|\bor\s+(?:later|earlier|after|before)\b(?!\s+(?:the\s+)?(?:year\s+(?:of\s+)?)?\d)"
    # "3 or more", "2010 or later": one bound, not two conditions ("or more than 1 hold" is
    # a second one)
    r"|\b(?:he|his|him)\s+or\s+(?:she|her)\b"  # "his or her"
    r"|\(\s*or\b"  # "altitude (or elevation)": another word for the same column
    r"|\bwhether\b",
    re.IGNORECASE,
)


def _select(tree: exp.Expr) -> exp.Select | None:
    return tree if isinstance(tree, exp.Select) else tree.find(exp.Select)


def _conjuncts(where: exp.Expr) -> list[exp.Expr]:
    """The conditions of a WHERE clause ANDed at its top."""
    node = where.this if isinstance(where, exp.Where) else where
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    if isinstance(node, exp.Paren):
        return _conjuncts(node.this)
    return [node]


def _kept_conditions(select: exp.Select) -> list[exp.Expr]:
    """The top WHERE conditions that say which rows (not `x IS NOT NULL` guards the renderer
    adds to a join or an anti-join)."""
    where = select.args.get("where")
    if where is None:
        return []
    return [
        c
        for c in _conjuncts(where)
        if not (isinstance(c, exp.Not) and isinstance(c.this, exp.Is)) and not isinstance(c, exp.Is)
    ]


def lost_disjunction(tree: exp.Expr, question: str) -> bool:
    """An "or" between two conditions of the question, read as both conditions at once: the
    query has no OR, no IN list and no union, and its WHERE and HAVING together require two or
    more conditions ("more than 8 pit stops or more than 5 results" as two HAVING bounds)."""
    if not _OR.search(_NOT_A_CHOICE.sub(" ", question)):
        return False
    if any(tree.find_all(exp.Or, exp.Union)):
        return False
    if any(len(i.expressions) > 1 for i in tree.find_all(exp.In)):
        return False  # "Latin or Pop": one column, either value
    select = _select(tree)
    if select is None:
        return False
    having = select.args.get("having")
    bounds = len(_conjuncts(having.this)) if having is not None else 0
    return len(_kept_conditions(select)) + bounds >= 2


def doubt_alternatives(sql: str, dialect: str, signals: dict[str, float]) -> list[tuple[str, str]]:
    """For the doubts that have another reading: (what changes, in words; the SQL)."""
    if not signals.get("lost_disjunction"):
        return []
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    variant = either_variant(tree, dialect)
    if variant is None:
        return []
    return [("requiring either condition instead of all of them", variant)]


def either_variant(tree: exp.Expr, dialect: str) -> str | None:
    """The query with its top WHERE conditions joined by OR instead of AND."""
    variant = tree.copy()
    select = _select(variant)
    if select is None or select.args.get("where") is None:
        return None
    parts = _conjuncts(select.args["where"])
    kept = _kept_conditions(select)
    if len(kept) < 2:
        return None
    guards = [p for p in parts if not any(p is k for k in kept)]
    either = exp.Paren(this=exp.or_(*kept, copy=False))
    select.set("where", exp.Where(this=exp.and_(*guards, either, copy=False)))
    return variant.sql(dialect=dialect)


def empty_ranges(tree: exp.Expr) -> int:
    """Columns the query bounds from below at or above their upper bound (no OR between)."""
    if any(tree.find_all(exp.Or)):
        return 0
    count = 0
    for select in tree.find_all(exp.Select):
        low: dict[str, float] = {}
        high: dict[str, float] = {}
        for cond in _kept_conditions(select):
            if not isinstance(cond, exp.GT | exp.GTE | exp.LT | exp.LTE):
                continue
            col, lit = cond.this, cond.expression
            if not isinstance(col, exp.Column) or not isinstance(lit, exp.Literal):
                continue
            if lit.is_string:
                continue
            try:
                value = float(lit.this)
            except ValueError:
                continue
            key = col.sql().lower()
            if isinstance(cond, exp.GT | exp.GTE):
                low[key] = max(low.get(key, value), value)
            else:
                high[key] = min(high.get(key, value), value)
        count += sum(1 for k, v in low.items() if k in high and v >= high[k])
    return count


def _owner(column: exp.Column, aliases: dict[str, str]) -> str | None:
    if column.table:
        return aliases.get(column.table.lower(), column.table.lower())
    names = set(aliases.values())
    return next(iter(names)) if len(names) == 1 else None


def split_counts(tree: exp.Expr, index: SchemaIndex) -> int:
    """Counts whose groups are the counted rows themselves: `COUNT(DISTINCT t.key)` grouped by
    a column of `t` beside another table's columns (a column of `t` that refers to the other
    table is the other table's fact, not a split); in a one-table query, `COUNT(*)` grouped by
    the table's sole key."""
    select = _select(tree)
    if select is None or not select.args.get("group"):
        return 0
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table)}
    grouped = [
        (owner, c.name.lower())
        for c in select.args["group"].find_all(exp.Column)
        if (owner := _owner(c, aliases)) is not None
    ]
    referring = {
        (t.lower(), own.lower()) for t, edges in index.edges.items() for _, own, _ in edges
    }
    count = 0
    for cnt in select.find_all(exp.Count):
        if cnt.find_ancestor(exp.Select) is not select:
            continue
        if isinstance(cnt.this, exp.Star):
            if len(set(aliases.values())) != 1:
                continue
            for table, name in grouped:
                ref = index.column(table, name) if table in index.tables else None
                if ref is not None and ref.sole_key:
                    count += 1
                    break
            continue
        if not isinstance(cnt.this, exp.Distinct):
            continue
        cols = list(cnt.this.find_all(exp.Column))
        if len(cols) != 1:
            continue
        counted = _owner(cols[0], aliases)
        own = [n for t, n in grouped if t == counted and (t, n) not in referring]
        if own and any(t != counted for t, _ in grouped):
            count += 1
    return count


_WORD = re.compile(r"[A-Za-z]+")


def counted_superlatives(tree: exp.Expr, question: str) -> bool:
    """A ranking by a bare row count while the question's superlative sizes a value ("highest",
    "largest", "cheapest"; not "most", "fewest", nor "the largest number of")."""
    select = _select(tree)
    if select is None or not select.args.get("order"):
        return False
    if not any(isinstance(o.this, exp.Count) for o in select.args["order"].expressions):
        return False
    words = [w.lower() for w in _WORD.findall(question)]
    return any(
        is_superlative(w)
        and w not in FREQUENCY_SUPERLATIVES
        and not set(words[k + 1 : k + 3]) & QUANTITY_NOUNS
        for k, w in enumerate(words)
    )


def summed_non_additive(tree: exp.Expr) -> int:
    """SUMs of a column whose values do not add up (by its name's last or first word)."""
    count = 0
    for total in tree.find_all(exp.Sum):
        col = total.this
        if not isinstance(col, exp.Column):
            continue
        words = [w.lower() for w in split_identifier(col.name)]
        if words and (words[-1] in NON_ADDITIVE_WORDS or words[0] in EXTREME_PREFIXES):
            count += 1
    return count


_PART_OF_TEXT = re.compile(
    r"\b(?:substring|the\s+(?:word|letter|phrase|string))\b"
    r"|['\"\u2018\u201c][^'\"\u2019\u201d]+['\"\u2019\u201d]\s+in\s+(?:their|its|his|her|the)\b"
    r"|\b(?:contain|contains|containing|include|includes|including)\s+['\"\u2018\u201c]",
    re.IGNORECASE,
)


def lost_contains(tree: exp.Expr, question: str) -> bool:
    """The question asks for rows whose text holds a part ("'senior' in their titles"), and the
    query has no pattern match (LIKE, INSTR, a regular expression)."""
    if not _PART_OF_TEXT.search(question):
        return False
    matches = (exp.Like, exp.ILike, exp.RegexpLike, exp.StrPosition, exp.Glob)
    return not any(tree.find_all(*matches))


_NUMBER = r"(?:\d+|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"
_COUNT_BOUND = re.compile(
    r"\b(?:at\s+least|at\s+most|more\s+than|fewer\s+than|less\s+than|exactly|no\s+more\s+than"
    rf"|no\s+fewer\s+than)\s+{_NUMBER}\s+(?:different\s+|distinct\s+)?([a-z]+)"
    rf"|\b{_NUMBER}\s+or\s+(?:more|fewer|less)\s+([a-z]+)",
    re.IGNORECASE,
)


def uncounted_thresholds(tree: exp.Expr, question: str, index: SchemaIndex) -> bool:
    """A bound on a number of rows of a table the question names ("3 or more movies") in a
    query that counts nothing."""
    if any(tree.find_all(exp.Count)):
        return False
    for match in _COUNT_BOUND.finditer(question):
        if re.search(r"\bthan\b[^.?!]{0,20}$", question[: match.start()], re.IGNORECASE):
            continue  # "older than at least one engineer": a quantifier over rows compared with
        noun = lemmatise((match.group(1) or match.group(2) or "").lower())
        if any(t.words and t.words[-1] == noun for t in index.tables.values()):
            return True
    return False


def ranked_attributes(tree: exp.Expr, question: str, index: SchemaIndex) -> bool:
    """A ranking of groups (ORDER BY an aggregate, LIMIT) of a joined query grouped only by
    plain attributes of one table (no key, no label, no reference), while the question ranks
    that table's rows themselves: "the <table> who / whose / that ..."."""
    select = _select(tree)
    if select is None or not all(select.args.get(k) for k in ("group", "order", "limit")):
        return False
    if not any(o.find(exp.AggFunc) for o in select.args["order"].expressions):
        return False
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table)}
    if len(set(aliases.values())) < 2:
        return False  # one table: "which major has the most students" groups by the major
    owners = {_owner(c, aliases) for c in select.args["group"].find_all(exp.Column)}
    if len(owners) != 1 or None in owners:
        return False
    table = next(iter(owners))
    if table is None or table not in index.tables:
        return False
    referring = {own.lower() for _, own, _ in index.edges.get(table, [])}
    labels = index.label_columns(table)
    noun = index.table(table).words[-1:]
    for col in select.args["group"].find_all(exp.Column):
        ref = index.column(table, col.name)
        if ref is None or ref.is_primary_key or ref in labels or ref.name.lower() in referring:
            return False
        if noun and noun[0] in ref.words:
            return False
    if not noun:
        return False
    said = " ".join(lemmatise(w) for w in _WORD.findall(question.lower()))
    return bool(
        re.search(
            rf"\bthe\s+(?:\w+\s+)?{re.escape(noun[0])}\s+(?:who|whose|that|which|with)\b", said
        )
    )


def _yes_no(col: ColumnRef, index: SchemaIndex) -> bool:
    """A yes/no column: boolean, `is_`/`has_` numeric, or text whose sampled values are all
    yes/no words."""
    if col.kind == "boolean" or (
        col.kind == "numeric" and len(col.words) > 1 and col.words[0] in ("is", "has")
    ):
        return True
    if col.kind != "text" or not index.has_samples(col):
        return False
    stored = {
        text.strip().lower() for hits in index.values.values() for c, text in hits if c == col
    }
    return bool(stored) and stored <= YES_NO_VALUES


def shown_flags(tree: exp.Expr, index: SchemaIndex) -> int:
    """Yes/no columns shown (not grouped by) beside other columns."""
    select = _select(tree)
    if select is None or len(select.expressions) < 2:
        return 0
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table)}
    group = select.args.get("group")
    grouped = {e.sql() for e in group.expressions} if group is not None else set()
    count = 0
    for shown in select.expressions:
        col = shown.unalias()
        if not isinstance(col, exp.Column) or col.sql() in grouped:
            continue
        table = _owner(col, aliases)
        ref = index.column(table, col.name) if table in index.tables else None
        if ref is not None and _yes_no(ref, index):
            count += 1
    return count
