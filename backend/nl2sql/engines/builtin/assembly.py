"""From the filled slots to an `Intent`: projection, implicit grouping, shares, and what a
follow-up overrides of the question before it."""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Measure
from backend.nl2sql.engines.builtin.lexicon import STOP_WORDS
from backend.nl2sql.engines.builtin.linking import ColumnRef, verb_stems
from backend.nl2sql.engines.builtin.reading import is_filler, is_key, same_measure
from backend.nl2sql.engines.builtin.revenue import RevenueReading

_MONEY_WORDS = frozenset(
    {"amount", "price", "cost", "total", "revenue", "value", "balance", "fee", "salary", "spend"}
)


_COMPARED = frozenset({">", ">=", "<", "<=", "between", "like"})
"""Filter operators that compare a column with a bound or a pattern (not a negation)."""


class AssemblyReading(RevenueReading):
    """Passes: refinement overrides, projection, and the final `Intent`."""

    def _override_with_refinement(self) -> None:
        """In "previous question + refinement", a slot the refinement fills replaces the old one."""
        for cut in self.refinement_from:
            self._override_from(cut)

    def _override_from(self, cut: int) -> None:
        later = [c for c in self.cues if c.start >= cut]
        earlier = [c for c in self.cues if c.start < cut]

        def drop_cue(cue: Cue, *, with_target: bool) -> None:
            self.cues.remove(cue)
            self.used_tokens.update(range(cue.start, cue.end))
            if with_target:
                k = self.mention_after(cue.end, max_gap=1)
                if k is not None and self.mentions[k].start < cut:
                    self._use(k)

        kinds_later = {c.kind for c in later}
        if kinds_later & {"group", "by", "bucket"}:
            for cue in earlier:
                if cue.kind in ("group", "by", "bucket"):
                    drop_cue(cue, with_target=cue.kind != "bucket")
        if kinds_later & {"top", "super"}:
            for cue in earlier:
                if cue.kind in ("top", "super"):
                    drop_cue(cue, with_target=False)
        later_years = [
            t for t in self.tokens[cut:] if t.kind == "number" and 1800 <= float(t.lemma) <= 2200
        ]
        if later_years or kinds_later & {"last", "this", "period", "day"}:
            for tok in self.tokens[:cut]:
                if tok.kind == "number" and 1800 <= float(tok.lemma) <= 2200:
                    self.used_tokens.add(tok.index)
            for cue in earlier:
                if cue.kind in ("last", "this", "period", "day") or cue.payload in (
                    "before",
                    "after",
                    "since",
                ):
                    drop_cue(cue, with_target=False)
        later_values = [m for m in self.mentions if m.kind == "value" and m.start >= cut]
        for k, m in enumerate(self.mentions):
            if m.kind != "value" or m.start >= cut:
                continue
            if any(set(m.columns) & set(v.columns) for v in later_values):
                self._use(k)

    def _projection(self) -> None:
        covered = {i for m in self.mentions for i in range(m.start, m.end)}
        for tok in self.tokens:
            if tok.lemma not in ("name", "id") or tok.index in covered or self.is_cue(tok.index):
                continue
            if tok.index in self.used_tokens:
                continue
            if self._names_a_filter(tok.index):
                continue  # "airlines whose names start with Orbit": the filter's column
            followed_by_of = (
                tok.index + 1 < len(self.tokens) and self.tokens[tok.index + 1].lemma == "of"
            )
            nxt_word = next((t for t in self.tokens[tok.index + 2 :] if not is_filler(t)), None)
            if (
                followed_by_of
                and nxt_word is not None
                and any(mm.kind == "column" and mm.start == nxt_word.index for mm in self.mentions)
            ):
                continue  # "the names of all cities": the column itself is asked for
            nxt = self.mention_after(tok.index + 1, max_gap=2, kinds=("table",))
            prev = self.mention_before(tok.index, max_gap=0, kinds=("table",))
            pick = nxt if nxt is not None else prev
            table = (self.table_of(pick) if pick is not None else None) or self.intent.table
            if tok.lemma == "name":
                labels = [Measure(c) for c in self.index.label_columns(table)]
            else:
                pk = self.index.table(table).primary_key
                labels = [Measure(pk)] if pk is not None else []
            for label in labels:
                self.projection.append((tok.index, label))
        for k, m in enumerate(self.mentions):
            if k in self.used:
                continue
            if m.kind == "column":
                if self._noun_of_value(k):
                    self._use(k)  # "rooms with a king bed": the kind of bed, not `beds`
                    continue
                col = self.column_of(k)
                borrowed = self._label_of_named_rows(k, col)
                if borrowed:
                    self._use(k)
                    for label in borrowed:
                        self.projection.append((m.start, label))
                    continue
                if col is not None:
                    self._use(k)
                    if self._shown_beside_the_rows(m.start, col):
                        for label in self.label_measures(self.intent.table):
                            self.projection.append((-1, label))
                    self.projection.append((m.start, Measure(col)))
                    self.note("columns", f"{col.table}.{col.name}")
            elif m.kind == "table":
                table = self.table_of(k) or ""
                if table.lower() != self.intent.table.lower():
                    self.extra_tables.append(table)
                    self.note("tables", table)
                    before = [t.lemma for t in self.tokens[max(0, m.start - 2) : m.start]]
                    if ("their" in before or "its" in before) and not self.measures:
                        # "products and their categories": show the related rows' names too
                        focus_shown = any(
                            p.column is not None and p.column.table == self.intent.table
                            for _, p in self.projection
                        )
                        if not focus_shown:
                            for label in self.label_measures(self.intent.table):
                                self.projection.append((-1, label))
                        for label in self.label_measures(table):
                            self.projection.append((m.start, label))
                self._use(k)

    def _noun_of_value(self, k: int) -> bool:
        """A noun right after a stored value that names the value's own column ("a king
        bed" where 'King' is a `bed_type`): it says what the value is, not a column to show."""
        m = self.mentions[k]
        prev = next((v for v in self.mentions if v.end == m.start and v.kind == "value"), None)
        if prev is None or len(prev.columns) != 1 or m.start < self._condition_start():
            return False  # ("what are the food allergies": the rows asked for)
        said = {t.lemma for t in self.tokens[m.start : m.end]}
        return bool(said & set(prev.columns[0].words)) and prev.columns[0] not in m.columns

    def _verb_of_reference(self, p: Measure) -> bool:
        """A key column that refers to another table (`assigned_to`), linked by a verb
        ("assigned"), in a grouped question: the verb says how the rows relate, it is not a
        figure to add up or a column to group by."""
        col = p.column
        if col is None or p.agg is not None or p.bucket is not None:
            return False
        refers = any(
            own.lower() == col.name.lower()
            for _, own, _ in self.index.edges.get(col.table.lower(), [])
        )
        if not refers:
            return False
        at = [pos for pos, q in self.projection if q is p]
        said = [m for m in self.mentions if at and m.start == at[0] and m.end - m.start == 1]
        return bool(said) and self.tokens[said[0].start].lemma.endswith("ed")

    def _names_a_filter(self, pos: int) -> bool:
        """ "whose name starts with", "with a name containing": the name a pattern or a value
        is matched against, not a column to show."""
        prev = self.tokens[pos - 1].lemma if pos > 0 else ""
        nxt = [t for t in self.tokens[pos + 1 : pos + 4] if t.kind == "word"]
        like_after = any(c.kind == "like" and pos < c.start <= pos + 3 for c in self.cues)
        return prev == "whose" or (like_after and (not nxt or nxt[0].lemma != "of"))

    def _label_of_named_rows(self, k: int, col: ColumnRef | None) -> list[Measure]:
        """ "the full names of all trainers" where only members have a `full_name`: the name
        asked for is the label of the rows named right after it (trainers' first and last
        names), not another table's name column."""
        if col is None or col not in self.index.label_columns(col.table):
            return []
        m = self.mentions[k]
        said = {t.lemma for t in self.tokens[m.start : m.end]}
        if set(self.index.table(col.table).words) & said or col.table.lower() in {
            t.lower() for t in self.mentioned_tables()
        }:
            return []  # "the department name of ...": that table's own name column
        near = [t for t in self.tables_near(k) if t.lower() != col.table.lower()]
        if not near or any(c.table.lower() == near[0].lower() for c in m.columns):
            return []
        return self.label_measures(near[0])

    def _lists_each_row(self, projection: list[Measure]) -> bool:
        """ "every plan with its price", "each plan and what a seat costs", "plans sorted by
        price, with the price shown": the rows are listed one by one, so each is named by its
        label beside the columns asked for."""
        table = self.intent.table.lower()
        labels = self.index.label_columns(table)
        if not projection or not labels or not self.intent.subject_named:
            return False
        if any(
            p.column is None or p.agg or p.bucket or p.column.table.lower() != table
            or p.column in labels or is_key(p.column)
            for p in projection
        ):  # fmt: skip
            return False
        for pos, p in self.projection:
            ends = [m.end for m in self.mentions if m.start == pos and m.kind == "column"]
            if (
                any(p is q for q in projection)
                and ends
                and ends[0] < len(self.tokens)
                and self.tokens[ends[0]].lemma == "of"
            ):
                return False  # "the date of birth of every customer": that column only
        words = [t for t in self.tokens if t.kind == "word"]
        for m in self.mentions:
            if m.kind != "table" or not any(t.name.lower() == table for t in m.tables):
                continue
            before = [t.lemma for t in words if t.index < m.start][-1:]
            if before in (["each"], ["every"]):
                return True
            plural = self.tokens[m.end - 1].text.lower() != self.tokens[m.end - 1].lemma
            after = [t.lemma for t in words if t.index >= m.end][:1]
            if (
                plural
                and after in (["sorted"], ["ordered"], ["ranked"], ["with"])
                and (not [t for t in words if t.index < m.start])
            ):
                return True
        return False

    def _said_of_counted_rows(self, pos: int) -> bool:
        """A column named after "how many <rows> have/are ..." with no word of grouping before
        it describes the counted rows; it is not a breakdown of the count."""
        count_cues = [c for c in self.cues if c.kind == "count" and c.end <= pos]
        if not count_cues or pos < 0 or self._after_group_word(pos):
            return False
        between = self.tokens[count_cues[0].end : pos]
        verbs = {"have", "has", "had", "are", "is", "were", "was", "who", "that", "with"}
        return any(t.lemma in verbs for t in between) and not any(
            t.lemma in ("and", "each", "every", "per", "by") or t.text == ","
            for t in self.tokens[max(0, pos - 2) : pos]
        )

    def _asks_which_values(self, intent: Intent) -> bool:
        """ "Which countries do we have accounts in?": the values a column takes over the
        rows, each once, not one line per row; so does "show all product colours" with no
        filter (a category column, not the rows' label)."""
        if len(intent.select) != 1 or intent.group_by or intent.order_by or intent.limit:
            return False
        only = intent.select[0]
        col = only.column
        if col is None or only.agg or only.bucket or col.kind != "text":
            return False
        categorical = (col.table.lower(), col.name.lower()) in self.index.sampled
        if is_key(col) and not (categorical and not col.is_primary_key):
            return False  # `city_code` with a handful of stored values is a category
        if col.table.lower() != intent.table.lower() or col in self.index.label_columns(col.table):
            return False
        words = [t for t in self.tokens if t.kind == "word"]
        if len(words) < 3:
            return False
        listing = (
            words[0].lemma in ("show", "list")
            and words[1].lemma in ("all", "every")
            and not (intent.filters or intent.conditions or intent.anti_joins)
            and not intent.extra_tables
        )  # "show all majors": every value the column takes, each once
        if words[0].lemma not in ("which", "what") and not listing:
            return False
        second = words[2] if listing else words[1]
        said = next(
            (m for m in self.mentions
             if m.kind == "column" and m.start == second.index and col in m.columns),
            None,
        )  # fmt: skip
        named = said is not None
        head = self.tokens[said.end - 1] if said is not None else second
        plural = head.text.lower() != head.lemma  # "what site codes": the noun's plural
        table_named = any(
            m.kind == "table" and any(t.name.lower() == col.table.lower() for t in m.tables)
            for m in self.mentions
        )
        return named and plural and (table_named or listing)

    def _asks_how_much(self) -> bool:
        return any(
            a.lemma == "how" and b.lemma == "much"
            for a, b in zip(self.tokens, self.tokens[1:], strict=False)
        )

    def _money_column(self, table: str) -> ColumnRef | None:
        """The table's one column named as an amount of money ("amount", "price", "total")."""
        money = [
            c
            for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "numeric" and not is_key(c) and c.words and c.words[-1] in _MONEY_WORDS
        ]
        exact = [c for c in money if len(c.words) == 1]
        pick = exact if exact else money
        return pick[0] if len(pick) == 1 else None

    def _shown_beside_the_rows(self, pos: int, col: ColumnRef) -> bool:
        """ "staff hired in 2023, with their hire dates", "every plan with its price": the
        column is shown beside the rows, which are still named by their own label."""
        before = [t.lemma for t in self.tokens[max(0, pos - 3) : pos] if t.kind == "word"]
        first = next((t.lemma for t in self.tokens if t.kind == "word"), "")
        then_what = (
            first in ("which", "who")
            and "what" in before
            and "and" in [t.lemma for t in self.tokens[max(0, pos - 5) : pos]]
        )  # "which customers did we lose ..., and on what date?"
        if not then_what and ("with" not in before or not (set(before) & {"their", "its", "the"})):
            return False
        if self.measures or not self.intent.subject_named:
            return False
        if col.table.lower() != self.intent.table.lower() or col in self.index.label_columns(
            col.table
        ):
            return False
        return not any(
            p.column is not None and p.column.table.lower() == col.table.lower() and at < pos
            for at, p in self.projection
        )

    def _listed_with_others(self, p: Measure) -> bool:
        """ "the name, city and country of airports in New York": the column is one of a
        list of what to show, asked for in so many words."""
        spans = sorted(
            (m.start, m.end)
            for m in self.mentions
            if m.kind == "column" and any(m.start == at for at, q in self.projection)
        )
        own = {at for at, q in self.projection if q is p}
        for (first, end), (start, _) in zip(spans, spans[1:], strict=False):
            glue = self.tokens[end:start]
            if all(t.kind == "punct" or t.lemma in ("and", "the") for t in glue) and (
                own & {first, start}
            ):
                return True
        return False

    def _ordered_by_label(self) -> bool:
        """ "ordered by their names", "sorted by title": an ordering word followed by the
        word for the rows' label (read as what to show, not as a column of its own)."""
        for cue in self.cues:
            if cue.kind != "order":
                continue
            nxt = next(
                (
                    t
                    for t in self.tokens[cue.end :]
                    if t.kind != "punct" and t.lemma not in ("the", "their", "its", "his", "her")
                ),
                None,
            )
            if nxt is not None and nxt.lemma in ("name", "title") and nxt.index - cue.end <= 2:
                return not any(m.start == nxt.index for m in self.mentions)
        return False

    def _without_unasked_group_labels(self, projection: list[Measure]) -> list[Measure]:
        """ "the lodge ids and the number of cabins for each lodge": the groups are shown by
        the identifier the question asks for, so the label a group of rows is otherwise shown
        by is left out."""
        added = set(self.table_group_projection)
        if any(t.lemma in ("name", "title", "who") for t in self.tokens):
            return projection  # ("the names and ids of each account": the label is asked too)
        key_words = ("id", "key", "code", "number", "no")
        said_key = {
            id(p)
            for pos, p in self.projection
            for m in self.mentions
            if m.start == pos
            and m.kind == "column"
            and any(t.lemma in key_words for t in self.tokens[m.start : m.end])
        }
        asked = [p for p in projection if id(p) not in added and id(p) in said_key and p.column]
        drop: set[int] = set()
        for p in projection:
            if id(p) not in added or p.column is None:
                continue
            pk = self.index.table(p.column.table).primary_key
            if pk is not None and any(
                a.column == pk or (a.column is not None and self._refers(a.column, pk))
                for a in asked
            ):
                drop.add(id(p))
        return [p for p in projection if id(p) not in drop]

    def _once_per_fact(self, intent: Intent) -> list[Measure]:
        """ "the invoice number and the number of transactions for each invoice": the key
        that refers to another table and the key it refers to hold the same value on every
        joined row; shown once (the focus table's), not side by side."""
        out: list[Measure] = []
        for m in intent.select:
            col = m.column
            twin = next(
                (
                    o
                    for o in out
                    if col is not None
                    and o.column is not None
                    and o.agg is None
                    and o.bucket is None
                    and m.agg is None
                    and m.bucket is None
                    and self._refers(o.column, col)
                ),
                None,
            )
            if twin is None:
                out.append(m)
            elif col is not None and col.table.lower() == intent.table.lower():
                out[out.index(twin)] = m
        return out

    def _refers(self, a: ColumnRef, b: ColumnRef) -> bool:
        """Whether one of the two columns is a foreign key to the other, the one reference
        between their tables (with two, "friends" and "people" may be joined by the other)."""
        between = [
            (own.lower(), theirs.lower())
            for other, own, theirs in self.index.edges.get(a.table.lower(), [])
            if other.lower() == b.table.lower()
        ]
        return set(between) == {(a.name.lower(), b.name.lower())}

    def _applied_not_shown(self, p: Measure) -> bool:
        """A column named in the part of the question that says which rows, and used there:
        the condition it is compared in ("wines produced before the year of 2010") or the
        ranking that picks the rows ("the appointment that started most recently"). The
        question asks for the other columns; this one only chose the rows."""
        col = p.column
        if col is None or p.agg is not None or p.bucket is not None:
            return False
        at = [pos for pos, q in self.projection if q is p]
        if not at or not self._named_in_condition(at[0], p) or self._listed_with_others(p):
            return False
        filtered = any(
            f.column == col and f.op in _COMPARED and f.peer is None for f in self.intent.filters
        )
        ranked = bool(self.limit) and any(
            m.column == col and m.agg is None for _, m, _ in self.order_keys
        )
        return filtered or ranked

    def _finish(self) -> Intent:
        intent = self.intent

        def ordered(items: list[tuple[int, Measure]]) -> list[Measure]:
            out: list[Measure] = []
            for _, m in sorted(items, key=lambda x: x[0]):
                if not any(same_measure(m, o) for o in out):
                    out.append(m)
            return out

        measures = ordered(self.measures)
        group = ordered(self.group_keys)
        projection = [
            m for m in ordered(self.projection) if not any(same_measure(m, x) for x in measures)
        ]
        unfixed = [
            p for p in projection
            if not _fixed_by_filter(p, intent.filters) or self._listed_with_others(p)
        ]  # fmt: skip
        if unfixed:
            projection = unfixed  # "dorms for women (gender F)": every row shows the same F
        projection = self._without_unasked_group_labels(projection)
        applied = [p for p in projection if not self._applied_not_shown(p)]
        if applied and not self.measures:
            projection = applied  # "prices of wines made before the year 2010": not the year
        order = [(m, desc) for _, m, desc in sorted(self.order_keys, key=lambda x: x[0])]
        ordered_by_aggregate = any(m.agg for m, _ in order)
        if ordered_by_aggregate and not group:
            ranked = {m.column for m, _ in order if m.agg in ("SUM", "AVG") and m.column}
            # "top 10 customers by MRR, with their MRR": the figure shown is the ranked total
            projection = [p for p in projection if p.agg is not None or p.column not in ranked]
        if (ordered_by_aggregate or intent.having) and not group:
            plain = [p for p in projection if p.agg is None]
            named_having = bool(intent.having) and all(
                isinstance(h.column, Measure)
                and (h.column.sql is not None or h.column.agg in ("AVG", "SUM", "MIN", "MAX"))
                for h in intent.having
            )  # "industries with an average CSAT below 4": per industry, not per row
            if plain and (not intent.having or named_having):
                group = list(plain)
            else:
                labels = self.label_measures(intent.table, key_fallback=True)
                pk = self.index.table(intent.table).primary_key
                group = [Measure(pk)] if pk else list(labels)
                for label in labels:
                    if not any(same_measure(label, g) for g in group):
                        group.append(label)
                if not projection:
                    projection = labels
            if not group:
                group = list(plain)
            if not group:
                raise self.decline("could not tell what to count or rank the rows by")
        if group and not measures and not ordered_by_aggregate and not intent.having:
            numeric = [
                p for p in projection
                if p.column is not None and p.column.kind == "numeric" and p.bucket is None
                and not p.column.is_primary_key and not any(same_measure(p, g) for g in group)
            ]  # fmt: skip
            if (
                not numeric
                and not any(g.bucket for g in group)
                and not self._counting_words()
                and not self.breakdown
            ):
                keys = set(self.table_group_projection)
                projection = [p for p in projection if id(p) not in keys]
                group = []
        if measures and projection and not group:
            # implicit grouping ("types and the number of games") only by the counted rows'
            # own columns; a column of another table only says which rows take part
            own = {intent.table.lower()} | {t.lower() for m in measures for t in m.tables}
            first_measure = min(pos for pos, _ in self.measures) if self.measures else 0
            asked_before = {
                id(m)
                for pos, m in self.projection
                if pos < first_measure or self._after_group_word(pos)
            }
            said_of_rows = {
                id(m) for pos, m in self.projection if self._said_of_counted_rows(pos)
            }  # "how many contacts have opted in to marketing emails": not one count per email
            group = [
                p for p in projection
                if p.agg is None and p.column is not None and id(p) not in said_of_rows
                and (p.column.table.lower() in own or id(p) in asked_before)
            ]  # fmt: skip
            projection = [p for p in projection if id(p) not in said_of_rows]
            others = [p for p in projection if p.agg is None and not any(p is g for g in group)]
            if others and not group:
                for p in others:
                    if p.column is not None:
                        self.extra_tables.append(p.column.table)
                projection = [p for p in projection if not any(p is o for o in others)]
            elif others:
                group.extend(others)
        if group:
            if not measures and not ordered_by_aggregate and not intent.having:
                numeric = [
                    p for p in projection
                    if p.column is not None and p.column.kind == "numeric" and p.bucket is None
                    and not any(same_measure(p, g) for g in group)
                ]  # fmt: skip
                if not numeric:
                    measures = [Measure(None, "COUNT", count_table=intent.table)]
            fixed: list[Measure] = []
            for p in projection:
                if self._verb_of_reference(p):
                    continue  # "accounts assigned to each manager": the verb of the key joined on
                if any(same_measure(p, g) for g in group) or p.agg is not None:
                    fixed.append(p)
                elif p.column is not None and p.column.kind == "numeric" and not is_key(p.column):
                    fixed.append(Measure(p.column, "SUM"))
                else:
                    group.append(p)
                    fixed.append(p)
            projection = fixed
        pk = self.index.table(intent.table).primary_key
        for m, _desc in order:
            shown = not any(m is a for a in self.argmax)
            if (
                shown
                and m.agg
                and (m.column is not None or (m.sql is not None and self._also_how_much(0)))
                and not any(same_measure(m, x) for x in measures)
            ):
                measures.append(m)  # (a layer measure ranked by: shown when "and how much")
            if (
                m.agg == "COUNT"
                and m.column is None
                and (m.count_table or "").lower() == intent.table.lower()
                and pk is not None
                and any(g.column == pk for g in group)
            ):
                raise self.decline(f"could not tell what to rank {intent.table} by")
        listed = not measures and not group and self._lists_each_row(projection)
        select = projection + measures
        label_columns = self.index.label_columns(intent.table)
        one_row = any(
            isinstance(f.column, ColumnRef) and f.column in label_columns and f.op == "="
            for f in intent.filters
        )
        numeric_shown = one_row and any(
            p.column is not None and p.column.kind == "numeric" and not is_key(p.column)
            for p in projection
        )  # "how much does the Team plan cost": the one row's stored price is the answer
        if (
            self._asks_how_much()
            and not any(m.agg for m in select)
            and not group
            and not numeric_shown
        ):
            amounts = [
                p.column
                for p in projection
                if p.column is not None and p.column.kind == "numeric" and not is_key(p.column)
            ]
            amount = amounts[0] if len(amounts) == 1 else self._money_column(intent.table)
            if amount is None or any(not same_measure(p, Measure(amount)) for p in projection):
                raise self.decline("'how much' asks for a total, but no amount to add up was found")
            select = [Measure(amount, "SUM")]  # "how much is still owed": the total amount
            self.note("aggregates", f"sum({amount.name})")
        if not select and not self._asks_for_everything():
            select = self.label_measures(intent.table) if not intent.extra_tables else []
            if not select and not intent.extra_tables:
                select = self._identifying_columns(intent, order)
        intent.select = select
        intent.group_by = group
        intent.order_by = order
        if self.order_by_projection and (projection or measures):
            key = measures[0] if measures and (group or not projection) else projection[0]
            intent.order_by = [(key, self._direction(default=False))]
        elif not order and not group and not measures and select:
            by_label = self._ordered_by_label()
            if by_label or (self.order_by_projection and not projection):
                # "departments ordered by their names", "the alphabetically ordered list of
                # all medications": the rows' label the answer shows is the order
                own_labels = self.index.label_columns(intent.table)
                plain = [m for m in select if m.agg is None and m.column is not None]
                plain.sort(key=lambda m: m.column not in own_labels)
                if plain:
                    intent.order_by = [(plain[0], self._direction(default=False))]
        if listed:
            intent.select = [*self.label_measures(intent.table), *intent.select]
        if self.top_mode and self.limit and self.limit > 1 and not intent.order_by:
            raise self.decline(f"could not tell what to rank the top {self.limit} by")
        intent.limit = self.limit if intent.order_by else None
        intent.extra_tables = [t for t in self.extra_tables if t.lower() != intent.table.lower()]
        intent.select = self._once_per_fact(intent)
        self._redate_by_measure(intent)
        self._money_received(intent)
        intent.distinct = (
            any(c.kind == "distinct" for c in self.cues)
            and not any(m.distinct for m in measures)
            and not group
            and not measures
        ) or self._asks_which_values(intent)
        lemmas = {t.lemma for t in self.tokens if t.kind == "word" and t.lemma not in STOP_WORDS}
        lemmas |= {stem for lemma in list(lemmas) for stem in verb_stems(lemma)}
        intent.words = frozenset(lemmas)
        intent.preferred_tables = frozenset(
            name
            for name, ref in self.index.tables.items()
            if set(ref.words) & lemmas or name in {t.lower() for t in self.mentioned_tables()}
        )
        self._check_coverage()
        if any(c.kind == "share" for c in self.cues):
            self._as_share(intent)
        self._show_referred_rows(intent)
        unique: list[Filter] = []
        for f in intent.filters:
            if not any(f == g for g in unique):
                unique.append(f)
        intent.filters = unique
        intent.signals = self._signals(intent)
        intent.recognised = {k: list(v) for k, v in self.recognised.items()}
        return intent

    def _as_share(self, intent: Intent) -> None:
        """ "What percentage of tickets were escalated?": the condition becomes the share of
        rows that meet it; a time range stays the population ("of 2024's invoices")."""
        intent.select = [
            m for m in intent.select
            if not (
                m.agg == "COUNT" and m.column is None
                and (m.count_table or intent.table).lower() == intent.table.lower()
            )
        ]  # fmt: skip  # "percentage of customers in each band": the count is the population
        layer_measures = [m for m in intent.select if m.agg == "LAYER"]
        if not layer_measures:
            layer_measures = self._share_of_an_amount(intent)
        if layer_measures and not intent.anti_joins and not intent.having:
            self._share_of_measure(intent, layer_measures)
            return
        if intent.anti_joins or intent.having or any(m.agg for m in intent.select):
            raise self.decline("a share of an aggregate or of missing rows is not supported")
        is_period = [
            isinstance(f.column, ColumnRef)
            and f.column.kind == "date"
            and f.op in (">=", "<", "between", "recent", "not recent", "this", "previous")
            for f in intent.filters
        ]
        condition = [f for f, p in zip(intent.filters, is_period, strict=True) if not p]
        share_at = min((c.end for c in self.cues if c.kind == "share"), default=0)
        named = [c for c in intent.conditions if c.position >= 0]
        population = [
            c
            for c in named
            if c.position >= share_at
            and all(is_filler(t) for t in self.tokens[share_at : c.position])
        ]  # "what percentage of active accounts ...": who is counted, not what is measured
        measured = [c for c in named if c not in population]
        if len(condition) + len(measured) != 1:
            raise self.decline("a share needs exactly one condition to measure")
        intent.filters = [f for f, p in zip(intent.filters, is_period, strict=True) if p]
        intent.conditions = [c for c in intent.conditions if c not in measured]
        keys = intent.group_by
        if not keys and any(c.kind in ("group", "bucket", "by") for c in self.cues):
            keys = []
            for _, m in sorted(self.group_keys, key=lambda x: x[0]):
                if not any(same_measure(m, k) for k in keys):
                    keys.append(m)
            intent.group_by = keys
        shown = self._shown_keys(intent, keys)
        intent.group_by = [*keys, *(m for m in shown if not any(same_measure(m, k) for k in keys))]
        intent.select = [
            *shown,
            Measure(
                None,
                "PCT",
                count_table=intent.table,
                condition=condition,
                condition_sql=[c.sql for c in measured],
            ),
        ]
        intent.order_by = [(m, d) for m, d in intent.order_by if m.bucket]
        intent.distinct = False
        what = condition[0].column if condition else measured[0].name
        self.note("share", f"percentage where {what}")

    def _shown_keys(self, intent: Intent, keys: list[Measure]) -> list[Measure]:
        shown: list[Measure] = []
        for key in keys:
            col = key.column
            other = col is not None and col.is_primary_key and col.table != intent.table
            labels = self.label_measures(col.table) if other and col is not None else []
            for m in labels or [key]:  # "for each account manager": shown by name
                if not any(same_measure(m, s) for s in shown):
                    shown.append(m)
        return shown

    def _share_of_measure(self, intent: Intent, layer_measures: list[Measure]) -> None:
        """ "What percentage of 2024 revenue came from EMEA?": the share of a semantic
        layer's measure that meets a condition, 100 x measure where met / measure. A time
        range stays the population. "What percentage of the amount invoiced has been
        collected": a second measure over the same amount names the condition (its filter)."""
        base = layer_measures[0]
        if len(layer_measures) != 1:
            raise self.decline("a share of several measures is not supported")
        layer = self.index.semantic
        # a second measure of the same amount ("invoiced" ... "collected"): its own filter
        # is the part measured
        same_amount = {
            m.name
            for m in (layer.measures if layer is not None else [])
            if m.expression == base.sql and _label(m.name) != base.label
        }
        implied = [c for c in intent.conditions if c.position < 0 and c.name in same_amount]
        measured_sql = [c.sql for c in implied]
        intent.conditions = [c for c in intent.conditions if c not in implied]
        is_period = [
            isinstance(f.column, ColumnRef)
            and f.column.kind == "date"
            and f.op in (">=", "<", "between", "recent", "not recent", "this", "previous")
            for f in intent.filters
        ]
        condition = [f for f, p in zip(intent.filters, is_period, strict=True) if not p]
        share_at = min((c.end for c in self.cues if c.kind == "share"), default=0)
        named = [c for c in intent.conditions if c.position >= 0]
        measured = [
            c for c in named
            if c.position < share_at
            or not all(is_filler(t) for t in self.tokens[share_at : c.position])
        ]  # fmt: skip  # (not who is counted: "what percentage of active accounts")
        if len(condition) + len(measured) + len(measured_sql) != 1:
            raise self.decline("a share of a measure needs exactly one condition to measure")
        if base.sql is None or not _adds_up(base.sql):
            raise self.decline("only a measure that adds up (a sum or a count) has shares")
        intent.filters = [f for f, p in zip(intent.filters, is_period, strict=True) if p]
        intent.conditions = [c for c in intent.conditions if c not in measured]
        read = {(t.lower(), c.lower()) for t, c in _fragment_columns(base.sql)}
        read |= {
            (f.column.table.lower(), f.column.name.lower())
            for f in condition
            if isinstance(f.column, ColumnRef)
        }  # "from customers outside the North region": the region is the condition's
        keys = [
            k for k in intent.group_by
            if k.bucket is not None or k.column is None
            or (k.column.table.lower(), k.column.name.lower()) not in read
        ]  # fmt: skip  # "the amount we invoiced": the measure's own amount, not a key
        intent.group_by = keys
        shown = self._shown_keys(intent, keys)
        intent.group_by = [*keys, *(m for m in shown if not any(same_measure(m, k) for k in keys))]
        intent.select = [
            *shown,
            Measure(
                None,
                "PCT",
                sql=base.sql,
                label="percentage",
                sql_tables=base.sql_tables,
                condition=condition,
                condition_sql=[*(c.sql for c in measured), *measured_sql],
            ),
        ]
        intent.order_by = [(m, d) for m, d in intent.order_by if m.bucket]
        intent.distinct = False
        self.note("share", f"percentage of {base.label}")

    def _identifying_columns(
        self, intent: Intent, order: list[tuple[Measure, bool]]
    ) -> list[Measure]:
        """Rows of a table without a name column: its key and the columns the question used
        to pick or order them ("the 3 most recent orders"), rather than every column."""
        pk = self.index.table(intent.table).primary_key
        if pk is None:
            return []
        out = [Measure(pk)]
        used = [m.column for m, _ in order if m.agg is None and m.bucket is None]
        used += [f.column for f in intent.filters if isinstance(f.column, ColumnRef)]
        for col in used:
            if (
                col is not None
                and col.table.lower() == intent.table.lower()
                and not any(m.column == col for m in out)
            ):
                out.append(Measure(col))
        return out


