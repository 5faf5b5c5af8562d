"""Measures computed from two columns of one row without a semantic layer: "quantity times unit
cost", "seats multiplied by price", "amount plus tax", "price minus discount". The two columns
(numeric, of one table or of two tables joined directly) become one expression, aggregated as
the question says ("total", "average"; a total when it says nothing), shown under a name made
of the two columns'."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.rates import RateReading
from backend.nl2sql.engines.builtin.reading import is_key
from backend.nl2sql.engines.builtin.sqlbuild import plain_identifier

_OPERATORS: dict[tuple[str, ...], tuple[str, str]] = {
    ("times",): ("*", "x"),
    ("time",): ("*", "x"),
    ("multiplied", "by"): ("*", "x"),
    ("multiply", "by"): ("*", "x"),
    ("*",): ("*", "x"),
    ("×",): ("*", "x"),
    ("plus",): ("+", "plus"),
    ("+",): ("+", "plus"),
    ("minus",): ("-", "minus"),
    ("less",): ("-", "minus"),
}
"""Words joining two columns into one figure: the SQL operator and the word in its name."""
_AGGREGATES = frozenset({"SUM", "AVG", "MIN", "MAX"})
_INCLUDING = frozenset({"including", "incl", "inclusive"})
_AMOUNT_WORDS = frozenset({"amount", "price", "total", "cost", "revenue", "fee", "subtotal"})
"""Last words of the column an "including ..." adds to."""


class ProductReading(RateReading):
    """Pass (before the aggregates): "X times Y" between two numeric columns of one table."""

    def _computed_measures(self) -> None:
        self._amounts_including()
        for k, left in enumerate(self.mentions):
            if k in self.used or left.kind != "column":
                continue
            found = self._operator_at(left.end)
            if found is None:
                continue
            (op, word), after = found
            j = next(
                (
                    j
                    for j, m in enumerate(self.mentions)
                    if left.end <= m.start <= after < m.end and j not in self.used
                ),
                None,
            )  # (the linker may have read the operator word into the second column's name)
            if j is None or self.mentions[j].kind != "column":
                continue
            a, b = self.column_of(k), self.column_of(j, prefer=[c.table for c in left.columns])
            if not _operands(a, b) or a is None or b is None:
                continue
            if self.index.referred_row(a) is not None or self.index.referred_row(b) is not None:
                continue  # a reference to another row is no figure
            if a.table.lower() != b.table.lower() and not self.index._joined(a.table, b.table):
                continue  # columns of tables joined directly only (one row of each per pair)
            if not all(plain_identifier(x) for x in (a.table, a.name, b.table, b.name)):
                continue
            agg_cue = self._aggregate_for(left.start)
            agg = agg_cue.payload if agg_cue is not None else "SUM"
            expression = f"{agg}({a.table}.{a.name} {op} {b.table}.{b.name})"
            label = f"{agg.lower()}_{a.name}_{word}_{b.name}"
            tables = list(dict.fromkeys([a.table, b.table]))
            measure = Measure(None, "LAYER", sql=expression, label=label, sql_tables=tables)
            self._use(k)
            self._use(j)
            self.used_tokens.update(range(left.end, after))
            if self.mentions[j].start < after:
                self.mentions[j].start = after
            self._spend_between(agg_cue, left.start)
            self.measures.append((left.start, measure))
            self.note("aggregates", f"{agg.lower()}({a.name} {op} {b.name})")

    def _amounts_including(self) -> None:
        """ "what did we invoice in 2024 including tax", "revenue incl. shipping": the
        table's one amount plus the column named after "including" (a total unless an
        aggregate word says otherwise)."""
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind != "column" or m.start == 0:
                continue
            lead = self.tokens[m.start - 1]
            if lead.lemma not in _INCLUDING:
                continue
            added = self.column_of(k)
            if added is None or added.kind != "numeric" or is_key(added):
                continue
            if not all(plain_identifier(x) for x in (added.table, added.name)):
                continue
            amounts = [
                c for c in self.index.columns_of.get(added.table.lower(), [])
                if c != added and c.kind == "numeric" and not is_key(c)
                and c.words and c.words[-1] in _AMOUNT_WORDS and plain_identifier(c.name)
            ]  # fmt: skip
            exact = [c for c in amounts if len(c.words) == 1]
            pick = exact if exact else amounts
            if len(pick) != 1:
                continue
            base = pick[0]
            named = [
                i for i, x in enumerate(self.mentions)
                if i not in self.used and x.kind == "column" and x.columns == [base]
            ]  # fmt: skip
            if named and self.mentions[named[0]].end != lead.index:
                continue  # the amount named elsewhere: not the one tax is added to
            at = self.mentions[named[0]].start if named else m.start
            agg_cue = self._aggregate_for(at)
            agg = agg_cue.payload if agg_cue is not None else "SUM"
            expression = f"{agg}({base.table}.{base.name} + {added.table}.{added.name})"
            label = f"{agg.lower()}_{base.name}_plus_{added.name}"
            self.measures.append(
                (
                    m.start,
                    Measure(None, "LAYER", sql=expression, label=label, sql_tables=[base.table]),
                )
            )
            self._use(k)
            if named:
                self._use(named[0])  # "amount including tax": the amount added to
            self._use_token(lead)
            self._spend_between(agg_cue, at)
            self.note("aggregates", f"{agg.lower()}({base.name} + {added.name})")
            return

    def _operator_at(self, pos: int) -> tuple[tuple[str, str], int] | None:
        """The operator words starting at token `pos` and where the second operand starts."""
        for words, op in _OPERATORS.items():
            span = self.tokens[pos : pos + len(words)]
            if len(span) == len(words) and all(
                t.lemma == w or t.text.lower() == w for t, w in zip(span, words, strict=True)
            ):
                after = pos + len(words)
                while after < len(self.tokens) and self.tokens[after].lemma in ("the", "its"):
                    after += 1
                return op, after
        return None

    def _aggregate_for(self, pos: int) -> Cue | None:
        """The aggregate word said of the computed figure: the nearest one before it ("total
        value of treatments (quantity times unit cost)"), when nothing else lies between."""
        before = [
            c for c in self.cues if c.kind == "agg" and c.payload in _AGGREGATES and c.end <= pos
        ]
        if not before:
            return None
        cue = before[-1]
        between = [
            m
            for i, m in enumerate(self.mentions)
            if i not in self.used and cue.end <= m.start < pos and m.kind == "column"
        ]
        return None if between else cue

    def _spend_between(self, cue: Cue | None, pos: int) -> None:
        """The aggregate word and the name the figure is given ("value", "cost") are read."""
        if cue is None:
            return
        self.cues.remove(cue)
        self.used_tokens.update(range(cue.start, cue.end))
        for i, m in enumerate(self.mentions):
            if i not in self.used and cue.end <= m.start and m.end <= pos and m.kind == "column":
                self._use(i)


def _operands(a: ColumnRef | None, b: ColumnRef | None) -> bool:
    """Two numeric, non-key columns."""
    return (
        a is not None
        and b is not None
        and a != b
        and a.kind == "numeric"
        and b.kind == "numeric"
        and not is_key(a)
        and not is_key(b)
    )
