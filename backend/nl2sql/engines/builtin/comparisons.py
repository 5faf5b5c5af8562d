"""Comparisons: "more than 10", "between 5 and 9", "older than", "above the average",
and counts compared with a number ("customers with at least 20 invoices", HAVING)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter, Measure
from backend.nl2sql.engines.builtin.lexicon import MONTHS
from backend.nl2sql.engines.builtin.temporal import TimeReading


class ComparisonReading(TimeReading):
    """Pass: comparison cues become filters or HAVING conditions."""

    def _comparisons(self) -> None:
        for cue in self.cues:
            if cue.kind not in ("cmp", "postcmp"):
                continue
            if cue.kind == "postcmp":
                prev = self.tokens[cue.start - 1] if cue.start > 0 else None
                if prev is None or prev.kind != "number" or prev.index in self.used_tokens:
                    continue
                lits = [prev]
            else:
                first = self.literal_after(cue.end)
                if first is None:
                    if self._compare_with_aggregate(cue):
                        continue
                    if cue.payload in ("before", "after", "since"):
                        continue
                    raise self.decline("a comparison has no value to compare with")
                lits = [first]
                if cue.payload == "between":
                    second = self.literal_after(first.index + 1, max_gap=1)
                    if second is None:
                        raise self.decline("'between' needs two values")
                    lits.append(second)
            for tok in lits:
                self._use_token(tok)
            values = [self._literal_value(t) for t in lits]
            op = cue.payload
            after_pos = (lits[-1].index + 1) if cue.kind == "cmp" else cue.end
            k_after = self.mention_after(after_pos, max_gap=0)
            if op in ("before", "after", "since") or any(
                t.kind == "date" or (t.kind == "word" and t.lemma in MONTHS) for t in lits
            ):
                self._date_comparison(cue, lits)
                continue
            if op in ("older", "younger"):
                col = self._column_named(("age",)) or None
                if col is None:
                    raise self.decline("no age column to compare with")
                self.intent.filters.append(Filter(col, ">" if op == "older" else "<", values))
                continue
            if op in ("cheaper", "pricier"):
                col = self._column_named(("price",)) or self._column_named(("cost",))
                if col is None:
                    raise self.decline("no price column to compare with")
                self.intent.filters.append(Filter(col, "<" if op == "cheaper" else ">", values))
                continue
            anchor = cue.start if cue.kind == "cmp" else lits[0].index
            if cue.end - cue.start == 3 and self.tokens[cue.end - 1].lemma == "than":
                inner = self.mention_after(cue.start + 1, max_gap=0, kinds=("column",))
                if inner is not None and self.mentions[inner].end <= cue.end:
                    anchor = self.mentions[inner].end
            if k_after is not None and self.mentions[k_after].kind == "column":
                counted = self.column_of(k_after)
                if (
                    counted is not None
                    and counted.kind == "text"
                    and counted.table.lower() != self.intent.table.lower()
                ):
                    self._use(k_after)
                    measure = Measure(None, "COUNT", count_table=counted.table)
                    self.intent.having.append(Filter(measure, op, values))
                    self.note("having", f"count of {counted.table} {op} {values}")
                    continue
            counts_focus = k_after is not None and (
                (
                    self.mentions[k_after].kind == "table"
                    and (self.table_of(k_after) or "").lower() == self.intent.table.lower()
                )
                or self.mentions[k_after].kind == "value"
            )
            if counts_focus and k_after is not None:
                # "cities with more than one student", "buildings with at least 10 professors"
                if self.mentions[k_after].kind == "table":
                    self._use(k_after)
                k_group = self.mention_before(anchor, max_gap=2, kinds=("column",))
                if k_group is not None:
                    self._group_key(k_group)
                measure = Measure(None, "COUNT", count_table=self.intent.table)
                self.intent.having.append(Filter(measure, op, values))
                self.note("having", f"count {op} {values}")
                continue
            if k_after is not None and self.mentions[k_after].kind == "table":
                table = self.table_of(k_after) or ""
                if table.lower() != self.intent.table.lower():
                    self._use(k_after)
                    measure = Measure(None, "COUNT", count_table=table)
                    self.intent.having.append(Filter(measure, op, values))
                    self.note("having", f"count of {table} {op} {values}")
                    continue
            k_before = self.mention_before(anchor, max_gap=2, kinds=("column",))
            if k_after is not None and self.mentions[k_after].kind == "column":
                after_col = self.column_of(k_after)
                if k_before is None or (
                    after_col is not None
                    and after_col.kind == "numeric"
                    and self.mentions[k_after].start == after_pos
                ):
                    k_before = k_after
            if k_before is None and all(isinstance(v, int) and 1800 <= v <= 2200 for v in values):
                # "races held between 2014 and 2017": years compare with a year or date column
                self._date_comparison(cue, lits)
                continue
            if k_before is None:
                k_before = self.mention_before(anchor, max_gap=2, kinds=("table",))
                if k_before is not None and self.mentions[k_before].columns:
                    pass
                else:
                    raise self.decline("could not tell which column a comparison applies to")
            col = self.column_of(k_before)
            if col is None:
                raise self.decline("could not tell which column a comparison applies to")
            if col.kind == "text" and all(isinstance(v, int | float) for v in values):
                # "buildings with more than 10": a number against a text column counts rows
                self._group_key(k_before)
                measure = Measure(None, "COUNT", count_table=self.intent.table)
                self.intent.having.append(Filter(measure, op, values))
                continue
            self._use(k_before)
            agg = self._agg_before(self.mentions[k_before].start)
            if agg is not None:
                self.intent.having.append(Filter(Measure(col, agg), op, values))
            else:
                self.intent.filters.append(Filter(col, op, values))
            self.note("filters", f"{col.name} {op} {values}")

    def _agg_before(self, pos: int) -> str | None:
        for cue in self.cues:
            if cue.kind == "agg" and cue.end <= pos and self.gap(cue.end, pos) == 0:
                self.cues.remove(cue)
                return cue.payload
        return None

    def _compare_with_aggregate(self, cue: Cue) -> bool:
        """`price higher than the average` -> price > (SELECT AVG(price) ...)."""
        agg = next(
            (
                c
                for c in self.cues
                if c.kind == "agg" and c.start >= cue.end and self.gap(cue.end, c.start) == 0
            ),
            None,
        )
        if agg is None or cue.payload in ("between", "before", "after", "since"):
            return False
        k2 = self.mention_after(agg.end, max_gap=1, kinds=("column",))
        k = self.mention_before(cue.start, max_gap=2, kinds=("column",))
        if k2 is not None:
            after = self.column_of(k2)
            if k is not None and self.column_of(k) == after:
                self._use(k)
            k = k2
        if k is None:
            return False
        col = self.column_of(k)
        if col is None:
            return False
        self._use(k)
        self.cues.remove(agg)
        op = {"older": ">", "younger": "<"}.get(cue.payload, cue.payload)
        self.intent.filters.append(Filter(col, op, [], subquery_agg=agg.payload))
        self.note("filters", f"{col.name} {op} {agg.payload.lower()}")
        return True
