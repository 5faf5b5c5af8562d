"""A figure computed from several of the semantic layer's measures, each dated by its own date:
"net new customers per quarter in 2024: sign-ups minus churned accounts", "revenue minus
outstanding amount by month", "cash collected divided by amount invoiced in 2024".

One query over the joined rows cannot give it: sign-ups are dated by the sign-up date, churns
by the churn date, and a row of one is not a row of the other. So each part is read as a
question of its own (the part's words with the rest of the question: its time bucket, period
and other conditions), each part's query aggregates its own rows by its own date, and the parts
are put side by side on the bucket they share:

    SELECT k1, COALESCE(SUM(CASE WHEN part = 1 THEN v END), 0)
             - COALESCE(SUM(CASE WHEN part = 2 THEN v END), 0) AS net_new_customers
    FROM (SELECT 1 AS part, k1, v FROM (<sign-ups per quarter in 2024>) AS p1
          UNION ALL SELECT 2 AS part, k1, v FROM (<churned accounts ...>) AS p2) AS parts
    GROUP BY k1 ORDER BY k1

A bucket one part has no rows in counts as 0 for a sum or count (none that period) and stays
unknown (NULL) for an average. Without a bucket each part is one figure and the result is one
row. A part the engine cannot read, or parts grouped differently, decline the whole question.

`DefinitionReading` recognises the wording and raises `CombinedFigure`; the generator reads the
parts (`combined_generation`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.base import Generation, GenerationRequest, QuestionNotUnderstood
from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.sqlbuild import DIALECTS

OPERATORS = {"minus": "-", "plus": "+", "less": "-", "divided": "/"}
SIDE = ","
"""Parts named as a list ("MRR and revenue"): each its own column, no arithmetic."""
"""Words joining two parts of a figure ("divided" is read with its "by")."""
_LEAD_WORDS = frozenset({"the", "number", "of", "count", "total", "all", "our", "amount"})
"""Words before a part that belong to it ("the number of churned accounts")."""
_HEADLINE_WORDS = frozenset({"net", "the", "our", "total", "overall", "a", "an"})
_ADDITIVE = (exp.Sum, exp.Count)


class CombinedFigure(QuestionNotUnderstood):
    """The question asks for a figure computed from several layer definitions."""

    def __init__(self, plan: CombinedPlan) -> None:
        super().__init__(
            "a figure computed from several measures is not supported",
            recognised={"measures": list(plan.names)},
        )
        self.plan = plan


@dataclass(frozen=True, slots=True)
class CombinedPlan:
    questions: tuple[str, ...]
    """Each part as a question of its own, in order."""
    operators: tuple[str, ...]
    """`-`, `+` or `/` between consecutive parts."""
    names: tuple[str, ...]
    """The definitions the parts name."""
    label: str


def plan_from_tokens(
    tokens: list[Token],
    spans: list[tuple[int, int, str]],
    colon: int | None,
    stops: frozenset[int] = frozenset(),
    conditions: frozenset[int] = frozenset(),
) -> CombinedPlan | None:
    """The combination the question spells, given the layer definitions' spans (start, end,
    name) in token order; `colon` is the index of a ":" before the combination, whose left
    side names the figure and gives its context. A headline that names no definition runs
    from the start to the first of `stops` (cues, numbers, dates) and may hold none of
    `conditions` (words naming a value or a column: they would be lost). None: no combination
    is spelled."""
    chain = _chain(tokens, spans, colon)
    if chain is None:
        return None
    parts, operators = chain
    first, last = parts[0][0], parts[-1][1]
    words = [t.text for t in tokens]
    if colon is not None and colon < first:
        frame = list(range(0, colon))
        headline = _headline(tokens, [s for s in spans if s[1] <= colon], colon, stops)
        if headline is not None and any(k in conditions for k in range(*headline)):
            return None
        if headline is None:
            return None
        label = " ".join(words[k] for k in range(*headline))
        before = [k for k in frame if k < headline[0]]
        after = [k for k in frame if k >= headline[1]]
        after += [k for k in range(last, len(tokens)) if tokens[k].kind != "punct"]
    else:
        before = [k for k in range(0, first) if tokens[k].text != ":"]
        after = [k for k in range(last, len(tokens)) if tokens[k].kind != "punct"]
        label = " ".join(
            f"{name} {_WORD[op]}" for (_, _, name), op in zip(parts, [*operators, ""], strict=True)
        )
    questions = tuple(
        " ".join([*(words[k] for k in before), *words[s:e], *(words[k] for k in after)]).strip()
        + "?"
        for s, e, _ in parts
    )
    return CombinedPlan(
        questions=questions,
        operators=tuple(operators),
        names=tuple(name for _, _, name in parts),
        label=_label(label) or "figure",
    )


_WORD = {"-": "minus", "+": "plus", "/": "divided by", SIDE: "and", "": ""}


def side_by_side_plan(
    tokens: list[Token], spans: list[tuple[int, int, str]]
) -> CombinedPlan | None:
    """ "MRR and revenue by region", "revenue, MRR and discounts given in 2024": measures
    named one after another, joined by "and" or a comma, each its own column. The parts are
    read as questions of their own (over their own rows, by their own dates) and put side by
    side on the groups they share. None: the measures are not named as one list."""
    if len(spans) < 2:
        return None
    for before, after in zip(spans, spans[1:], strict=False):
        between = tokens[before[1] : after[0]]
        if not between or not all(t.lemma in _LIST_JOINS for t in between):
            return None
        if sum(t.lemma in ("and", ",") for t in between) != 1:
            return None
    if len({name for _, _, name in spans}) < len(spans):
        return None
    first = _lead_start(tokens, spans[0][0], 0)
    last = spans[-1][1]
    words = [t.text for t in tokens]
    before_words = [words[k] for k in range(0, first) if tokens[k].text != ":"]
    after_words = [words[k] for k in range(last, len(tokens)) if tokens[k].kind != "punct"]
    parts = [(first, spans[0][1], spans[0][2]), *spans[1:]]
    questions = tuple(
        " ".join([*before_words, *words[s:e], *after_words]).strip() + "?" for s, e, _ in parts
    )
    return CombinedPlan(
        questions=questions,
        operators=(SIDE,) * (len(spans) - 1),
        names=tuple(name for _, _, name in spans),
        label="_and_".join(_label(name) for _, _, name in spans)[:60] or "figures",
    )


_LIST_JOINS = frozenset({"and", ",", "the", "our", "total"})


def _chain(
    tokens: list[Token], spans: list[tuple[int, int, str]], colon: int | None
) -> tuple[list[tuple[int, int, str]], list[str]] | None:
    """The parts (spans widened over their lead words) and the operators between them."""
    after = [s for s in spans if colon is None or s[0] > colon]
    for i in range(len(after) - 1):
        parts = [after[i]]
        operators: list[str] = []
        for nxt in after[i + 1 :]:
            op = _operator(tokens, parts[-1][1], nxt[0])
            if op is None:
                break
            operators.append(op)
            parts.append(nxt)
        if not operators:
            continue
        if "/" in operators and len(parts) > 2:
            return None  # "a divided by b minus c": no order of operations guessed
        if len({name for _, _, name in parts}) < len(parts):
            return None  # one definition said twice is not a figure from several
        floor = colon + 1 if colon is not None else 0
        widened = [(_lead_start(tokens, parts[0][0], floor), parts[0][1], parts[0][2])]
        widened += [(s, e, name) for s, e, name in parts[1:]]
        return widened, operators
    return None


def _operator(tokens: list[Token], end: int, start: int) -> str | None:
    """The operator the words between two parts say, or None."""
    between = [t for t in tokens[end:start] if t.kind == "word"]
    if len(between) != tokens[end:start].__len__() or not between:
        return None
    op = OPERATORS.get(between[0].lemma)
    if op is None:
        return None
    rest = between[1:]
    if op == "/":
        if not rest or rest[0].lemma != "by":
            return None
        rest = rest[1:]
    return op if all(t.lemma in _LEAD_WORDS for t in rest) else None


def _lead_start(tokens: list[Token], start: int, floor: int) -> int:
    while start > floor and tokens[start - 1].lemma in _LEAD_WORDS:
        start -= 1
    return start


def _headline(
    tokens: list[Token], spans: list[tuple[int, int, str]], colon: int, stops: frozenset[int]
) -> tuple[int, int] | None:
    """The words before the colon that name the figure: the first definition named there with
    its qualifying words ("Net new customers"), else the words at the start that link to
    the words at the start up to the question's first cue ("Net growth per quarter ...")."""
    if spans:
        start, end, _ = spans[0]
        while start > 0 and tokens[start - 1].lemma in _HEADLINE_WORDS:
            start -= 1
        return start, end
    end = 0
    while end < colon and tokens[end].kind == "word" and end not in stops:
        end += 1
    if end == 0 or any(tokens[k].lemma in _PREPOSITIONS for k in range(end)):
        return None  # ("in 2024 ...": no name of its own before the context)
    return 0, end


