"""What the question asks for that the rendered SQL does not do: doubts for the confidence.

Each function reads the SQL (and the question's words) and counts one kind of request left
unmet. None of them changes a reading; they lower the confidence of readings that, on the
development sets, were answered wrong far more often than right:

* a table the question names among what it asks to see ("the address and email of the
  customer") is joined, yet nothing of it is shown or used: the word was read as a join, not
  as a column to show;
* a count of rows is compared with a number that no noun follows ("people under 40 for each
  gender", "trips that lasted less than 100"): the number bounds an attribute, not how many rows
  there are;
* a column is shown because of a generic last word alone ("the picker numbers" read as
  `phone_number`): the words that make the column what it is are not in the question;
* the question says "average", "maximum" or "minimum" and the SQL computes no such aggregate
  (nor ranks rows, for the extremes, nor reads a column named so, `max_temperature`): another
  aggregate, or none, stands in for the one asked;
* a figure is grouped by a numeric column that counts things ("the average price per crate"
  grouped by `crates`): "per" a unit asks for a ratio, not a breakdown.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.lexicon import Token, lemmatise, split_identifier, tokenise
from backend.nl2sql.engines.builtin.linking import SchemaIndex

_HEAD_ENDS = frozenset(
    {
        "of",
        "for",
        "who",
        "that",
        "which",
        "whose",
        "with",
        "where",
        "in",
        "from",
        "by",
        "whom",
        "per",
    }
)
"""Words that end the part of a question saying what to show ("the name and email" | "of
the customer ...")."""

_COUNT_LEADS = frozenset({"how", "count", "number"})

_AFTER_BARE_NUMBER = frozenset(
    {"for", "in", "and", "or", "of", "per", "on", "at", "with", "by", "each", "every"}
)
"""Words after a number that show no noun is counted ("under 40 for each gender")."""

_OR_BOUNDS = frozenset({"more", "fewer", "less", "above", "over", "under", "below", "greater"})

_AGGREGATE_WORDS: dict[str, type[exp.AggFunc]] = {
    "average": exp.Avg,
    "mean": exp.Avg,
    "avg": exp.Avg,
    "maximum": exp.Max,
    "max": exp.Max,
    "minimum": exp.Min,
    "min": exp.Min,
}


def _select(tree: exp.Expr) -> exp.Select | None:
    return tree if isinstance(tree, exp.Select) else tree.find(exp.Select)


def _words(tokens: list[Token]) -> list[Token]:
    return [t for t in tokens if t.kind == "word"]


def _head(tokens: list[Token]) -> list[Token]:
    """The question's first clause, up to the word that ends it: what it asks to see."""
    out: list[Token] = []
    for tok in tokens:
        if tok.kind == "word" and tok.lemma in _HEAD_ENDS:
            break
        out.append(tok)
    return out


def _named_to_show(head: list[Token], words: tuple[str, ...], shown: list[tuple[str, ...]]) -> bool:
    """Whether the words appear in the clause as a thing to show: on their own ("the fruits
    and crates"), or with the next word as a column shown from another table ("the department
    id" answered by `employees.department_id`), not as a modifier of a figure ("the average
    customer spend")."""
    lemmas = [t.lemma if t.kind == "word" else "" for t in head]
    if not words or not set(words) <= set(lemmas):
        return False
    for k, lemma in enumerate(lemmas):
        if lemma != words[-1]:
            continue
        nxt = head[k + 1] if k + 1 < len(head) else None
        if nxt is None or nxt.kind == "punct" or nxt.lemma in ("and", "or"):
            return True
        if any(set(words) | {nxt.lemma} <= set(column) for column in shown):
            return True
    return False


def _counts_only(select: exp.Select) -> bool:
    """Every shown expression is a count: the joined tables only say which rows count."""
    return bool(select.expressions) and all(
        isinstance(e.unalias(), exp.Count) for e in select.expressions
    )


def unshown_named_tables(tree: exp.Expr, question: str, index: SchemaIndex) -> int:
    """Tables at the end of the outer query's join path that the question names where it says
    what to show, when no column of theirs is shown, filtered, grouped or ranked by (only the
    join's key):
    "List the grapes and appellations of all wines" joined `grapes` and showed no grape."""
    select = _select(tree)
    if select is None or not select.args.get("joins") or _counts_only(select):
        return 0
    tokens = tokenise(question)
    if {t.lemma for t in _words(tokens)[:2]} & _COUNT_LEADS:
        return 0  # "how many students have advisors": the join says which rows count
    head = _head(tokens)
    joined: dict[str, int] = {}
    for join in select.args["joins"]:
        on = join.args.get("on")
        for alias in {c.table.lower() for c in on.find_all(exp.Column)} if on else ():
            joined[alias] = joined.get(alias, 0) + 1
    used: set[str] = set()
    for column in select.find_all(exp.Column):
        if column.find_ancestor(exp.Select) is not select:
            continue
        if column.find_ancestor(exp.Join) is not None:
            continue  # a key of a join's ON
        if column.table:
            used.add(column.table.lower())
    shown = [
        tuple(split_identifier(c.name))
        for e in select.expressions
        if isinstance(c := e.unalias(), exp.Column)
    ]
    count = 0
    for table in select.find_all(exp.Table):
        if table.find_ancestor(exp.Select) is not select:
            continue
        alias = table.alias_or_name.lower()
        if alias in used or joined.get(alias, 0) != 1:
            continue  # shown or used, or a table the join path runs through
        ref = index.tables.get(table.name.lower())
        if ref is not None and _named_to_show(head, ref.words, shown):
            count += 1
    return count


def bare_count_thresholds(tree: exp.Expr, question: str) -> int:
    """HAVING conditions comparing a count of rows with a number of the question that no noun
    follows: "how many people are under 40 for each gender" bounds an age, not a count."""
    literals = [
        literal
        for having in tree.find_all(exp.Having)
        if having.find(exp.Count) is not None
        for literal in having.find_all(exp.Literal)
    ]  # (the outer query's or a subquery's: "how many ... have fewer than 3 ...")
    if not literals:
        return 0
    tokens = tokenise(question)
    count = 0
    for literal in literals:
        if not literal.is_number:
            continue
        for k, tok in enumerate(tokens):
            if tok.kind != "number" or tok.number is None:
                continue
            try:
                if tok.number != float(literal.this):
                    continue
            except ValueError:
                continue
            rest = [t for t in tokens[k + 1 :] if t.kind != "punct"]
            if len(rest) >= 2 and rest[0].lemma == "or" and rest[1].lemma in _OR_BOUNDS:
                rest = rest[2:]  # "3 or more albums": the noun comes after the bound
            after = rest[0] if rest else None
            if after is None or after.kind != "word" or after.lemma in _AFTER_BARE_NUMBER:
                count += 1
            break
    return count


def mismatched_aggregates(tree: exp.Expr, question: str) -> int:
    """Aggregate words of the question ("average", "maximum", "minimum") whose aggregate the
    SQL never computes (for the extremes, nor ranks rows by): "the average room price for each
    bed type" answered with a SUM."""
    present = {type(a) for a in tree.find_all(exp.AggFunc)}
    if any(d.find(exp.AggFunc) is not None for d in tree.find_all(exp.Div)):
        present.add(exp.Avg)  # a total divided by a count or another total: an average
    ranked = any(s.args.get("order") for s in [tree, *tree.find_all(exp.Select)])
    named = {
        word
        for column in tree.find_all(exp.Column)
        for word in [*split_identifier(column.name), *column.name.lower().split("_")]
    }
    stored = {_AGGREGATE_WORDS[w] for w in named if w in _AGGREGATE_WORDS}
    wanted = {
        _AGGREGATE_WORDS[t.lemma] for t in _words(tokenise(question)) if t.lemma in _AGGREGATE_WORDS
    } - stored  # "the max temperature": a column `max_temperature_f` holds it
    return sum(
        1 for agg in wanted if agg not in present and not (agg in (exp.Max, exp.Min) and ranked)
    )


_GENERIC_LAST = frozenset({"number"})
"""Last words of column names that a question also uses on their own for something else ("the
number of", "employee number")."""


def generic_word_columns(tree: exp.Expr, question: str) -> int:
    """Shown columns (`phone_number`) linked by a generic last word alone ("the employee
    number", "the number and the account id"): the question says none of the words that make
    the column what it is, nor do they name a table of the query."""
    select = _select(tree)
    if select is None:
        return 0
    said = {t.lemma for t in _words(tokenise(question))}
    tables: set[str] = set()
    for table in tree.find_all(exp.Table):
        tables.update(split_identifier(table.name))
    count = 0
    for shown in select.expressions:
        column = shown.unalias()
        if not isinstance(column, exp.Column):
            continue
        words = split_identifier(column.name)
        if len(words) < 2 or words[-1] not in _GENERIC_LAST or words[-1] not in said:
            continue
        if not any(w in said or w in tables for w in words[:-1]):
            count += 1
    return count


_QUANTITY_WORDS = frozenset({"qty", "quantity", "count", "units", "pieces", "items", "volume"})
"""Last words of columns that hold how many of something a row stands for."""


def _quantity_column(name: str) -> str | None:
    """The singular word of a numeric column that counts things (`lessons`, `crates`,
    `qty`), as a question says it after "per" ("per lesson"); None for other names."""
    last = re.split(r"_|(?<=[a-z])(?=[A-Z])", name)[-1].lower()
    if last in _QUANTITY_WORDS:
        return lemmatise(last)
    if len(last) > 3 and last.endswith("s") and not last.endswith("ss") and lemmatise(last) != last:
        return lemmatise(last)
    return None


def grouped_by_quantity(tree: exp.Expr, question: str, index: SchemaIndex) -> int:
    """Groups keyed by a numeric column that counts things, where the question says "per"
    that thing: "the average price per crate" asks for a price divided by crates (a per-unit
    ratio), not an average for each number of crates."""
    tokens = _words(tokenise(question))
    after_per = {
        tokens[k + 1].lemma
        for k, tok in enumerate(tokens[:-1])
        if tok.lemma == "per" or (tok.lemma == "a" and k > 0 and tokens[k - 1].kind == "number")
    }
    if not after_per:
        return 0
    numeric = {
        c.name.lower() for c in index.columns if c.kind == "numeric" and not c.is_primary_key
    }
    count = 0
    for select in [tree, *tree.find_all(exp.Select)]:
        group = select.args.get("group") if isinstance(select, exp.Select) else None
        if group is None or select.find(exp.AggFunc) is None:
            continue
        for key in group.expressions:
            if not isinstance(key, exp.Column) or key.name.lower() not in numeric:
                continue
            if _quantity_column(key.name) in after_per:
                count += 1
    return count


_LABEL_WORDS = frozenset({"name", "title", "number"})
"""Last words of a column that names each row of its table (`roomName`, `apt_number`)."""


def counted_labels(tree: exp.Expr, index: SchemaIndex) -> int:
    """A query of one table that counts its rows per value of the column naming each row
    (`GROUP BY roomName ORDER BY COUNT(*)`): every group holds one room, so "the room that
    can accommodate the most people" ranks nothing; the superlative was about an attribute."""
    select = _select(tree)
    if select is None or select.args.get("joins") or not select.args.get("group"):
        return 0
    order = select.args.get("order")
    if order is None or not any(isinstance(o.this, exp.Count) for o in order.expressions):
        return 0
    tables = list(select.find_all(exp.Table))
    if len(tables) != 1:
        return 0
    table = index.tables.get(tables[0].name.lower())
    if table is None:
        return 0
    count = 0
    for key in select.args["group"].expressions:
        if not isinstance(key, exp.Column):
            continue
        words = tuple(split_identifier(key.name))
        if not words or words[-1] not in _LABEL_WORDS:
            continue
        if words[:-1] and not set(words[:-1]) <= set(table.words):
            continue  # `first_name` of actors: a shared attribute, not each row's label
        count += 1
    return count


_FLAG_ENDS = (("opt", "in"), ("opt", "out"), ("flag",), ("yn",))
"""Last words of yes/no column names (`marketing_opt_in`, `vip_flag`)."""


def flag_name(words: tuple[str, ...]) -> bool:
    """Whether a column's name words say yes/no: `is_primary`, `has_pet`, `marketing_opt_in`."""
    if len(words) > 1 and words[0] in ("is", "has"):
        return True
    return any(len(words) > len(end) and words[-len(end) :] == end for end in _FLAG_ENDS)


def _two_valued(table: str, column: str, index: SchemaIndex) -> bool:
    """A yes/no column: boolean, named so, or numeric whose sampled values are all 0 or 1."""
    ref = next((c for c in index.columns_of.get(table, []) if c.name.lower() == column), None)
    if ref is None:
        return False
    if ref.kind == "boolean" or (ref.kind == "numeric" and flag_name(ref.words)):
        return True
    if ref.kind != "numeric":
        return False
    for info in index.snapshot.tables:
        if info.name.lower() != table:
            continue
        for col in info.columns:
            if col.name.lower() == column:
                samples = {str(v).strip() for v in col.sample_values or []}
                return bool(samples) and samples <= {"0", "1"}
    return False


def tested_flags_shown(tree: exp.Expr, index: SchemaIndex) -> int:
    """Shown yes/no columns that the query's own conditions test (anywhere, a subquery's
    too): "which cities have pupils who have not opted in" answered with the cities and
    `newsletter_opt_in`, one repeated value beside them, the flag the question only filters
    by (a layer's negated filter)."""
    select = _select(tree)
    if select is None or not select.expressions:
        return 0
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table)}
    tables = [t.name.lower() for t in select.find_all(exp.Table)]
    tested = {
        column.name.lower()
        for condition in tree.find_all(exp.Where)
        for column in condition.find_all(exp.Column)
    }
    count = 0
    for e in select.expressions:
        column = e.unalias()
        if not isinstance(column, exp.Column) or isinstance(column.this, exp.Star):
            continue
        name = column.name.lower()
        if name not in tested:
            continue
        if column.table:
            owners = [aliases.get(column.table.lower(), column.table.lower())]
        else:
            owners = [
                t
                for t in tables
                if any(c.name.lower() == name for c in index.columns_of.get(t, []))
            ]
        if len(owners) == 1 and _two_valued(owners[0], name, index):
            count += 1
    return count


