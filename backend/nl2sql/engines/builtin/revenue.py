"""Money taken in, without a semantic layer: "revenue by quarter for 2024", "which plan
generated the most revenue", "how much did we bring in during each quarter". Revenue is the
money the business has actually received: an amount added up over rows that record a payment
(a nullable payment date, `paid_date`, `settled_on`) counts only the rows that were paid. The
rows are dated by the day they were billed (`issue_date`, `invoiced_on`), the row's own date;
the payment date only says whether the money came in. The explanation says both, so a reader
who meant cash by payment day sees which date was used."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.intents import Condition, Filter, Intent, Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.shares import ShareReading
from backend.nl2sql.engines.builtin.sqlbuild import plain_identifier
from backend.nl2sql.engines.builtin.temporal import MONEY_IN, revenue_dates

_PASSED_ON = frozenset({"tax", "vat", "duty", "gst"})
"""Words of amounts collected for someone else: not the business's revenue."""
_BREAKDOWN_VERBS = frozenset({"split", "broken", "divided", "separated"})
_PERIOD_OPS = frozenset(
    {">=", "<", ">", "<=", "between", "recent", "not recent", "this", "previous"}
)


class RevenueReading(ShareReading):
    """Helper of the assembly: revenue counts paid rows, dated by their billing day."""

    def _money_words(self) -> list[int]:
        return [t.index for t in self.tokens if t.kind == "word" and t.lemma in MONEY_IN]

    def _money_received(self, intent: Intent) -> None:
        """ "2024 revenue by plan tier": SUM(amount) over the rows whose payment date is
        filled, the period and the buckets on the billing date rather than a date of the
        table picked for want of a better one."""
        words = self._money_words()
        if not words:
            return
        share = any(c.kind == "share" for c in self.cues)
        only = intent.select[0] if len(intent.select) == 1 else None
        if (
            only is not None
            and not share
            and only.agg is None
            and only.bucket is None
            and only.column is not None
            and only.column.kind == "numeric"
            and not intent.group_by
            and not intent.order_by
            and any(
                only.column in m.columns and any(m.start <= w < m.end for w in words)
                for m in self.mentions
            )
        ):
            only.agg = "SUM"  # "what was our revenue in 2024": revenue is a total
            self.note("aggregates", f"sum({only.column.name}) (revenue is a total)")
        summed: list[Measure] = [
            m for m in [*intent.select, *(m for m, _ in intent.order_by)]
            if (m.agg == "SUM" or (share and m.agg is None and m.bucket is None))
            and m.column is not None and m.column.kind == "numeric" and m.since is None
            and self._named_as_money(m.column, words)
        ]  # fmt: skip  # ("what percent of revenue ...": the amount the share is taken of)
        summed += [
            h.column for h in intent.having
            if isinstance(h.column, Measure) and h.column.agg == "SUM"
            and h.column.column is not None and h.column.column.kind == "numeric"
        ]  # fmt: skip
        tables = {m.column.table.lower() for m in summed if m.column is not None}
        if len(tables) != 1:
            return
        table = next(iter(tables))
        found = revenue_dates(self.index.columns_of.get(table, []))
        if found is None:
            return
        paid, billed = found
        if any(isinstance(f.column, ColumnRef) and f.column == paid for f in intent.filters):
            pass  # the question says which rows itself ("unpaid revenue" is not revenue)
        elif share and plain_identifier(paid.table) and plain_identifier(paid.name):
            # the rows a share is taken among, not the condition it measures
            sql = f"{paid.table}.{paid.name} IS NOT NULL"
            intent.conditions.append(Condition("paid", sql, [paid.table]))
            self.note("filters", f"{paid.name} is not null (revenue: the rows that were paid)")
        elif share:
            return
        else:
            intent.filters.append(Filter(paid, "is not null"))
            self.note("filters", f"{paid.name} is not null (revenue: the rows that were paid)")
        self._untie_passed_on(words, summed)
        self.used_tokens.update(words)
        self._time_prepositions(intent)
        if billed is None:
            return
        moved = set(self.default_dates)
        for f in intent.filters:
            if (
                isinstance(f.column, ColumnRef)
                and f.column.table.lower() == table
                and f.column.kind == "date"
                and f.op in _PERIOD_OPS
                and f.column in moved
            ):
                f.column = billed
        for m in [*intent.select, *intent.group_by, *(m for m, _ in intent.order_by)]:
            col = m.column
            if (
                m.bucket is not None
                and col is not None
                and col in moved
                and col.table.lower() == table
            ):
                m.column = billed
        dated = any(
            isinstance(f.column, ColumnRef) and f.column == billed for f in intent.filters
        ) or any(m.bucket is not None and m.column == billed for m in intent.group_by)
        if dated:
            self.named_dates[words[0]] = billed  # the measure's own date: not a guess
            self.note("filters", f"revenue dated by {billed.name}, the day it was billed")

    def _named_as_money(self, col: ColumnRef, words: list[int]) -> bool:
        """Whether a word for revenue links to the column (or names the sum outright)."""
        return (
            any(
                col in m.columns and any(m.start <= w < m.end for w in words) for m in self.mentions
            )
            or col.table.lower() == self.intent.table.lower()
        )

    def _untie_passed_on(self, words: list[int], summed: list[Measure]) -> None:
        """ "revenue" links to `amount` and `tax_amount` alike; tax is not revenue."""
        chosen = {m.column for m in summed}
        for m in self.mentions:
            if m.kind != "column" or not any(m.start <= w < m.end for w in words):
                continue
            kept = [c for c in m.columns if not set(c.words) & _PASSED_ON]
            if kept and any(c in chosen for c in kept):
                m.columns = kept

    def _time_prepositions(self, intent: Intent) -> None:
        """ "during each quarter of 2024": "during" only introduces the period read."""
        dated = any(
            isinstance(f.column, ColumnRef) and f.column.kind == "date" for f in intent.filters
        ) or any(m.bucket is not None for m in intent.group_by)
        if not dated:
            return
        for t in self.tokens:
            if t.lemma == "during" and t.index + 1 < len(self.tokens):
                self.used_tokens.add(t.index)
        if not intent.group_by:
            return
        for c in self.cues:  # "2024 revenue split by quarter": the breakdown's verb
            before = self.tokens[c.start - 1].lemma if c.start > 0 else ""
            if c.kind in ("bucket", "by", "group") and before in _BREAKDOWN_VERBS:
                self.used_tokens.add(c.start - 1)