_PREPOSITIONS = frozenset({"in", "for", "per", "by", "during", "of", "each", "every", "since"})


def _label(text: str) -> str:
    return re.sub(r"\W+", "_", text.lower()).strip("_")[:60]


def combined_generation(
    figure: CombinedFigure,
    request: GenerationRequest,
    generate: Callable[[GenerationRequest], Generation],
) -> Generation:
    """Read each part as its own question and put their figures side by side."""
    plan = figure.plan
    parts: list[Generation] = []
    for question in plan.questions:
        try:
            parts.append(generate(replace(request, question=question, history=[])))
        except QuestionNotUnderstood as exc:
            raise QuestionNotUnderstood(
                f"a figure computed from several measures: the part {question!r} could not be "
                f"read ({exc})",
                recognised={"measures": list(plan.names)},
            ) from exc
    dialect = _sqlglot_dialect(request.dialect)
    shapes = [_shape(p.sql, dialect) for p in parts]
    if any(s is None for s in shapes):
        raise figure
    keys = {len(s[1]) for s in shapes if s is not None}
    if len(keys) != 1:
        raise QuestionNotUnderstood(
            "a figure computed from several measures: the parts are grouped differently",
            recognised={"measures": list(plan.names)},
        )
    width = keys.pop()
    if SIDE in plan.operators and len({_key_names(p.sql, dialect) for p in parts}) != 1:
        raise QuestionNotUnderstood(
            "figures side by side: the parts are grouped by different columns",
            recognised={"measures": list(plan.names)},
        )
    sql = _compose(
        [s for s in shapes if s is not None],
        plan.operators,
        width,
        plan.label,
        dialect,
        names=plan.names,
        key_names=_key_labels(parts[0].sql, dialect) if SIDE in plan.operators else (),
    )
    confidence = min((p.confidence for p in parts if p.confidence is not None), default=None)
    explained = "; ".join(
        f"({k}) {p.explanation.rstrip('.')}" for k, p in enumerate(parts, start=1)
    )
    words = " ".join(
        f"({k}){' ' + _WORD[op] if op else ''}"
        for k, op in enumerate([*plan.operators, ""], start=1)
    )
    recognised: dict[str, object] = {"measures": list(plan.names), "combined": words}
    return Generation(
        sql=sql,
        explanation=(
            f"Shows {plan.label.replace('_', ' ')} as {words}, each part aggregated over its own "
            f"rows by its own date{' and put together per ' + 'bucket' if width else ''}: "
            f"{explained}"
        ),
        model="builtin",
        recognised=recognised,
        confidence=confidence,
    )


