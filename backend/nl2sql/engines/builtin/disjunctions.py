"""Two conditions joined by "or": "movies made before 1980 or directed by James Cameron".

The reading fills its filters as one list, ANDed. When the question says "or" once, between the
places that name the values of the query's only two conditions (the value of one before the
"or", the value of the other after it), on two different columns of one table, the query
requires either condition instead (`year < 1980 OR director = 'James Cameron'`). Anything less
clear stays as it is, and the doubts pass (`doubts.lost_disjunction`) keeps declining it:
several "or"s, an "either"/"neither", joins or groups, a condition whose value the question
does not spell out, or both values on the same side of the "or". Two bounds of one column
("made before 2000 or after 2010") are read the same way: outside the range, where requiring
both would leave no row.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.doubts import _NOT_A_CHOICE, _kept_conditions, either_variant

_OR = re.compile(r"\bor\b", re.IGNORECASE)
_OTHER_CHOICES = re.compile(r"\b(?:either|neither|nor|whether)\b", re.IGNORECASE)


def _literal_at(question: str, literal: exp.Literal) -> list[int]:
    """Where the literal's text stands in the question (word-bounded, case-insensitive)."""
    text = str(literal.this).strip()
    if not text:
        return []
    if literal.is_number:
        number = float(text)
        forms = {text, str(int(number))} if number.is_integer() else {text}
    else:
        forms = {text}
    out: list[int] = []
    for form in forms:
        pattern = re.compile(r"(?<![\w.])" + re.escape(form) + r"(?![\w])", re.IGNORECASE)
        out += [m.start() for m in pattern.finditer(question)]
    return out


def or_between_conditions(sql: str, dialect: str, question: str) -> str | None:
    """The query with its two conditions joined by OR, when the question says so (see the
    module's note); None otherwise."""
    plain = _NOT_A_CHOICE.sub(" ", question)
    ors = [m.start() for m in _OR.finditer(plain)]
    if len(ors) != 1 or _OTHER_CHOICES.search(question):
        return None
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(tree, exp.Select) or len(list(tree.find_all(exp.Select))) != 1:
        return None
    if tree.args.get("joins") or tree.args.get("group") or tree.args.get("having"):
        return None
    if any(tree.find_all(exp.Or, exp.Union)):
        return None
    kept = _kept_conditions(tree)
    if len(kept) != 2:
        return None
    columns = [{c.name.lower() for c in cond.find_all(exp.Column)} for cond in kept]
    if any(len(c) != 1 for c in columns):
        return None
    bounds = all(isinstance(c, exp.GT | exp.GTE | exp.LT | exp.LTE) for c in kept)
    if columns[0] == columns[1] and not bounds:
        return None  # "A or B" of one column is its list of values, read elsewhere
    sides: list[set[bool]] = []
    for cond in kept:
        literals = list(cond.find_all(exp.Literal))
        if len(literals) != 1 or isinstance(cond, exp.In):
            return None
        at = _literal_at(question, literals[0])
        if not at:
            return None
        sides.append({pos > ors[0] for pos in at})
    if sides[0] == sides[1] or any(len(s) != 1 for s in sides):
        return None  # both values on one side of the "or", or a value named on both sides
    return either_variant(tree, dialect)