def _adds_up(sql: str) -> bool:
    """Whether a measure's aggregates are all sums and plain counts (a share of it means
    something); an average, a distinct count or a ratio has no parts that add up."""
    try:
        tree = sqlglot.parse_one(sql)
    except sqlglot.errors.ParseError:
        return False
    aggregates = list(tree.find_all(exp.AggFunc))
    if not aggregates or tree.find(exp.Div) is not None:
        return False
    return all(
        isinstance(a, exp.Sum) or (isinstance(a, exp.Count) and a.find(exp.Distinct) is None)
        for a in aggregates
    )


def _label(name: str) -> str:
    """The name a layer measure is shown under (as `definitions` labels it)."""
    return re.sub(r"\W+", "_", name.lower()).strip("_") or "measure"


def _fragment_columns(sql: str) -> list[tuple[str, str]]:
    """(table, column) of every qualified column a layer fragment reads."""
    try:
        tree = sqlglot.parse_one(sql)
    except sqlglot.errors.ParseError:
        return []
    return [(c.table, c.name) for c in tree.find_all(exp.Column) if c.table]


def _fixed_by_filter(p: Measure, filters: list[Filter]) -> bool:
    """A plain column the question pins to one value: shown, it repeats that value."""
    return (
        p.agg is None
        and p.bucket is None
        and p.column is not None
        and any(
            f.column == p.column
            and f.op == "="
            and len(f.values) == 1
            and f.peer is None
            and f.subquery_agg is None
            for f in filters
        )
    )
