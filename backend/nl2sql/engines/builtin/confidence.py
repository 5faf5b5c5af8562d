"""How sure the engine is of a reading: a score from the evidence, and the cut-off to answer.

The score combines what the parser saw (how many content words of the question were linked,
how strong the links are, words left unexplained, a negation the reading lost, a grouping
nobody asked for, a number read as an id) with what the SQL does (tables joined that the
question never points at, a `SELECT *`). It is a logistic function of those signals whose
weights were fitted on the development question sets and then rounded; `ANSWER_THRESHOLD` was
chosen from the precision/answered curve that `nlsql eval` prints. Below it the engine declines
and offers the reading as a suggestion instead of presenting it as the answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.activity import two_way_activity
from backend.nl2sql.engines.builtin.column_choice import echoed_values, unjustified
from backend.nl2sql.engines.builtin.doubts import (
    counted_superlatives,
    empty_ranges,
    lost_contains,
    lost_disjunction,
    ranked_attributes,
    shown_flags,
    split_counts,
    summed_non_additive,
    uncounted_thresholds,
)
from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.joinplan import keep_to_named_tables
from backend.nl2sql.engines.builtin.linking import (
    ColumnRef,
    SchemaIndex,
    unexpressed_definitions,
)
from backend.nl2sql.engines.builtin.roles import unclear_value_roles
from backend.nl2sql.engines.builtin.unmet import (
    bare_count_thresholds,
    counted_labels,
    flag_name,
    generic_word_columns,
    grouped_by_quantity,
    mismatched_aggregates,
    tested_flags_shown,
    unshown_named_tables,
)

WEIGHTS_FILE = Path(__file__).with_name("confidence_weights.json")
"""The fitted model: bias, one weight per feature, the decline threshold and how they were
chosen. `scripts/fit_confidence.py --write` refits and rewrites it."""


@dataclass(frozen=True, slots=True)
class Model:
    bias: float
    weights: dict[str, float]
    threshold: float


def load_model(path: Path = WEIGHTS_FILE) -> Model:
    """The fitted weights; a feature the file does not weigh counts for nothing."""
    data = json.loads(path.read_text(encoding="utf-8"))
    weights = {name: float(data["weights"].get(name, 0.0)) for name in FEATURES}
    return Model(float(data["bias"]), weights, float(data["threshold"]))


@dataclass(frozen=True, slots=True)
class Assessment:
    confidence: float
    reasons: list[str]
    """Plain words for what lowered the score, most important first."""


def sql_signals(
    sql: str,
    dialect: str,
    intent: Intent,
    question: str | None = None,
    index: SchemaIndex | None = None,
    *,
    tree: exp.Expr | None = None,
) -> dict[str, float]:
    """Signals read from the rendered SQL: star selects, tables the question never names,
    and, given the question, reference keys it shows though the question asks for no id.
    `tree`: `sql` parsed already (only read here)."""
    if tree is None:
        try:
            tree = sqlglot.parse_one(sql, read=dialect)
        except sqlglot.errors.ParseError:
            return {"star": 1.0, "unnamed_tables": 0.0, "tables": 0.0}
    names = {t.name.lower() for t in tree.find_all(exp.Table)}
    pointed = {t.lower() for t in intent.preferred_tables} | {intent.table.lower()}
    pointed |= {t.lower() for t in _reading_tables(intent)}
    if index is not None:
        pointed |= _layer_measure_paths(intent, index)
    star = any(
        isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star))
        for e in _selected(tree)
    )
    grouped = {(m.column.table, m.column.name) for m in intent.group_by if m.column is not None}
    shown = [m for m in intent.select if m.agg is None and m.column is not None]
    bare_flags = bool(shown) and all(
        m.column is not None
        and _is_flag_column(m.column)
        and (m.column.table, m.column.name) not in grouped
        for m in shown
    )
    return {
        "star": float(star and not intent.signals.get("asks_everything")),
        "bare_flags": float(bare_flags and len(shown) == len(intent.select)),
        "degenerate_groups": float(
            max(
                degenerate_groups(intent),
                sql_degenerate_groups(tree, index) + split_counts(tree, index) if index else 0,
            )
        ),
        "lost_disjunction": (
            float(lost_disjunction(tree, question)) if question is not None else 0.0
        ),
        "empty_ranges": float(empty_ranges(tree)),
        "counted_superlatives": (
            float(counted_superlatives(tree, question)) if question is not None else 0.0
        ),
        "summed_non_additive": float(summed_non_additive(tree)),
        "lost_contains": float(lost_contains(tree, question)) if question is not None else 0.0,
        "shown_flags": float(shown_flags(tree, index)) if index is not None else 0.0,
        "ranked_attributes": (
            float(ranked_attributes(tree, question, index))
            if question is not None and index is not None
            else 0.0
        ),
        "uncounted_thresholds": (
            float(uncounted_thresholds(tree, question, index))
            if question is not None and index is not None
            else 0.0
        ),
        "duplicate_selects": float(duplicate_selects(tree)),
        "uncounted": float(uncounted(tree, index, question)) if question is not None else 0.0,
        "grouped_by_measure": (
            float(grouped_by_measure(tree, index, question))
            if question is not None and index is not None
            else 0.0
        ),
        "unasked_keys": float(unasked_keys(intent, question)) if question is not None else 0.0,
        "unexpressed_definitions": (
            float(unexpressed_definitions(index, question, sql, dialect, intent.explained))
            if question is not None and index is not None
            else 0.0
        ),
        "unnamed_tables": float(len(names - pointed)),
        "echoed_values": float(echoed_values(tree)),
        "unclear_value_roles": (
            float(unclear_value_roles(intent, index)) if index is not None else 0.0
        ),
        "unjustified_columns": (
            float(len(unjustified(keep_to_named_tables(intent, index), index)))
            if index is not None
            else 0.0
        ),
        "tables": float(len(names)),
        "unshown_named_tables": (
            float(unshown_named_tables(tree, question, index))
            if question is not None and index is not None
            else 0.0
        ),
        "bare_count_thresholds": (
            float(bare_count_thresholds(tree, question)) if question is not None else 0.0
        ),
        "mismatched_aggregates": (
            float(mismatched_aggregates(tree, question)) if question is not None else 0.0
        ),
        "generic_word_columns": (
            float(generic_word_columns(tree, question)) if question is not None else 0.0
        ),
        "counted_labels": float(counted_labels(tree, index)) if index is not None else 0.0,
        "tested_flags_shown": (
            float(tested_flags_shown(tree, index)) if index is not None else 0.0
        ),
        "grouped_by_quantity": (
            float(grouped_by_quantity(tree, question, index))
            if question is not None and index is not None
            else 0.0
        ),
        "two_way_activity": (
            float(two_way_activity(tree, question, index))
            if question is not None and index is not None
            else 0.0
        ),
        "ambiguous_joins": float(ambiguous_joins(tree, index)) if index is not None else 0.0,
        "dangling_columns": float(dangling_columns(tree)),
        "ranked_single_row": float(ranked_single_row(tree)),
        "subqueries": float(sum(1 for _ in tree.find_all(exp.Select)) - 1),
        "shown": float(len(_plain_shown(tree))),
        "ordered": float(bool(tree.args.get("order"))),
        "limited": float(bool(tree.args.get("limit"))),
    }


def join_alternatives(sql: str, dialect: str, index: SchemaIndex) -> list[tuple[str, str]]:
    """For each join between tables that refer to each other in several ways, the query
    joined the other way: (what changes, in words; the SQL)."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return []
    aliases = {t.alias_or_name.lower(): t for t in tree.find_all(exp.Table)}
    out: list[tuple[str, str]] = []
    for k, join in enumerate(tree.find_all(exp.Join)):
        on = join.args.get("on")
        cols = list(on.find_all(exp.Column)) if on is not None else []
        if len(cols) != 2 or not isinstance(on, exp.EQ):
            continue
        refs = {c.table.lower(): c.name.lower() for c in cols}
        if len(refs) != 2 or not all(a in aliases for a in refs):
            continue
        (alias_a, col_a), (alias_b, col_b) = sorted(refs.items())
        table_a, table_b = aliases[alias_a].name.lower(), aliases[alias_b].name.lower()
        for other, own, theirs in index.edges.get(table_a, []):
            if other.lower() != table_b or (own.lower(), theirs.lower()) == (col_a, col_b):
                continue
            variant = tree.copy()
            target = list(variant.find_all(exp.Join))[k]
            side = {c.table.lower(): c.table for c in cols}
            target.set(
                "on",
                exp.EQ(
                    this=exp.column(own, table=side[alias_a]),
                    expression=exp.column(theirs, table=side[alias_b]),
                ),
            )
            words = (
                f"joining {table_a}.{own} to {table_b}.{theirs}"
                f" instead of {table_a}.{col_a} to {table_b}.{col_b}"
            )
            out.append((words, variant.sql(dialect=dialect)))
    return out


