"""Comparisons: "more than 10", "between 5 and 9", "older than", "above the average",
and counts compared with a number ("customers with at least 20 invoices", HAVING)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter, Measure
from backend.nl2sql.engines.builtin.lexicon import MONTHS
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.reading import is_filler
from backend.nl2sql.engines.builtin.temporal import TimeReading

_VERB_MEASURES: dict[str, tuple[str, ...]] = {
    "earn": ("salary", "pay", "wage", "income", "compensation", "earnings"),
    "paid": ("salary", "pay", "wage", "compensation"),
    "make": ("salary", "pay", "wage", "income"),
    "weigh": ("weight",),
    "cost": ("price", "cost", "fee"),
}
"""Verbs of comparison and the column words they measure ("earns more than" -> salary)."""
_OUTER_LEADS = frozenset({"who", "that", "which", "whose", "and", "where", "while"})
"""Words after "the average X" that start a clause about the rows compared."""
_SPREAD_LEADS = {"more": ">", "fewer": "<", "less": "<"}
_KEPT_WORDS = frozenset(
    {"on", "in", "file", "record", "records", "total", "overall", "registered", "listed",
     "recorded", "stored", "logged", "all"}
)  # fmt: skip
"""Words between "more <rows>" and "than" that only say where the rows are kept."""
_POSSESSIVES = frozenset({"their", "his", "her", "its", "own", "the", "s", "'s"})
_SUBJECT_PRONOUNS = frozenset({"they", "he", "she", "it", "i", "we", "you"})
_OBJECT_PRONOUNS = frozenset({"them", "him", "her", "it"})
_REPORTS = frozenset({"report", "reports", "answer", "answers", "work", "works", "worked"})
_SUPERVISES = frozenset({"manage", "supervise", "oversee", "lead"})
"""Words of "the person they report to" / "who manages them": a row's superior."""
_SPANS = frozenset({"time", "year", "years", "lifetime", "history", "period", "life"})
"""Nouns of a span of time after "over" ("over time"): not a comparison."""
_OWN_GROUP_WORDS = frozenset({"their", "his", "her", "its", "own", "same"})
"""Words saying an aggregate is over the compared row's own group ("of their own ward")."""
_OWN_GROUP_LEADS = frozenset(
    {"of", "in", "for", "within", "at", "across", "on", "from", "the", "s", "'s", "'"}
)  # fmt: skip
"""Other words allowed between the aggregate and the group it is taken within."""