def _shape(sql: str, dialect: str) -> tuple[exp.Select, list[str], bool] | None:
    """The part's query with its columns renamed k1.. (its group keys) and v (its figure), no
    order or limit, and whether the figure only sums or counts; None: not that shape."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Select) or tree.args.get("distinct"):
        return None
    group = tree.args.get("group")
    grouped = {g.sql(dialect=dialect) for g in (group.expressions if group else [])}
    keys: list[str] = []
    values: list[exp.Expr] = []
    renamed: list[exp.Expr] = []
    for e in tree.expressions:
        inner = e.this if isinstance(e, exp.Alias) else e
        if inner.sql(dialect=dialect) in grouped:
            name = f"k{len(keys) + 1}"
            keys.append(name)
            renamed.append(exp.alias_(inner.copy(), name))
        else:
            values.append(inner)
            renamed.append(exp.alias_(inner.copy(), "v"))
    if len(values) != 1 or not values[0].find(exp.AggFunc):
        return None
    additive = all(isinstance(a, _ADDITIVE) for a in values[0].find_all(exp.AggFunc))
    tree = tree.copy()
    tree.set("expressions", renamed)
    tree.set("order", None)
    tree.set("limit", None)
    return tree, keys, additive


def _compose(
    shapes: list[tuple[exp.Select, list[str], bool]],
    operators: tuple[str, ...],
    width: int,
    label: str,
    dialect: str,
    *,
    names: tuple[str, ...] = (),
    key_names: tuple[str, ...] = (),
) -> str:
    ratio = operators == ("/",)
    side = SIDE in operators
    keys = [f"k{k}" for k in range(1, width + 1)]
    name = exp.to_identifier(label)
    if not keys:
        scalars: list[exp.Expr] = [
            _zero_if_none(tree.subquery(), additive and not ratio) for tree, _, additive in shapes
        ]
        if side:
            return exp.select(
                *(
                    exp.alias_(f, exp.to_identifier(_label(n)))
                    for f, n in zip(scalars, names, strict=True)
                )
            ).sql(dialect=dialect)
        return exp.select(exp.alias_(_arithmetic(scalars, operators), name)).sql(dialect=dialect)
    selects = [
        exp.select(
            exp.alias_(exp.Literal.number(k), "part"), *(exp.column(c) for c in [*keys, "v"])
        ).from_(tree.subquery(f"p{k}"))
        for k, (tree, _, _) in enumerate(shapes, start=1)
    ]
    union: exp.Query = selects[0]
    for select in selects[1:]:
        union = exp.union(union, select, distinct=False)
    figures: list[exp.Expr] = []
    for k, (_, _, additive) in enumerate(shapes, start=1):
        picked = exp.Case(
            ifs=[
                exp.If(
                    this=exp.EQ(this=exp.column("part"), expression=exp.Literal.number(k)),
                    true=exp.column("v"),
                )
            ]
        )
        figures.append(_zero_if_none(exp.Sum(this=picked), additive and not ratio))
    columns = [exp.column(c) for c in keys]
    shown: list[exp.Expr] = (
        [exp.alias_(f, exp.to_identifier(_label(n))) for f, n in zip(figures, names, strict=True)]
        if side
        else [exp.alias_(_arithmetic(figures, operators), name)]
    )
    labelled: list[exp.Expr] = (
        [
            exp.alias_(c, exp.to_identifier(_label(n))) if _label(n) else c
            for c, n in zip(columns, key_names, strict=True)
        ]
        if key_names
        else list(columns)
    )
    query = (
        exp.select(*labelled, *shown)
        .from_(union.subquery("parts"))
        .group_by(*columns)
        .order_by(*(exp.column(c) for c in keys))
    )
    return query.sql(dialect=dialect)


def _key_names(sql: str, dialect: str) -> tuple[str, ...]:
    """What a part's query groups by: a column's name, or a bucket's form whatever date it
    buckets (each part is dated by its own date)."""
    tree = sqlglot.parse_one(sql, read=dialect)
    group = tree.args.get("group")
    names: list[str] = []
    for key in group.expressions if group else []:
        if isinstance(key, exp.Column):
            names.append(key.name.lower())
            continue
        form = key.copy().transform(
            lambda node: exp.column("d") if isinstance(node, exp.Column) else node
        )
        names.append(form.sql(dialect=dialect))
    return tuple(names)


def _key_labels(sql: str, dialect: str) -> tuple[str, ...]:
    """The names a part's query shows its group keys under (its aliases, or the columns')."""
    tree = sqlglot.parse_one(sql, read=dialect)
    group = tree.args.get("group")
    grouped = [g.sql(dialect=dialect) for g in (group.expressions if group else [])]
    labels = {
        (e.this if isinstance(e, exp.Alias) else e).sql(dialect=dialect): e.alias_or_name
        for e in tree.expressions
    }
    return tuple(labels.get(g, "") for g in grouped)


def _zero_if_none(figure: exp.Expr, additive: bool) -> exp.Expr:
    """A sum or count over no rows is 0; an average over none stays unknown."""
    return exp.Coalesce(this=figure, expressions=[exp.Literal.number(0)]) if additive else figure


def _arithmetic(figures: list[exp.Expr], operators: tuple[str, ...]) -> exp.Expr:
    if operators == ("/",):
        top = exp.Mul(this=exp.Literal.number("1.0"), expression=figures[0])
        bottom = exp.Nullif(this=figures[1], expression=exp.Literal.number(0))
        return exp.Div(this=top, expression=bottom)
    out = figures[0]
    for op, figure in zip(operators, figures[1:], strict=True):
        out = (exp.Sub if op == "-" else exp.Add)(this=out, expression=figure)
    return out


def _sqlglot_dialect(name: str) -> str:
    return DIALECTS.get(name.lower(), name.lower())
