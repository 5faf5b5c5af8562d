"""Grouping and ordering: "per country", "by month", "for each", "sorted by", "in
descending order"."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import ORDER_VERBS, Cue
from backend.nl2sql.engines.builtin.intents import Measure
from backend.nl2sql.engines.builtin.measures import MeasureReading
from backend.nl2sql.engines.builtin.reading import is_filler, is_key

_RATE_WORDS = frozenset({"cost", "costs", "price", "priced", "charge", "charged", "fee", "rate"})


_IRREGULAR_PARTICIPLES = frozenset(
    {"made", "sold", "paid", "sent", "held", "done", "run", "won", "lost", "left", "built",
     "bought", "put", "set", "shut", "read", "kept", "met", "brought", "taught", "caught"}
)  # fmt: skip
_PASSIVE_AUXILIARIES = frozenset({"were", "was", "been", "being", "are", "is", "be", "get", "got"})
_REPORT_VERBS = frozenset(
    {"report", "reports", "reporting", "reported", "answer", "answers", "work", "works",
     "working", "sit", "sits"}
)  # fmt: skip
_REPORT_FILLERS = frozenset({"directly", "straight", "immediately", "currently", "still"})
"""A reporting line: "report directly to", "work under"."""
_MONEY_NOUNS = frozenset(
    {"balance", "revenue", "spend", "spending", "sales", "billing", "billings", "income",
     "takings", "turnover", "owed", "outstanding", "receivables"}
)  # fmt: skip
"""Words for a sum of money ("balance by currency")."""
_AMOUNT_COLUMNS = frozenset({"amount", "total", "price", "cost", "value", "fee", "balance"})
"""Last words of the column such a sum adds up."""


class GroupingReading(MeasureReading):
    """Pass: group keys, time buckets and order keys."""

    def _grouping_and_order(self) -> None:
        self._event_participles()
        self._reporting_verbs()
        self._every_as_each()
        self._money_noun_by()
        has_rank = self.top_mode or bool(self.order_keys)
        for cue in self.cues:
            if cue.kind in ("bucket", "group") and self._is_rate(cue):
                continue  # "what a seat costs per month": a price per unit, not a breakdown
            if cue.kind == "bucket":
                prefer = [t for _, m in self.measures for t in m.tables]
                col = self._default_date(prefer)
                if col is None:
                    if len(self.tokens[cue.start : cue.end]) == 1:
                        continue  # "billed annually": an adverb, left for the coverage check
                    raise self.decline("a time bucket was asked for but no date column was found")
                bucket = Measure(col, bucket=cue.payload)
                self.group_keys.append((cue.start, bucket))
                self.projection.append((cue.start, bucket))
                if not self.order_keys:
                    self.order_keys.append((cue.start, bucket, False))
                self.note("grouping", f"{cue.payload} of {col.name}")
            elif cue.kind == "by" and self._by_names_a_value(cue):
                continue
            elif cue.kind == "group" or (
                cue.kind == "by"
                and not has_rank
                and not self._is_order_by(cue)
                and (
                    self.measures
                    or any(c.kind == "share" for c in self.cues)  # "churn rate by size band"
                    or self._mentions_numeric_before(cue.start)
                    or self._breaks_down_table(cue)
                )
            ):
                if cue.kind == "group":
                    self._breaks_down_table(cue)  # "customers per country": rows counted per key
                k = self.mention_after(cue.end, max_gap=1)
                if k is not None:
                    self._group_key(k)
            elif cue.kind in ("order", "by") or (
                cue.kind == "dir"
                and cue.end < len(self.tokens)
                and self.tokens[cue.end].lemma in ("of", "by")
            ):
                counted = next(
                    (
                        c
                        for c in self.cues
                        if c.kind in ("count", "agg") and c.start >= cue.end
                        and all(
                            is_filler(t) or any(
                                d.kind == "dir" and d.start <= t.index < d.end for d in self.cues
                            )
                            for t in self.tokens[cue.end : c.start]
                        )
                    ),
                    None,
                )  # fmt: skip
                # "top 3 doctors by total fees", "sorted by number of orders": rank by the
                # measure read right after
                measure = None
                if counted is not None:
                    measure = next((m for pos, m in self.measures if pos == counted.start), None)
                named = self._layer_measure_at(cue.end)
                if named is not None and counted is None:
                    counted, measure = cue, named  # "top 5 clients by lifetime billings"
                elif named is not None and measure is None and counted is not None:
                    # "by total amount invoiced": the layer's measure says how it adds up
                    self.cues.remove(counted)
                    self.used_tokens.update(range(counted.start, counted.end))
                    counted, measure = cue, named
                if counted is not None and counted.kind == "count" and measure is None:
                    measure = Measure(None, "COUNT", count_table=self.intent.table)
                if (
                    counted is not None
                    and measure is not None
                    and (
                        cue.kind == "order"
                        or (cue.kind == "dir" and self.tokens[cue.end].lemma == "of")
                        or (cue.kind == "by" and has_rank)
                    )
                ):
                    # "top 5 accounts ranked by total invoiced": a top list is of the highest
                    desc = self._direction(default=cue.kind == "by" or self.top_mode)
                    self.order_keys.append((cue.start, measure, desc))
                    continue
                k = self.mention_after(cue.end, max_gap=2 if cue.kind != "dir" else 0)
                if k is None:
                    continue
                m = self.mentions[k]
                self._use(k)
                desc = self._direction(default=cue.kind == "by" and has_rank)
                if m.kind == "table":
                    table = self.table_of(k) or self.intent.table
                    self.order_keys.append(
                        (cue.start, Measure(None, "COUNT", count_table=table), desc)
                    )
                else:
                    col = self.column_of(k)
                    if col is not None:
                        agg = None
                        if cue.kind == "by" and self.top_mode and col.kind == "numeric":
                            agg = "SUM" if self._fans_out(col.table) else None
                        self.order_keys.append((cue.start, Measure(col, agg), desc))
                        self.note("order", col.name)
        if not self.order_keys and any(c.kind == "dir" for c in self.cues):
            self.order_by_projection = True

    def _rate_after(self, cue: Cue) -> bool:
        """ "its per-seat price", "the per-user cost": "per <unit>" before a price word is the
        unit of the rate; the unit word is taken with it."""
        if cue.kind != "group" or self.tokens[cue.start].lemma != "per":
            return False
        rest = [t for t in self.tokens[cue.end : cue.end + 3] if t.kind == "word"]
        if len(rest) < 2 or rest[1].lemma not in _RATE_WORDS:
            return False
        self.used_tokens.update(range(cue.start, cue.end))
        self._use_token(rest[0])
        for k, m in enumerate(self.mentions):
            if m.start <= rest[0].index < m.end and m.end <= rest[1].index:
                m.kind = "spent"  # the unit of the rate, not a link of its own
                self._use(k)
        return True

    def _money_noun_by(self) -> None:
        """ "outstanding balance by currency", "spend per region": a word for a sum of money
        that names no column, right before "by"/"per", is the total of the rows' one amount
        broken down (not the rows listed in that order)."""
        if self.measures or self.top_mode or self.order_keys:
            return
        for cue in self.cues:
            if cue.kind not in ("by", "group") or cue.start == 0:
                continue
            noun = self.tokens[cue.start - 1]
            if noun.lemma not in _MONEY_NOUNS or noun.index in self.used_tokens:
                continue
            if any(m.start <= noun.index < m.end for m in self.mentions):
                continue
            money = [
                c for c in self.index.columns_of.get(self.intent.table.lower(), [])
                if c.kind == "numeric" and not is_key(c) and c.words
                and c.words[-1] in _AMOUNT_COLUMNS and self.index.referred_row(c) is None
            ]  # fmt: skip
            exact = [c for c in money if len(c.words) == 1]
            pick = exact if exact else money
            if len(pick) != 1:
                return
            self._use_token(noun)
            self.measures.append((noun.index, Measure(pick[0], "SUM")))
            self.note("aggregates", f"sum({pick[0].name}) (the {noun.text})")
            return

    def _event_participles(self) -> None:
        """ "how many treatments were given by each nurse", "treatments given, by nurse": a
        participle right after the rows counted that links to their own event date says what
        happened to them; it is not a date to show or group by (unless "when" is asked)."""
        if not self.measures or any(t.lemma in ("when", "date", "dates") for t in self.tokens):
            return
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind != "column" or m.end - m.start != 1:
                continue
            word = self.tokens[m.start].lemma
            participle = word.endswith(("ed", "en")) or word in _IRREGULAR_PARTICIPLES
            if not participle or not all(c.kind == "date" for c in m.columns):
                continue
            pos = m.start - 1
            while pos >= 0 and self.tokens[pos].lemma in _PASSIVE_AUXILIARIES:
                pos -= 1
            owner = next((o for o in self.mentions if o.kind == "table" and o.end == pos + 1), None)
            if owner is None or not any(
                t.name.lower() == c.table.lower() for t in owner.tables for c in m.columns
            ):
                continue
            if any(m.end <= d.start for d in self.cues if d.kind in ("year", "date", "period")):
                continue
            m.kind = "spent"
            self._use(k)

    def _reporting_verbs(self) -> None:
        """ "employees who report directly to each manager", "nurses working under each
        supervisor": the verb says the relation a self-referencing key (`manager_id`)
        records, when the role named right after it is that key's; it is read, not unknown."""
        roles = {w for c in self.self_references(self.intent.table) for w in c.words[:-1]}
        if not roles:
            return
        for tok in self.tokens:
            if tok.lemma not in _REPORT_VERBS or tok.index in self.used_tokens:
                continue
            span = [tok]
            for nxt in self.tokens[tok.index + 1 : tok.index + 4]:
                span.append(nxt)
                if nxt.lemma in ("to", "for", "under"):
                    break
            else:
                continue
            after = [t.lemma for t in self.tokens[span[-1].index + 1 : span[-1].index + 4]]
            if not set(after) & roles:
                continue
            if any(t.lemma not in _REPORT_VERBS | _REPORT_FILLERS for t in span[1:-1]):
                continue
            for t in span:
                self._use_token(t)

    def _every_as_each(self) -> None:
        """ "how many patients does every ward hold": a bare "every" before a table, after a
        count or an aggregate, breaks the figure down like "each" does."""
        if not self.measures:
            return
        first = min(pos for pos, _ in self.measures)
        for tok in self.tokens:
            if tok.lemma != "every" or tok.index <= first or self.is_cue(tok.index):
                continue
            if tok.index in self.used_tokens:
                continue
            k = self.mention_after(tok.index + 1, max_gap=0, kinds=("table",))
            if k is None or self.mentions[k].start != tok.index + 1:
                continue
            self.cues.append(Cue("group", tok.index, tok.index + 1, ""))
            self.cues.sort(key=lambda c: c.start)

    def _is_rate(self, cue: Cue) -> bool:
        """ "costs per month", "price per seat each month": "per" after a price word states
        the unit of a rate. The words are taken; the rate itself is the stored price."""
        before = [t for t in self.tokens[max(0, cue.start - 4) : cue.start] if t.kind == "word"]
        if self.measures or any(c.kind == "share" for c in self.cues):
            return False  # ("churn rate per industry": a share broken down)
        if self._rate_after(cue):
            return True
        if not before:
            return False
        words = {t.lemma for t in before}
        priced = bool(words & _RATE_WORDS) or any(
            m.kind == "column"
            and m.end <= cue.start
            and cue.start - m.end <= 3
            and any(set(c.words) & _RATE_WORDS for c in m.columns)
            for m in self.mentions
        )
        if not priced or self.tokens[cue.start].lemma not in ("per", "each", "a", "every"):
            return False
        self.used_tokens.update(range(cue.start, cue.end))
        nxt = self.mention_after(cue.end, max_gap=0)
        if cue.kind == "group" and nxt is not None:
            self._use(nxt)
        verb = next((t for t in reversed(before) if t.lemma in _RATE_WORDS), None)
        for k, m in enumerate(self.mentions):
            unit_before = verb is not None and m.end <= verb.index and verb.index - m.end <= 1
            if unit_before and m.kind == "column" and k not in self.used:
                self._use(k)  # "what a seat costs": the seat is the rate's unit
        cue.kind = "rate"
        return True

    def _breaks_down_table(self, cue: Cue) -> bool:
        """ "orders by status": a table right before "by" asks for its rows counted per key."""
        k = self.mention_before(cue.start, max_gap=0, kinds=("table",))
        if k is None or self.mentions[k].end != cue.start:
            return False
        if any(t.text.lower() in ORDER_VERBS for t in self.tokens[: cue.start]):
            return False  # "sort orders by date"
        self.breakdown = True
        return True

    def _by_names_a_value(self, cue: Cue) -> bool:
        """`managed by "Brenden"`: a value follows, so "by" is not a grouping."""
        nxt = next((t for t in self.tokens[cue.end :] if not is_filler(t)), None)
        if nxt is None:
            return False
        if nxt.kind in ("quoted", "number", "date"):
            return True
        k = self.mention_after(cue.end, max_gap=0)
        if k is not None and self.mentions[k].kind == "table":
            after = (
                self.tokens[self.mentions[k].end]
                if self.mentions[k].end < len(self.tokens)
                else None
            )
            return after is not None and (
                after.kind == "quoted" or after.is_capitalised or after.kind == "number"
            )
        if k is not None and self.mentions[k].kind == "column":
            return self._value_of_focus(k)
        return k is not None and self.mentions[k].kind == "value"

    def _value_of_focus(self, k: int) -> bool:
        """ "tickets that came in by phone": a word that names a column only in other tables
        but is a stored value of the focus table's own column (`channel` = 'phone') is that
        value; the mention becomes the value's."""
        m = self.mentions[k]
        focus = self.intent.table.lower()
        if any(c.table.lower() == focus for c in m.columns):
            return False
        phrase = tuple(t.lemma for t in self.tokens[m.start : m.end])
        own = [(c, v) for c, v in self.index.values.get(phrase, []) if c.table.lower() == focus]
        if len({c for c, _ in own}) != 1:
            return False
        m.kind, m.columns, m.value = "value", [own[0][0]], own[0][1]
        return True

    def _mentions_numeric_before(self, pos: int) -> bool:
        for k, m in enumerate(self.mentions):
            if m.start < pos and k not in self.used and m.kind == "column":
                col = self.column_of(k)
                if col is not None and col.kind == "numeric" and not col.is_primary_key:
                    return True
        return False

    def _is_order_by(self, cue: Cue) -> bool:
        return any(c.kind in ("order", "dir") and c.end == cue.start for c in self.cues)

    def _fans_out(self, table: str) -> bool:
        """Whether joining `table` to the focus repeats focus rows (a one-to-many step)."""
        path = self.index.join_path(self.intent.table, table)
        if not path:
            return False
        for from_table, from_col, _to_table, _to_col in path:
            col = self.index.column(from_table, from_col)
            if col is not None and col.is_primary_key:
                return True
        return False