def _aggregates_outside_windows(node: exp.Expr) -> bool:
    """Whether `node` holds an aggregate of its own query (not a window's, not a subquery's)."""
    return any(
        not isinstance(agg.parent, exp.Window)
        and not any(isinstance(a, exp.Select) for a in _ancestors_within(agg, node))
        for agg in node.find_all(exp.AggFunc)
    )


def _ancestors_within(node: exp.Expr, top: exp.Expr) -> list[exp.Expr]:
    found: list[exp.Expr] = []
    if node is top:
        return found
    parent = node.parent
    while parent is not None and parent is not top:
        found.append(parent)
        parent = parent.parent
    return found


def ranked_single_row(tree: exp.Expr) -> bool:
    """A query that adds every row up into one (an aggregate, no GROUP BY) yet is ranked by a
    plain column (`SELECT COUNT(*) FROM books ORDER BY pages DESC LIMIT 3`, or "the average age
    of students in the dorm with the largest capacity" read as an average over every dorm). The
    ranking has nothing left to rank: the question meant rows or a subset the query never
    picks, SQLite answers the one total anyway and PostgreSQL refuses the query."""
    if not isinstance(tree, exp.Select) or tree.args.get("group") or not tree.args.get("order"):
        return False
    shown = list(tree.expressions)
    if not any(_aggregates_outside_windows(e) for e in shown):
        return False
    aggregate_names = {e.alias_or_name.lower() for e in shown if _aggregates_outside_windows(e)}
    return any(
        isinstance(o.this, exp.Column) and o.this.name.lower() not in aggregate_names
        for o in tree.args["order"].expressions
    )