def per_unit_variant(sql: str, dialect: str, question: str, index: SchemaIndex) -> str | None:
    """The query grouped by a counted unit ("the average price per crate" grouped by
    `crates`) read as the ratio instead: each average or total of the figure divided by the
    total of the units (`SUM(price) * 1.0 / SUM(crates)`), the unit left out of the groups."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    select = _select(tree)
    if select is None or not grouped_by_quantity(tree, question, index):
        return None
    group = select.args.get("group")
    if group is None:
        return None
    units = [
        key
        for key in group.expressions
        if isinstance(key, exp.Column) and _quantity_column(key.name) is not None
    ]
    if len(units) != 1:
        return None
    unit = units[0]
    kept: list[exp.Expr] = []
    for e in select.expressions:
        inner = e.unalias()
        if isinstance(inner, exp.Column) and inner.name.lower() == unit.name.lower():
            continue  # the unit's own column: no longer a group
        if isinstance(inner, exp.Avg | exp.Sum):
            ratio = exp.Div(
                this=exp.Mul(
                    this=exp.Sum(this=inner.this.copy()), expression=exp.Literal.number(1.0)
                ),
                expression=exp.Sum(this=unit.copy()),
            )
            kept.append(exp.alias_(ratio, "per_unit") if isinstance(e, exp.Alias) else ratio)
        else:
            kept.append(e)
    select.set("expressions", kept)
    rest = [k for k in group.expressions if k is not unit]
    select.set("group", exp.Group(expressions=rest) if rest else None)
    return tree.sql(dialect=dialect)
