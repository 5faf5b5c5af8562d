"""Several of the semantic layer's measures in one answer, each with its own filter ("list
value and MRR", where MRR counts active subscriptions only): one query over the rows, each
measure's filter moved inside its own aggregates as `CASE WHEN filter THEN x END`, so that it
restricts that measure and not the others. Aggregates ignore the NULLs the CASE leaves, so
SUM, AVG, MIN, MAX and COUNT of a column (distinct or not) keep their meaning; COUNT(*) counts
the rows where the filter holds."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    from backend.nl2sql.engines.builtin.intents import Measure
    from backend.semantic.layer import Measure as LayerMeasure


def _label(name: str) -> str:
    return re.sub(r"\W+", "_", name.lower()).strip("_") or "measure"


def _aggregates_only(sql: str) -> bool:
    """Whether every column the fragment reads sits inside an aggregate (a CASE can go in)."""
    try:
        tree = sqlglot.parse_one(sql)
    except sqlglot.errors.ParseError:
        return False
    if tree.find(exp.AggFunc) is None:
        return False
    return all(col.find_ancestor(exp.AggFunc) is not None for col in tree.find_all(exp.Column))


def own_filters(
    measures: list[tuple[int, Measure]], named: list[LayerMeasure], said: set[str]
) -> set[str] | None:
    """Give each layer measure whose filter the question does not say itself (`said`: the
    conditions of the named filters it uses) that filter as its own; the filters moved, or
    None when a measure's expression cannot take one inside its aggregates."""
    if len({(n.time_column or "").lower() for n in named if n.time_column}) > 1:
        return None  # "sign-ups and churned customers in 2024": each dated by its own day
    by_label = {_label(n.name): n for n in named}
    moved: set[str] = set()
    for _, m in measures:
        layer = by_label.get(m.label or "") if m.sql is not None else None
        if layer is None or not layer.filter or layer.filter in said:
            continue
        if (
            m.sql is None
            or not _aggregates_only(m.sql)
            or not _aggregates_only(f"COUNT({layer.filter})")
        ):
            return None
        m.own_filter = layer.filter
        moved.add(layer.filter)
    return moved


def only_where(fragment: exp.Expr, condition: exp.Expr) -> exp.Expr:
    """`fragment` with every aggregate restricted to the rows where `condition` holds."""

    def restrict(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.AggFunc):
            return node
        arg = node.this
        distinct = isinstance(arg, exp.Distinct)
        inner = arg.expressions[0] if distinct and arg.expressions else arg
        if isinstance(inner, exp.Star) or inner is None:
            inner = exp.Literal.number(1)
        case = exp.Case(ifs=[exp.If(this=condition.copy(), true=inner.copy())])
        new = node.copy()
        new.set("this", exp.Distinct(expressions=[case]) if distinct else case)
        return new

    return fragment.copy().transform(restrict)