def dangling_columns(tree: exp.Expr) -> int:
    """Columns qualified by a table the query never reads: the SQL would fail to run."""
    known = {t.alias_or_name.lower() for t in tree.find_all(exp.Table)}
    known |= {t.name.lower() for t in tree.find_all(exp.Table)}
    known |= {s.alias_or_name.lower() for s in tree.find_all(exp.Subquery) if s.alias}
    known |= {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
    return sum(1 for c in tree.find_all(exp.Column) if c.table and c.table.lower() not in known)


def ambiguous_joins(tree: exp.Expr, index: SchemaIndex) -> int:
    """Joins between two tables that refer to each other in more than one way (`film` has a
    `language_id` and an `original_language_id`; `friend` and `name` of a friendship): the
    reading picked one of the references, the question may mean the other."""
    aliases = {t.alias_or_name.lower(): t.name.lower() for t in tree.find_all(exp.Table)}
    count = 0
    for join in tree.find_all(exp.Join):
        on = join.args.get("on")
        if on is None:
            continue
        tables = sorted(
            {aliases.get(c.table.lower(), c.table.lower()) for c in on.find_all(exp.Column)}
        )
        if len(tables) != 2:
            continue
        a, b = tables
        ways = {
            (own.lower(), theirs.lower())
            for other, own, theirs in index.edges.get(a, [])
            if other.lower() == b
        }
        if len(ways) > 1:
            count += 1
    return count


def _owner(column: exp.Column, tree: exp.Select) -> str | None:
    """The table a column of `tree` belongs to (qualified, or the query's only table)."""
    if column.table:
        return column.table.lower()
    tables = [t.name.lower() for t in tree.find_all(exp.Table)]
    return tables[0] if len(set(tables)) == 1 else None


def sql_degenerate_groups(tree: exp.Expr, index: SchemaIndex) -> int:
    """`degenerate_groups` read from the rendered SQL (whatever built the aggregates): an
    aggregate over the grouped column itself, or over rows of a table grouped by its sole key."""
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None or not select.args.get("group"):
        return 0
    grouped: set[tuple[str, str]] = set()
    keyed: set[str] = set()
    for col in select.args["group"].find_all(exp.Column):
        table = _owner(col, select)
        if table is None:
            continue
        grouped.add((table, col.name.lower()))
        if table in index.tables:
            ref = index.column(table, col.name)
            if ref is not None and ref.sole_key:
                keyed.add(table)
    count = 0
    for agg in select.find_all(exp.AggFunc):
        if agg.find_ancestor(exp.Select) is not select:
            continue  # an aggregate of a subquery
        cols = [(_owner(c, select), c.name.lower()) for c in agg.find_all(exp.Column)]
        if any((t, n) in grouped or t in keyed for t, n in cols if t is not None):
            count += 1
    return count


def _stem(word: str) -> str:
    word = word.lower()
    return word[:-1] if len(word) > 3 and word.endswith("s") else word


def grouped_by_measure(tree: exp.Expr, index: SchemaIndex, question: str) -> int:
    """Plain numeric columns (`mrr`, `seats`, `salary`, not keys) the SQL groups by though the
    question never says their name: a breakdown by an amount is rarely what anyone asks for,
    and when it is, the question names the amount it breaks down by."""
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None or not select.args.get("group"):
        return 0
    said = {_stem(w) for w in re.findall(r"[A-Za-z]+", question)}
    count = 0
    for col in select.args["group"].expressions:
        if not isinstance(col, exp.Column):
            continue  # a bucket (`STRFTIME(...)`) or an expression
        table = _owner(col, select)
        if table is None or table not in index.tables:
            continue
        ref = index.column(table, col.name)
        if ref is None or ref.kind != "numeric" or ref.is_primary_key or ref.sole_key:
            continue
        if ref.words and ref.words[-1] in ("id", "no", "code", "number", "year"):
            continue
        if not any(_stem(w) in said for w in ref.words):
            count += 1
    return count


_HOW_MANY = re.compile(r"\bhow\s+many\b", re.IGNORECASE)


def uncounted(tree: exp.Expr, index: SchemaIndex | None, question: str) -> bool:
    """A 'how many' question whose SQL counts nothing and shows no number: it would list the
    rows (`SELECT title ...`) instead of saying how many there are."""
    if not _HOW_MANY.search(question):
        return False
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None or any(select.find_all(exp.AggFunc)):
        return False
    for shown in select.expressions:
        col = shown.unalias()
        if not isinstance(col, exp.Column):
            return False  # an expression (a difference of dates, a product): may be the number
        if index is None:
            return False
        table = _owner(col, select)
        owners = (
            [table] if table is not None else [t.name.lower() for t in tree.find_all(exp.Table)]
        )
        found = [r for t in owners if t in index.tables if (r := index.column(t, col.name))]
        if not found or any(r.kind == "numeric" for r in found):
            return False  # a stored count (`seats`, `num_employees`) answers 'how many'
    return True


def duplicate_selects(tree: exp.Expr) -> int:
    """The same expression shown twice (`COUNT(*) AS sign_ups, COUNT(*) AS count`)."""
    shown = [e.unalias().sql() for e in _selected(tree)]
    return len(shown) - len(set(shown))


def degenerate_groups(intent: Intent) -> int:
    """Aggregates that are trivial because of how rows are grouped: an aggregate of the very
    column grouped by (`csat, AVG(csat) ... GROUP BY csat`), or of rows of a table grouped by
    that table's key (every group is one row: `AVG(fee) ... GROUP BY shipments.id`)."""
    grouped = {
        (m.column.table, m.column.name)
        for m in intent.group_by
        if m.column is not None and m.bucket is None and m.via is None
    }  # (a column read through a reference is the referred row's, joined apart)
    keyed_tables = {
        m.column.table
        for m in intent.group_by
        if m.column is not None and m.column.sole_key and m.bucket is None and m.via is None
    }
    aggregates = [
        m
        for m in [
            *intent.select,
            *(m for m, _ in intent.order_by),
            *(f.column for f in intent.having if isinstance(f.column, Measure)),
        ]
        if m.agg is not None and m.agg != "PCT"
    ]
    count = 0
    for m in aggregates:
        if m.column is not None:
            if (m.column.table, m.column.name) in grouped or m.column.table in keyed_tables:
                count += 1
        elif m.count_table is not None and m.count_table in keyed_tables:
            count += 1
    return count


_ID_WORDS = frozenset({"id", "ids", "identifier", "identifiers", "key", "keys"})


def unasked_keys(intent: Intent, question: str) -> int:
    """Shown or grouped columns that refer to another row (`account_manager_id`), when the
    question never asks for an id: it named the thing ("each account manager"), and a bare key
    is not what it asked to see."""
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", question)}
    if words & _ID_WORDS:
        return 0
    shown = [
        m.column
        for m in [*intent.select, *intent.group_by]
        if m.agg is None and m.column is not None and m.bucket is None
    ]
    keys = {
        (c.table, c.name)
        for c in shown
        if not c.sole_key and len(c.words) > 1 and c.words[-1] == "id"
    }
    return len(keys)


def _is_flag_column(col: ColumnRef) -> bool:
    """A yes/no column (`is_active`, `has_pet`, boolean): its bare 0/1 answers no "who"."""
    return col.kind == "boolean" or (col.kind == "numeric" and flag_name(col.words))


def _reading_tables(intent: Intent) -> set[str]:
    """Tables that own a column the reading shows, groups, orders or filters by."""
    measures = [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]
    out = {t for m in measures for t in m.tables}
    for f in [*intent.filters, *intent.having]:
        if isinstance(f.column, ColumnRef):
            out.add(f.column.table)
        else:
            out.update(f.column.tables)
    out.update(a.table for a in intent.anti_joins)
    return out


def _plain_shown(tree: exp.Expr) -> list[exp.Expr]:
    """Shown columns that are neither aggregates nor the groups they are taken over."""
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    if select is None:
        return []
    group = select.args.get("group")
    grouped = {e.sql() for e in group.expressions} if group is not None else set()
    return [
        e
        for e in select.expressions
        if not e.find(exp.AggFunc) and e.unalias().sql() not in grouped
    ]


def _layer_measure_paths(intent: Intent, index: SchemaIndex) -> set[str]:
    """Tables on the join path from the rows a question groups or ranks to a semantic layer
    measure's table ("customers by revenue": customers -> subscriptions -> invoices): the
    named measure implies them."""
    measures = [*intent.select, *(m for m, _ in intent.order_by), *intent.group_by]
    out: set[str] = set()
    for m in measures:
        if m.sql is None:
            continue  # (a layer measure, or a share of one)
        for table in m.sql_tables:
            path = index.join_path(intent.table, table, preferred=intent.preferred_tables)
            out.update(t.lower() for step in path or [] for t in (step[0], step[2]))
    return out


def _selected(tree: exp.Expr) -> list[exp.Expr]:
    select = tree if isinstance(tree, exp.Select) else tree.find(exp.Select)
    return list(select.expressions) if select is not None else []


def _capped(name: str, cap: float) -> Callable[[dict[str, float]], float]:
    return lambda signals: min(signals.get(name, 0.0), cap)


def _share(part: str, whole: str) -> Callable[[dict[str, float]], float]:
    return lambda signals: signals.get(part, 0.0) / max(signals.get(whole, 0.0), 1.0)


FEATURES: dict[str, Callable[[dict[str, float]], float]] = {
    "unknown_share": _share("unknown_words", "content_words"),
    "weak_links": _capped("weak_links", 3.0),
    "strong_share": _share("strong_links", "links"),
    "unused_mentions": _capped("unused_mentions", 3.0),
    "lost_negation": _capped("lost_negation", 2.0),
    "unasked_grouping": _capped("unasked_grouping", 1.0),
    "subject_unnamed": lambda signals: 1.0 - signals.get("subject_named", 1.0),
    "key_literals": _capped("key_literals", 2.0),
    "unnamed_tables": _capped("unnamed_tables", 3.0),
    "ambiguous_joins": _capped("ambiguous_joins", 2.0),
    "tied_links": _capped("tied_links", 2.0),
    "late_shown": _capped("late_shown", 2.0),
    "unanswered_when": _capped("unanswered_when", 1.0),
    "counted_rows": _capped("counted_rows", 1.0),
    "lost_qualifiers": _capped("lost_qualifiers", 2.0),
    "guessed_values": _capped("guessed_values", 2.0),
    "unseen_names": _capped("unseen_names", 2.0),
    "borrowed_label": _capped("borrowed_label", 1.0),
    "borrowed_reference": _capped("borrowed_reference", 1.0),
    "far_weak_links": _capped("far_weak_links", 2.0),
    "contradictions": lambda signals: min(
        signals.get("contradictions", 0.0) + signals.get("empty_ranges", 0.0), 2.0
    ),
    "ranked_by_text": _capped("ranked_by_text", 1.0),
    "summed_keys": _capped("summed_keys", 2.0),
    "type_mismatches": _capped("type_mismatches", 2.0),
    "lost_aggregate": _capped("lost_aggregate", 1.0),
    "ambiguous_dates": _capped("ambiguous_dates", 2.0),
    "grouped_by_value": _capped("grouped_by_value", 2.0),
    "lost_grouping": _capped("lost_grouping", 1.0),
    "inferred_measures": _capped("inferred_measures", 1.0),
    "value_or_column": _capped("value_or_column", 2.0),
    "bare_flags": _capped("bare_flags", 1.0),
    "degenerate_groups": _capped("degenerate_groups", 2.0),
    "unasked_keys": _capped("unasked_keys", 2.0),
    "unexpressed_definitions": _capped("unexpressed_definitions", 2.0),
    "duplicate_selects": _capped("duplicate_selects", 2.0),
    "grouped_by_measure": _capped("grouped_by_measure", 2.0),
    "uncounted": _capped("uncounted", 1.0),
    "lost_disjunction": _capped("lost_disjunction", 1.0),
    "counted_superlatives": _capped("counted_superlatives", 1.0),
    "summed_non_additive": _capped("summed_non_additive", 1.0),
    "lost_contains": _capped("lost_contains", 1.0),
    "uncounted_thresholds": _capped("uncounted_thresholds", 1.0),
    "ranked_attributes": _capped("ranked_attributes", 1.0),
    "shown_flags": _capped("shown_flags", 1.0),
    "unjustified_columns": _capped("unjustified_columns", 1.0),
    "echoed_values": _capped("echoed_values", 1.0),
    "unclear_value_roles": _capped("unclear_value_roles", 1.0),
    "joins": lambda signals: min(max(signals.get("tables", 1.0) - 1.0, 0.0), 3.0),
    "unshown_named_tables": _capped("unshown_named_tables", 1.0),
    "bare_count_thresholds": _capped("bare_count_thresholds", 1.0),
    "mismatched_aggregates": _capped("mismatched_aggregates", 1.0),
    "generic_word_columns": _capped("generic_word_columns", 1.0),
    "two_way_activity": _capped("two_way_activity", 1.0),
    "grouped_by_quantity": _capped("grouped_by_quantity", 1.0),
    "counted_labels": _capped("counted_labels", 1.0),
    "tested_flags_shown": _capped("tested_flags_shown", 1.0),
}
"""The model's inputs, each a number read from the signals (shares, or counts capped so one
odd question cannot dominate the fit)."""


def features(signals: dict[str, float]) -> dict[str, float]:
    return {name: read(signals) for name, read in FEATURES.items()}


_REASONS = {
    "unknown_share": "some words of the question matched nothing in this database",
    "weak_links": "some words matched only loosely (a synonym or part of a name)",
    "unused_mentions": "something the question names was given no role in the query",
    "lost_negation": "a 'not', 'no' or 'without' could not be expressed",
    "unasked_grouping": "the query groups rows though the question asks for no breakdown",
    "subject_unnamed": "the question does not name what it is about",
    "key_literals": "a number was read as an identifier",
    "unnamed_tables": "the query joins through tables the question does not mention",
    "lost_qualifiers": "a qualifier (such as 'still', 'late', 'share', 'per quarter') was not used",
    "guessed_values": "a value was not found among the column's stored values",
    "unseen_names": "a name was not among the sampled values and was read as a row's label",
    "borrowed_label": "the rows are shown by a name that seems to belong to something else",
    "borrowed_reference": "the rows are shown by a column that refers to another table's rows",
    "far_weak_links": "a loosely matched word pulled in a table the question does not name",
    "contradictions": "two conditions on the same column contradict each other",
    "ranked_by_text": "a top list would be ranked by a text column",
    "summed_keys": "an identifier would be added up or averaged",
    "type_mismatches": "a date would be compared with a plain number, or text added up",
    "lost_aggregate": "an 'average', 'total' or similar word was not used",
    "ambiguous_dates": "the table has several dates and the question does not say which one",
    "grouped_by_value": "'each <value>' was read as a breakdown by that value's column",
    "lost_grouping": "a breakdown ('each', 'per') was asked for but not used",
    "inferred_measures": "the measure was inferred from the table, not named",
    "value_or_column": "a word is both a stored value here and a column of another table",
    "bare_flags": "the answer would be bare yes/no flags, not the rows they describe",
    "degenerate_groups": "an aggregate would be taken over groups of one row or of one value",
    "unasked_keys": "the answer would show bare identifiers the question did not ask for",
    "unexpressed_definitions": "a business definition the question uses is not in the query",
    "duplicate_selects": "the same figure would be shown twice",
    "grouped_by_measure": "rows would be grouped by an amount the question does not name",
    "uncounted": "the question asks 'how many' but the query would list rows, not count them",
    "lost_disjunction": "the question joins two conditions with 'or'; the query requires both",
    "counted_superlatives": "a superlative ('highest') was read as the most common value",
    "summed_non_additive": "ages, years, rates or scores would be added up",
    "lost_contains": "the question asks for text containing a part; the query matches it whole",
    "uncounted_thresholds": "a bound on how many rows ('3 or more movies') was not read as a count",
    "ranked_attributes": "the question ranks rows, the query ranks one of their attributes",
    "shown_flags": "a yes/no column would be shown instead of picking the rows it marks",
    "echoed_values": "the answer would only repeat the values the question gives",
    "unclear_value_roles": (
        "a name is stored in two columns of one table that play two roles; one was picked"
    ),
    "unjustified_columns": (
        "a column would be read from a table the question does not name, by a loosely matched word"
    ),
    "unshown_named_tables": (
        "a table the question asks to see is joined, but none of its columns is shown"
    ),
    "bare_count_thresholds": (
        "a number the question gives was read as a count of rows, though no noun follows it"
    ),
    "mismatched_aggregates": "an 'average', 'maximum' or 'minimum' was read as another aggregate",
    "generic_word_columns": (
        "a column was chosen by a generic word ('number') alone; its other words are not said"
    ),
    "tested_flags_shown": "the answer would show a yes/no column its own condition fixes",
    "counted_labels": "rows would be counted per the name of each row: every group holds one row",
    "grouped_by_quantity": (
        "'per' a counted unit was read as a breakdown by how many, not as a ratio"
    ),
    "two_way_activity": (
        "'active' is said both by a status value and by an end date not yet set; one was picked"
    ),
    "unknown_words": "some words of the question matched nothing in this database",
    "joins": "the answer needs several tables joined, each join a chance to misread",
    "ambiguous_joins": "two tables refer to each other in more than one way; one was picked",
    "tied_links": "a word fits several columns equally well; one was picked",
    "late_shown": "a column named in the question's condition would be shown, not applied",
    "extra_shown": "the answer would show more columns than the question seems to ask for",
    "unanswered_when": "the question asks 'when' but the answer shows no date",
    "counted_rows": "the question counts something it names as a column, the query counts rows",
}


COMPETING = ("ambiguous_joins", "tied_links", "ambiguous_dates")
"""Signals of two readings that fit the question equally well (no margin between the best and
the second best): the engine declines and offers both, whatever the rest of the score says."""


def competing_readings(signals: dict[str, float]) -> bool:
    return any(signals.get(name, 0.0) > 0 for name in COMPETING)


MODEL = load_model()
ANSWER_THRESHOLD = MODEL.threshold
"""Readings scoring below this are offered as suggestions, not answered."""


def assess(signals: dict[str, float], model: Model = MODEL) -> Assessment:
    """The confidence of a reading from its signals (parser's and SQL's together): the
    probability, by the fitted model, that its result is the right one."""
    if signals.get("star"):
        return Assessment(0.0, ["the reading would show every column instead of an answer"])
    if signals.get("dangling_columns"):
        return Assessment(0.0, ["the query would read a column of a table it does not join"])
    if signals.get("ranked_single_row"):
        return Assessment(0.0, ["the answer adds every row up into one, yet ranks by a column"])
    feats = features(signals)
    z = model.bias + sum(model.weights[k] * v for k, v in feats.items())
    confidence = 1.0 / (1.0 + math.exp(-z))
    penalties = sorted(
        ((model.weights[k] * v, k) for k, v in feats.items() if model.weights[k] * v < -0.05),
        key=lambda x: x[0],
    )
    return Assessment(confidence, [_REASONS[k] for _, k in penalties if k in _REASONS])