class ComparisonReading(TimeReading):
    """Pass: comparison cues become filters or HAVING conditions."""

    def _comparisons(self) -> None:
        self.aggregate_tails = []
        self._spread_comparatives()
        for cue in list(self.cues):
            if cue.kind not in ("cmp", "postcmp") or cue not in self.cues:
                continue  # (a cue another comparison's reading took is gone)
            if self._over_a_span(cue) or self._under_a_superior(cue):
                continue
            if self._compare_with_quantified_rows(cue):
                continue
            if cue.kind == "postcmp":
                prev = self.tokens[cue.start - 1] if cue.start > 0 else None
                if prev is None or prev.kind != "number" or prev.index in self.used_tokens:
                    continue
                lits = [prev]
            else:
                first = self.literal_after(cue.end)
                if first is None:
                    if self._measure_against_its_average(cue):
                        continue
                    if self._count_against_its_average(cue):
                        continue
                    if self._compare_with_aggregate(cue) or self._compare_with_peer(cue):
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
            named = next(
                (
                    m
                    for at, m in self.measures
                    if m.sql is not None
                    and self._definition_end(at) <= cue.start
                    and self.gap(self._definition_end(at), cue.start) <= 1
                ),
                None,
            )
            layered = any(m.sql is not None for _, m in self.measures)
            rows = self.counted_rows_after(lits[-1].index + 1) if layered else None
            if rows is not None and op in (">", "<", ">=", "<=", "=", "!="):
                # "average CSAT per agent with at least 20 rated tickets": how many rows
                table = self.table_of(rows) or self.intent.table
                self._use(rows)
                measure = Measure(None, "COUNT", count_table=table)
                self.intent.having.append(Filter(measure, op, values))
                self.note("having", f"count of {table} {op} {values}")
                continue
            if named is not None and op in (">", "<", ">=", "<=", "=", "!="):
                # "industries with an average CSAT below 4": a condition on the groups
                self.measures = [(at, m) for at, m in self.measures if m is not named]
                self.intent.having.append(Filter(named, op, values))
                self.note("having", f"{named.label} {op} {values}")
                continue
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
                    distinct = self._distinct_between(after_pos, self.mentions[k_after].start)
                    if distinct:
                        # "reps with customers in more than three different countries"
                        measure = Measure(counted, "COUNT", distinct=True)
                        self.note("having", f"count of distinct {counted.name} {op} {values}")
                    else:
                        measure = Measure(None, "COUNT", count_table=counted.table)
                        self.note("having", f"count of {counted.table} {op} {values}")
                    self.intent.having.append(Filter(measure, op, values))
                    continue
            related = self._value_then_related_table(k_after) or self._named_rows_after(after_pos)
            if related is not None:
                # "accounts with more than one active subscription": the value qualifies the
                # related rows counted (the values pass filters them), not the focus rows
                measure = Measure(None, "COUNT", count_table=related)
                self.intent.having.append(Filter(measure, op, values))
                self.note("having", f"count of {related} {op} {values}")
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
            if k_before is not None and self._verb_of_another_table(k_before):
                k_before = None  # "nurses paid over 40000": the salary, not a payment's amount
            verb_col = self._measure_of_verb(cue.start) if k_before is None else None
            if verb_col is not None:
                if k_before is None:
                    self._spend_verb_before(cue.start)
                self.intent.filters.append(Filter(verb_col, op, values))  # "earns over 90000"
                self.note("filters", f"{verb_col.name} {op} {values}")
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

    def _compare_with_quantified_rows(self, cue: Cue) -> bool:
        """Hook: "more than some / every / the largest X" (`nested.py`)."""
        return False

    def _group_aggregate_against_rows(
        self, k: int, col: ColumnRef, op: str, agg: Cue, cue: Cue
    ) -> bool:
        """Hook: "departments whose average salary is above the overall average" (`nested.py`)."""
        return False

    aggregate_tails: list[tuple[Filter, int]]
    """Comparisons with an aggregate, and where the words after the aggregate start."""

    def _aggregate_scopes(self) -> None:
        """After the values pass: a value named right after "the average salary" ("of
        instructors in the Physics department") limits the rows averaged, not the rows
        compared; after "who", "that", "and" it limits the rows compared. A value of another
        table there is declined (the subquery reads one table)."""
        for compared, tail in self.aggregate_tails:
            col = compared.column
            if not isinstance(col, ColumnRef):
                continue
            for m in self.mentions:
                if m.kind != "value" or m.start < tail or m.value is None:
                    continue
                between = {t.lemma for t in self.tokens[tail : m.start]}
                if between & _OUTER_LEADS:
                    continue
                flt = next(
                    (
                        f for f in self.intent.filters
                        if f is not compared and isinstance(f.column, ColumnRef)
                        and f.column in m.columns and m.value in f.values
                    ),
                    None,
                )  # fmt: skip
                if flt is None or not isinstance(flt.column, ColumnRef):
                    continue
                if flt.column.table.lower() != col.table.lower():
                    raise self.decline(
                        f"could not tell whether '{m.value}' limits the rows compared or the "
                        "rows averaged"
                    )
                self.intent.filters.remove(flt)
                compared.subquery_filters.append(flt)
                self.note(
                    "filters", f"the {compared.subquery_agg} over rows where {flt.column.name}"
                )

    def _spread_comparatives(self) -> None:
        """ "more contacts on file than", "fewer tickets in total than": a comparative, a
        table, a few words that only say where the rows are kept, then "than" is the same
        comparison as "more contacts than" (one cue over the whole phrase)."""
        taken = {i for c in self.cues for i in range(c.start, c.end)}
        for m in self.mentions:
            if m.kind != "table" or m.start == 0:
                continue
            lead = self.tokens[m.start - 1]
            op = _SPREAD_LEADS.get(lead.lemma)
            if op is None or lead.index in taken:
                continue
            pos = m.end
            while pos < len(self.tokens) and self.tokens[pos].lemma in _KEPT_WORDS:
                pos += 1
            if pos == m.end or pos >= len(self.tokens) or self.tokens[pos].lemma != "than":
                continue
            if taken & set(range(lead.index, pos + 1)):
                continue
            self.used_tokens.update(range(m.end, pos))
            self.cues.append(Cue("cmp", lead.index, pos + 1, op))
            taken.update(range(lead.index, pos + 1))
        self.cues.sort(key=lambda c: c.start)

    def _count_against_its_average(self, cue: Cue) -> bool:
        """ "customers with more contacts than the average customer", "agents with fewer
        tickets than average": each row's count of related rows against the average of those
        counts over the rows (HAVING COUNT > (SELECT AVG(...) of the same grouped query))."""
        if cue.kind != "cmp" or cue.payload not in (">", "<", ">=", "<="):
            return False
        if cue.end - cue.start < 3 or self.tokens[cue.end - 1].lemma != "than":
            return False
        k_inner = self.mention_after(cue.start + 1, max_gap=0, kinds=("table",))
        if k_inner is None or self.mentions[k_inner].start != cue.start + 1:
            return False
        if any(
            t.index not in self.used_tokens
            for t in self.tokens[self.mentions[k_inner].end : cue.end - 1]
        ):
            return False
        counted = self.table_of(k_inner) or ""
        focus = self.intent.table
        if not counted or counted.lower() == focus.lower():
            return False
        if not self.index.join_path(focus, counted):
            return False
        agg = next(
            (
                c for c in self.cues
                if c.kind == "agg" and c.payload == "AVG" and c.start >= cue.end
                and all(is_filler(t) for t in self.tokens[cue.end : c.start])
            ),
            None,
        )  # fmt: skip
        if agg is None:
            return False
        k_per = self.mention_after(agg.end, max_gap=0, kinds=("table",))
        if k_per is not None:
            if (self.table_of(k_per) or "").lower() != focus.lower():
                return False  # "than the average order": another table's average
            self._use(k_per)  # "the average customer": the rows compared
        self._use(k_inner)
        self.cues.remove(agg)
        self.used_tokens.update(range(agg.start, agg.end))
        measure = Measure(None, "COUNT", count_table=counted)
        self.intent.having.append(Filter(measure, cue.payload, [], subquery_agg="AVG"))
        self.note("having", f"count of {counted} {cue.payload} its average per {focus}")
        return True

    def _value_then_related_table(self, k: int | None) -> str | None:
        """ "more than one active subscription": a value right after the number and, right
        after it, a table other than the focus that the value's column belongs or joins to: that
        table's rows are counted (the table's mention is taken, the value is left to the values
        pass)."""
        if k is None or self.mentions[k].kind != "value":
            return None
        nxt = self.mention_after(self.mentions[k].end, max_gap=0, kinds=("table",))
        if nxt is None:
            return None
        table = self.table_of(nxt) or ""
        focus = self.intent.table.lower()
        if not table or table.lower() == focus:
            return None
        if not any(
            c.table.lower() == table.lower() or self.index.are_joinable(c.table, table)
            for c in self.mentions[k].columns
        ):
            return None
        if not self.index.join_path(self.intent.table, table):
            return None
        self._use(nxt)
        return table

    def _named_rows_after(self, pos: int) -> str | None:
        """ "more than one active subscription" where the layer names "active subscription": a
        named filter of another table right after the number; its rows are counted (the
        filter itself is applied by the definitions pass)."""
        focus = self.intent.table.lower()
        for d in self.definitions:
            if d.start < pos or self.gap(pos, d.start) > 0 or d.definition.kind != "filter":
                continue
            table = d.definition.table
            if table.lower() == focus or table.lower() not in self.index.tables:
                return None
            if not self.index.join_path(self.intent.table, table):
                return None
            return self.index.table(table).name
        return None

    def _distinct_between(self, start: int, stop: int) -> bool:
        """Whether "different"/"distinct" stands between a count's number and what it counts;
        the cue is taken (it says what is counted, not that the rows are listed once)."""
        cue = next(
            (c for c in self.cues if c.kind == "distinct" and start <= c.start and c.end <= stop),
            None,
        )
        if cue is None:
            return False
        self.cues.remove(cue)
        self.used_tokens.update(range(cue.start, cue.end))
        return True

    def _compare_with_peer(self, cue: Cue) -> bool:
        """ "earns more than their manager", "salary above their own manager's salary",
        "joined before their manager did": a column against the same column of the row a
        self-referencing key (`manager_id`) points to."""
        pos = cue.end
        while pos < len(self.tokens) and self.tokens[pos].lemma in _POSSESSIVES:
            pos += 1
        if pos == cue.end or pos >= len(self.tokens):
            return False  # a peer is "their manager", never a bare noun
        self._refocus_on_compared_people(cue)
        word = self.tokens[pos].lemma
        peer = next(
            (c for c in self.self_references(self.intent.table) if word in c.words[:-1]), None
        )
        superior_end = None if peer is not None else self._one_they_report_to(pos)
        if superior_end is not None:
            own = self.self_references(self.intent.table)
            peer = own[0] if len(own) == 1 else None
        if peer is None:
            return False
        k_peer = next(
            (
                k
                for k, m in enumerate(self.mentions)
                if m.start <= pos < m.end and k not in self.used
            ),
            None,
        )
        peer_end = self.mentions[k_peer].end if k_peer is not None else pos + 1
        if superior_end is not None:
            peer_end = max(peer_end, superior_end)
        k_col = self.mention_before(cue.start, max_gap=2, kinds=("column",))
        if k_col is not None and self._verb_of_another_table(k_col):
            k_col = None  # "paid a higher salary than": the salary, not a payment's amount
        k_after = self.mention_after(peer_end, max_gap=1, kinds=("column",))
        if k_col is None and cue.end - cue.start == 3:  # "a higher salary than"
            k_col = self.mention_after(cue.start + 1, max_gap=0, kinds=("column",))
        col = self.column_of(k_col) if k_col is not None else None
        if col is None and k_after is not None:
            col = self.column_of(k_after)
        if col is None:
            col = self._measure_of_verb(cue.start)
        if col is None or col.table.lower() != self.intent.table.lower() or col == peer:
            return False
        op = {"before": "<", "after": ">", "older": "<", "younger": ">"}.get(
            cue.payload, cue.payload
        )
        if op not in (">", "<", ">=", "<=", "=", "!="):
            return False
        for k in (k_col, k_peer, k_after):
            if k is not None:
                self._use(k)
        self._use_restatements(col, cue)
        self.used_tokens.update(range(cue.end, peer_end))
        for t in self.tokens[peer_end : peer_end + 2]:
            if t.lemma in ("did", "do", "does", "s", "'s"):
                self._use_token(t)  # "before their manager did"
        self.intent.filters.append(Filter(col, op, [], peer=peer))
        self.note("filters", f"{col.name} {op} the {col.name} of the row {peer.name} refers to")
        return True

    def _refocus_on_compared_people(self, cue: Cue) -> None:
        """ "Is anyone paid a higher salary than the person they report to?": no rows are
        named and the focus came from a verb ("paid") that also fits another table's amount;
        the column inside the comparison ("higher salary than") belongs to a table whose rows
        refer to each other, and those are the rows compared."""
        if self.intent.subject_named or cue.end - cue.start != 3:
            return
        inner = self.mention_after(cue.start + 1, max_gap=0, kinds=("column",))
        if inner is None or self.mentions[inner].end > cue.end:
            return
        col = self.column_of(inner)
        if col is None or col.table.lower() == self.intent.table.lower():
            return
        if not self.self_references(col.table):
            return
        verbs = [
            k for k, m in enumerate(self.mentions)
            if k not in self.used and m.end <= cue.start and cue.start - m.end <= 2
            and m.end - m.start == 1 and self.tokens[m.start].lemma in _VERB_MEASURES
            and set(_VERB_MEASURES[self.tokens[m.start].lemma]) & set(col.words)
        ]  # fmt: skip
        if not verbs:
            return
        self.intent.table = col.table
        for k in verbs:
            self.mentions[k].kind = "spent"
            self._use(k)
        self.recognised["tables"] = [col.table]

    def _verb_of_another_table(self, k: int) -> bool:
        """A one-word verb of comparison ("paid", "earn") linked to a column of a table other
        than the rows asked about, where those rows have the column the verb measures."""
        m = self.mentions[k]
        if m.end - m.start != 1 or self.tokens[m.start].lemma not in _VERB_MEASURES:
            return False
        focus = self.intent.table.lower()
        if any(c.table.lower() == focus for c in m.columns):
            return False
        names = _VERB_MEASURES[self.tokens[m.start].lemma]
        return any(self._column_named((n,)) is not None for n in names)

    def _spend_verb_before(self, pos: int) -> None:
        """The verb a comparison's column was read from is spent ("paid over 40000")."""
        for k, m in enumerate(self.mentions):
            near = m.end <= pos and pos - m.end <= 1 and m.end - m.start == 1
            if k not in self.used and near and self.tokens[m.start].lemma in _VERB_MEASURES:
                m.kind = "spent"
                self._use(k)

    def _use_restatements(self, col: ColumnRef, cue: Cue) -> None:
        """ "nurses paid a higher salary than ...": a word linked to the compared column right
        before the comparison or inside it ("higher salary than") only restates what is
        compared; it is not a column to show."""
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind != "column" or not cue.start - 3 <= m.start < cue.end:
                continue
            verb = self.tokens[m.start].lemma if m.end - m.start == 1 else ""
            measured = set(_VERB_MEASURES.get(verb, ())) & set(col.words)
            if m.columns == [col] or measured:
                m.kind = "spent"  # "paid a higher salary": the verb of the salary compared
                self._use(k)

    def _one_they_report_to(self, pos: int) -> int | None:
        """ "the person they report to", "the one she works for", "the nurse who manages
        them": a row's superior, said without naming the key. Where the clause ends."""
        at = pos + 1
        if at < len(self.tokens) and self.tokens[at].lemma in ("who", "that"):
            verb = self.tokens[at + 1].lemma if at + 1 < len(self.tokens) else ""
            obj = self.tokens[at + 2].lemma if at + 2 < len(self.tokens) else ""
            if verb.rstrip("s") in _SUPERVISES and obj in _OBJECT_PRONOUNS:
                return at + 3
            return None
        if at < len(self.tokens) and self.tokens[at].lemma in ("who", "whom", "that"):
            at += 1
        words = [t.lemma for t in self.tokens[at : at + 3]]
        if len(words) < 3 or words[0] not in _SUBJECT_PRONOUNS:
            return None
        if words[1] in _REPORTS and words[2] in ("to", "for", "under"):
            return at + 3
        return None

    def _measure_of_verb(self, pos: int) -> ColumnRef | None:
        """ "earns more", "weighs less", "costs more": the column the verb before measures."""
        verb = next(
            (t for t in reversed(self.tokens[max(0, pos - 2) : pos]) if t.kind == "word"), None
        )
        names = _VERB_MEASURES.get(verb.lemma, ()) if verb is not None else ()
        for name in names:
            col = self._column_named((name,))
            if col is not None and col.kind == "numeric":
                self._use_token(verb)  # type: ignore[arg-type]
                return col
        return None

    def _agg_before(self, pos: int) -> str | None:
        for cue in self.cues:
            if cue.kind == "agg" and cue.end <= pos and self.gap(cue.end, pos) == 0:
                self.cues.remove(cue)
                return cue.payload
        return None

    def _measure_against_its_average(self, cue: Cue) -> bool:
        """ "customers whose MRR is above the average (MRR per account)": a semantic layer's
        measure per group compared with its average over the groups (HAVING)."""
        named_at = next(
            (
                (at, m) for at, m in self.measures
                if m.sql is not None
                and self._definition_end(at) <= cue.start
                and self.gap(self._definition_end(at), cue.start) <= 1
            ),
            None,
        )  # fmt: skip
        agg = next(
            (
                c for c in self.cues
                if c.kind == "agg" and c.payload == "AVG" and c.start >= cue.end
                and self.gap(cue.end, c.start) == 0
            ),
            None,
        )  # fmt: skip
        if named_at is None or agg is None or cue.payload not in (">", "<", ">=", "<="):
            return False
        at, named = named_at
        self.cues.remove(agg)
        self.used_tokens.update(range(agg.start, agg.end))
        self.measures = [(pos, m) for pos, m in self.measures if m is not named]
        for d in self.definitions:
            if d.start >= agg.end and d.start - agg.end <= 1 and d.definition.kind == "measure":
                self.used_tokens.update(range(d.start, d.end))  # "the average MRR": the same
        per = next(
            (c for c in self.cues if c.kind == "group" and c.start >= agg.end),
            None,
        )  # "per active account": the groups the average is over, the rows asked for
        if per is not None and self.gap(agg.end, per.start) == 0:
            self.cues.remove(per)
            self.used_tokens.update(range(per.start, per.end))
            for k, m in enumerate(self.mentions):
                if m.kind == "table" and m.start == per.end and k not in self.used:
                    self._use(k)
        self.intent.having.append(Filter(named, cue.payload, [], subquery_agg="AVG"))
        self.note("having", f"{named.label} {cue.payload} its average per group")
        return True

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
        if k2 is None and cue.payload in ("older", "younger"):
            age = self._column_named(("age",))
            if age is not None and age.kind == "numeric":
                # "students younger than average": the age column, whatever is named before
                self.cues.remove(agg)
                op = ">" if cue.payload == "older" else "<"
                compared = Filter(age, op, [], subquery_agg=agg.payload)
                self.intent.filters.append(compared)
                self.aggregate_tails.append((compared, agg.end))
                self.note("filters", f"{age.name} {op} {agg.payload.lower()}")
                return True
        if k is None and cue.end - cue.start >= 3:
            inner = self.mention_after(cue.start + 1, max_gap=0, kinds=("column",))
            if inner is not None and self.mentions[inner].end < cue.end:
                k = inner  # "more pages than the average": the column inside the comparative
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
        if agg.payload in ("AVG", "SUM") and col.kind != "numeric":
            return False  # "a rating higher than the average director": no average of text
        self._use(k)
        self.cues.remove(agg)
        op = {"older": ">", "younger": "<"}.get(cue.payload, cue.payload)
        if self._group_aggregate_against_rows(k, col, op, agg, cue):
            return True
        compared = Filter(col, op, [], subquery_agg=agg.payload)
        self.intent.filters.append(compared)
        self._use_restatements(col, cue)
        tail = max(agg.end, self.mentions[k].end)
        self.aggregate_tails.append((compared, tail))
        self.note("filters", f"{col.name} {op} {agg.payload.lower()}")
        self._aggregate_within_own_group(compared, tail)
        return True

    def _over_a_span(self, cue: Cue) -> bool:
        """ "invoiced the most over time", "over the years", "over its lifetime": "over" a
        span of time says when, not "more than"."""
        if self.tokens[cue.start].lemma != "over" or cue.end - cue.start != 1:
            return False
        words = [t.lemma for t in self.tokens[cue.end : cue.end + 3]]
        if words[:1] == ["the"]:
            words = words[1:]
        if not words or words[0] not in _SPANS:
            return False
        self.cues.remove(cue)
        self.used_tokens.update(
            range(cue.start, cue.end + 1 + (self.tokens[cue.end].lemma == "the"))
        )
        return True

    def _under_a_superior(self, cue: Cue) -> bool:
        """ "nurses who work under each supervisor", "staff under their manager": "under" a
        role a self-referencing key names is the reporting line, not "less than"."""
        if self.tokens[cue.start].lemma != "under" or cue.end - cue.start != 1:
            return False
        roles = {w for c in self.self_references(self.intent.table) for w in c.words[:-1]}
        words = [t.lemma for t in self.tokens[cue.end : cue.end + 3]]
        while words and words[0] in ("each", "every", "their", "his", "her", "its", "the", "a"):
            words = words[1:]
        if not words or words[0] not in roles:
            return False
        self.cues.remove(cue)
        self._use_token(self.tokens[cue.start])
        return True

    def _aggregate_within_own_group(self, compared: Filter, tail: int) -> None:
        """ "more than the average salary of their ward", "above the average for their own
        team", "than the average of nurses in the same ward": the aggregate is over the rows
        of the compared row's own group (a correlated subquery), not over the whole table. The
        group is a column of the compared table, or the key by which it refers to the table
        named. A possessive ("their", "own", "same") must say so; "the average of the
        Cardiology ward" is a value, another reading."""
        col = compared.column
        if not isinstance(col, ColumnRef):
            return
        own_table = col.table.lower()
        for k, m in enumerate(self.mentions):
            if k in self.used or m.start < tail or m.kind not in ("table", "column"):
                continue
            between = self.tokens[tail : m.start]
            if not any(t.lemma in _OWN_GROUP_WORDS for t in between):
                return
            if any(
                t.lemma not in _OWN_GROUP_LEADS | _OWN_GROUP_WORDS
                and not self._names_table(t.index, own_table)
                for t in between
            ):
                return
            within = self._group_column(k, own_table)
            if within is None:
                return
            compared.within = within
            self._use(k)
            self.used_tokens.update(t.index for t in between)
            self.note("filters", f"the {compared.subquery_agg} within the same {within.name}")
            return

    def _names_table(self, pos: int, table: str) -> bool:
        """Whether token `pos` is part of a mention of `table` ("of nurses in their ward")."""
        return any(
            m.kind == "table"
            and m.start <= pos < m.end
            and any(t.name.lower() == table for t in m.tables)
            for m in self.mentions
        )

    def _group_column(self, k: int, table: str) -> ColumnRef | None:
        """The column of `table` that mention k names as a group: its own column, or the key
        by which its rows refer to the table the mention names."""
        m = self.mentions[k]
        if m.kind == "column":
            own = [c for c in m.columns if c.table.lower() == table]
            return own[0] if len(own) == 1 else None
        targets = {t.name.lower() for t in m.tables[:1]}
        keys = [
            own_col
            for other, own_col, _ in self.index.edges.get(table, [])
            if other.lower() in targets and other.lower() != table
        ]
        if len(keys) != 1:
            return None  # no key, or several: which one is the group's is not said
        return self.index.column(table, keys[0])
