"""What is measured: counts, aggregates ("average age", "total amount"), top N and
superlatives ("the most", "highest", "cheapest")."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import LENGTH_WORDS, SUBJECT_WORDS, Cue
from backend.nl2sql.engines.builtin.extremes import CoordinatedExtremeReading
from backend.nl2sql.engines.builtin.intents import Measure
from backend.nl2sql.engines.builtin.lexicon import STOP_WORDS, Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, Mention
from backend.nl2sql.engines.builtin.reading import is_filler, is_key

_EACH = frozenset({"each", "every"})

_NAMING_WORDS = frozenset({"number", "no", "num", "id", "code", "room", "unit", "gate", "route"})
"""Nouns a number after them names a thing by ("room 111", "order no. 5")."""


_FIGURE_OWNERS = frozenset({"their", "its", "the", "his", "her"})
_FIGURE_WORDS = frozenset(
    {"count", "counts", "total", "totals", "number", "numbers", "figure", "figures", "amount",
     "amounts", "sum", "sums", "value", "values"}
)  # fmt: skip
"""Words naming the figure a ranking is by, asked for beside the ranked rows ("with their
totals")."""


class MeasureReading(CoordinatedExtremeReading):
    """Passes: counts and aggregates, then top N and superlatives."""

    def _counts_and_aggregates(self) -> None:
        self._event_rates()
        self._computed_measures()
        for cue in list(self.cues):
            if cue.kind not in ("count", "agg"):
                continue
            if cue not in self.cues:
                continue
            distinct = any(
                c.kind == "distinct" and cue.end <= c.start <= cue.end + 1 for c in self.cues
            )
            following = self._chained_cue(cue)
            if cue.kind == "count" and following is not None and following.kind == "count":
                continue
            if (
                cue.kind == "count"
                and self.tokens[cue.start].lemma == "number"
                and cue.start > 0
                and any(m.end == cue.start and i in self.used for i, m in enumerate(self.mentions))
            ):
                continue  # "total enrollment number of all colleges": part of the column
            if (
                cue.kind == "agg"
                and following is not None
                and following.kind == "count"
                and following.start == cue.end
            ):
                # "average number of rooms": an aggregate of a column that holds a count
                self.cues.remove(following)
                k = self.mention_after(following.end, max_gap=1, kinds=("column",))
                col = self.column_of(k) if k is not None else None
                if k is None or col is None or col.kind != "numeric":
                    raise self.decline(f"'{cue.payload.lower()} number of' needs a counted column")
                self._use(k)
                self.measures.append((cue.start, Measure(col, cue.payload)))
                continue
            k = self.mention_after(cue.end, max_gap=1)
            named_before = self._counted_before(cue)
            if named_before is not None:
                k = named_before  # "the patient count by ward": the patients are counted
            if (
                k is not None
                and following is not None
                and following.kind == "agg"
                and self.mentions[k].start >= following.end
            ):
                k = None  # "minimum, average and maximum age": the column comes after them all
            if k is None and cue.kind == "agg" and following is not None:
                target = self._chain_target(following)
                if target is not None and self.mentions[target].kind == "column":
                    col = self.column_of(target)
                    if col is not None:
                        self.measures.append((cue.start, Measure(col, cue.payload)))
                        self.note("aggregates", f"{cue.payload.lower()}({col.name})")
                continue
            if (
                cue.kind == "count"
                and k is None
                and any(
                    m.sql is not None and m.sql.upper().startswith("COUNT")
                    for _, m in self.measures
                )
            ):
                continue  # "2024 sign-ups: how many did we get?": the measure counts them
            if k is None and self._figure_of_the_ranking(cue):
                continue
            if cue.kind == "count":
                if k is not None and self.mentions[k].kind == "table":
                    self._use(k)
                    table = self.table_of(k) or self.intent.table
                    self.measures.append((cue.start, Measure(None, "COUNT", count_table=table)))
                elif k is not None and self._states_an_event(k):
                    # "how many people have left": rows counted where the event happened
                    self.measures.append(
                        (cue.start, Measure(None, "COUNT", count_table=self.intent.table))
                    )
                elif k is not None and self.mentions[k].kind == "column":
                    col = self.column_of(k)
                    self._use(k)
                    holds_count = (
                        col is not None
                        and col.kind == "numeric"
                        and not col.is_primary_key
                        and not distinct
                        and self.tokens[cue.start].lemma in ("number", "total")
                    )
                    if holds_count and col is not None:
                        # "number of hours played": the column already holds the number.
                        if self.tokens[cue.start].lemma == "total":
                            self.measures.append((cue.start, Measure(col, "SUM")))
                        else:
                            self.projection.append((cue.start, Measure(col)))
                    elif distinct and col is not None:
                        self.measures.append((cue.start, Measure(col, "COUNT", distinct=True)))
                    else:
                        self.measures.append(
                            (cue.start, Measure(None, "COUNT", count_table=self.intent.table))
                        )
                else:
                    self.measures.append(
                        (cue.start, Measure(None, "COUNT", count_table=self.intent.table))
                    )
                self.note("aggregates", "count")
                continue
            if k is None:
                continue
            m = self.mentions[k]
            if m.kind == "column":
                col = self.column_of(k)
                if col is None:
                    continue
                self._use(k)
                self.measures.append((cue.start, Measure(col, cue.payload, distinct=distinct)))
                self.note("aggregates", f"{cue.payload.lower()}({col.name})")
                for j in self._conjoined_columns(k):
                    other = self.column_of(j)
                    if (
                        other is not None
                        and other.kind == "numeric"
                        and not other.is_primary_key
                        and other.words[-1] not in ("id", "code")
                    ):
                        self._use(j)
                        start = self.mentions[j].start
                        self.measures.append((start, Measure(other, cue.payload)))
            elif m.kind == "table" and self._sole_measure(self.table_of(k) or "") is not None:
                # "average rating" where `rating` is a table with one numeric measure
                sole = self._sole_measure(self.table_of(k) or "")
                if sole is not None:
                    self._use(k)
                    self.measures.append((cue.start, Measure(sole, cue.payload)))
                    self.note("aggregates", f"{cue.payload.lower()}({sole.name})")
            elif m.kind == "table" and cue.payload == "SUM":
                self._use(k)
                table = self.table_of(k) or self.intent.table
                self.measures.append((cue.start, Measure(None, "COUNT", count_table=table)))
                self.note("aggregates", "count")

    def _counted_before(self, cue: Cue) -> int | None:
        """ "patient count", "ticket counts per agent": a table named right before a bare
        "count" is what is counted, not the table after it."""
        if cue.kind != "count" or cue.end - cue.start != 1 or cue.start == 0:
            return None
        if self.tokens[cue.start].lemma not in ("count", "counts", "tally", "total"):
            return None
        k = next(
            (
                k
                for k, m in enumerate(self.mentions)
                if m.end == cue.start and m.kind == "table" and k not in self.used
            ),
            None,
        )
        return k

    def _each_of_the_figure(self, cue: Cue) -> bool:
        """ "..., and how much (for) each?", "how many songs each released", "and the number
        of songs for each": the "each" asks for the figure per ranked row, not for a ranking
        within groups; nothing the schema names follows it."""
        words = [t.lemma for t in self.tokens[max(0, cue.start - 5) : cue.start]]
        asked = any(
            words[i : i + 2] in (["how", "much"], ["how", "many"]) for i in range(len(words))
        ) or bool({"number", "count", "total"} & set(words))
        if not asked:
            return False
        return not any(
            m.start == cue.end
            and m.kind in ("table", "column", "value")
            and not self._participle_of_date(m)
            for m in self.mentions
        )

    def _participle_of_date(self, m: Mention) -> bool:
        """ "how many songs each released": a verb linked to a date column, not a group."""
        word = self.tokens[m.start].lemma
        return (
            m.kind == "column"
            and m.end - m.start == 1
            and word.endswith("ed")
            and all(c.kind == "date" for c in m.columns)
        )

    def _figure_of_the_ranking(self, cue: Cue) -> bool:
        """ "top 3 wards by number of patients, with their counts": a count word after
        "with their" naming nothing of its own is the figure the ranking is by, shown beside
        the rows ranked; not a count of the rows themselves."""
        if cue.start < 2 or not any(c.kind in ("top", "super") for c in self.cues):
            return False
        if cue.kind == "agg" and cue.payload != "SUM":
            return False  # "with their average": another figure
        owner, lead = self.tokens[cue.start - 1], self.tokens[cue.start - 2]
        if owner.lemma not in _FIGURE_OWNERS - {"the"} or lead.lemma not in ("with", "and"):
            return False
        if any(t.kind == "word" for t in self.tokens[cue.end :]):
            return False
        if not any(c.kind in ("count", "agg") and c is not cue for c in self.cues):
            return False  # the ranking adds nothing up: "with their counts" has no figure
        self.used_tokens.update({owner.index, lead.index, *range(cue.start, cue.end)})
        return True

    def _sole_measure(self, table: str) -> ColumnRef | None:
        """The one numeric, non-key column of `table`, if it has exactly one."""
        if not table:
            return None
        numeric = [
            c
            for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "numeric" and not is_key(c) and c.words[-1:] != ("year",)
        ]
        if len(numeric) == 1:
            self.inferred_measures += 1  # the question named the table, not the column
            return numeric[0]
        return None

    def _conjoined_columns(self, k: int) -> list[int]:
        """Column mentions joined to mention k by "and" / commas ("average X and Y")."""
        out: list[int] = []
        j = k + 1
        while j < len(self.mentions) and j not in self.used:
            between = self.tokens[self.mentions[j - 1].end : self.mentions[j].start]
            if not between or not all(
                t.kind == "punct" or t.lemma in ("and", "the", "its", "their") for t in between
            ):
                break
            if self.mentions[j].kind != "column":
                break
            out.append(j)
            j += 1
        return out

    def _chained_cue(self, cue: Cue) -> Cue | None:
        """The aggregate cue right after this one ("minimum, average and maximum age")."""
        pos = cue.end
        while pos < len(self.tokens) and (
            self.tokens[pos].kind == "punct" or self.tokens[pos].lemma in ("and", "or", "the")
        ):
            pos += 1
        return next((c for c in self.cues if c.start == pos and c.kind in ("agg", "count")), None)

    def _chain_target(self, cue: Cue) -> int | None:
        k = self.mention_after(cue.end, max_gap=1)
        if k is not None:
            return k
        following = self._chained_cue(cue)
        return self._chain_target(following) if following is not None else None

    def _top_and_superlatives(self) -> None:
        for cue in list(self.cues):
            if cue.kind == "top":
                nxt = self.tokens[cue.end] if cue.end < len(self.tokens) else None
                if nxt is not None and nxt.kind == "number":
                    self.limit = int(float(nxt.lemma))
                    self._use_token(nxt)
                    if self.limit < 1:
                        raise self.decline(f"'top {nxt.text}' asks for no rows")
                else:
                    self.limit = self.limit or 1
                self.top_mode = True
                k = self.mention_after(cue.end, max_gap=0, kinds=("column",))
                col = self.column_of(k) if k is not None else None
                if k is not None and col is not None and col.kind == "numeric":
                    self._use(k)
                    self.order_keys.append((cue.start, Measure(col), True))
                continue
            if cue.kind != "super":
                continue
            prev = self.tokens[cue.start - 1] if cue.start > 0 else None
            if (
                prev is not None
                and prev.kind == "number"
                and prev.index not in self.used_tokens
                and not self._names_a_thing(prev)
            ):
                self.limit = int(float(prev.lemma))
                self._use_token(prev)
            for m in self.mentions:
                before = self.tokens[m.start - 1] if m.start > 0 else None
                rows = m.kind == "table" or (
                    m.kind == "column"
                    and bool(m.columns)
                    and self.index.referred_row(m.columns[0]) is not None
                )  # "which five reps ...": rows a key refers to, counted too
                if (
                    rows
                    and m.end <= cue.start
                    and before is not None
                    and before.kind == "number"
                    and before.index not in self.used_tokens
                    and self.limit is None
                    and not self._names_a_thing(before)
                ):
                    self.limit = int(float(before.lemma))
                    self._use_token(before)
            extreme = self._coordinated_extreme(cue)
            if extreme is not None:  # "the highest, lowest and average GPA": MAX, MIN, AVG
                self.measures.append((cue.start, extreme))
                continue
            target = self._superlative_target(cue) or self._counted_by_a_verb(cue)
            if target is None:
                raise self.decline("could not tell what 'highest/most/least' refers to")
            measure, desc = target
            self.note("order", f"{'highest' if desc else 'lowest'} {self._describe(measure)}")
            if self._sorts_first(cue):
                # "every plan with its price, cheapest first": an order, not the one cheapest
                self.order_keys.append((cue.start, measure, desc))
                continue
            as_aggregate = (
                measure.agg is None
                and measure.column is not None
                and self.limit is None
                and not self.top_mode
                and not self._has_subject_before(cue.start)
            )
            if as_aggregate and measure.column is not None:
                self.measures.append((cue.start, Measure(measure.column, "MAX" if desc else "MIN")))
                continue
            each = any(
                c.kind == "group"
                and {t.lemma for t in self.tokens[c.start : c.end]} & _EACH
                and not self._each_of_the_figure(c)
                for c in self.cues
            )
            if (
                each
                and not self.top_mode
                and (self.limit or 1) == 1
                and not self._best_within_each_group(cue)
            ):
                # "in each region, which customer has the most": one answer per group
                raise self.decline("the highest or lowest within each group is not supported")
            self.order_keys.append((cue.start, measure, desc))
            if not self.top_mode and not self._also_how_much(cue.end):
                self.argmax.append(measure)  # "which X has the highest Y": X only
            self.limit = self.limit or 1
        self._decline_opposite_ranks()

    def _names_a_thing(self, number: Token) -> bool:
        """Whether a number follows a noun it names ("room 111", "studio 111 teaches the
        most", "order no. 5"): an identifier or a value, not how many rows to show. Only a
        number said as a count of what is ranked ("the 3 highest", "which five reps", "top
        10") limits the rows."""
        k = number.index - 1
        while k >= 0 and self.tokens[k].kind == "punct" and self.tokens[k].text in ".#":
            k -= 1
        if k < 0:
            return False
        before = self.tokens[k]
        if before.kind != "word":
            return False
        if before.lemma in _NAMING_WORDS:
            return True
        return any(m.start <= k < m.end for m in self.mentions)

    def _best_within_each_group(self, cue: Cue) -> bool:
        """Whether a later pass reads "in each X, which Y has the most Z" (see `ranks.py`)."""
        return False

    def _states_an_event(self, k: int) -> bool:
        """A one-word link to a nullable date by a participle ("left", "churned"): a state
        of the rows the null-state pass reads, not a column to count."""
        m = self.mentions[k]
        if m.kind != "column" or m.end - m.start != 1:
            return False
        col = self.column_of(k)
        word = self.tokens[m.start].lemma
        participle = word.endswith("ed") or word in ("left", "paid", "sold", "sent", "gone")
        return col is not None and col.kind == "date" and col.nullable and participle

    def _sorts_first(self, cue: Cue) -> bool:
        """ "cheapest first", "newest first": a superlative followed by "first" sorts the rows."""
        if self.limit is not None or self.top_mode or cue.end >= len(self.tokens):
            return False
        nxt = self.tokens[cue.end]
        if nxt.lemma != "first":
            return False
        following = self.tokens[cue.end + 1 :]
        if following and following[0].kind == "word":
            return False  # "the highest first name", "cheapest first class"
        self._use_token(nxt)
        for k, m in enumerate(self.mentions):
            if m.start <= nxt.index < m.end:
                m.kind = "spent"  # read as part of the order, not as a link
                self._use(k)
        return True

    def _also_how_much(self, pos: int) -> bool:
        """ "..., and how much for each?", "how many each", "with their totals": the ranked
        figure is asked for too."""
        words = [t.lemma for t in self.tokens[pos:] if t.kind == "word"]
        for i in range(len(words)):
            if words[i : i + 3] in (["and", "how", "much"], ["and", "how", "many"]):
                return True
            if words[i : i + 2] in (["how", "much"], ["how", "many"]) and i > 0:
                rest = words[i + 2 : i + 5]
                if set(rest) & {"each", "apiece"}:
                    return True  # "the three plans with most accounts, how many each"
            if words[i] in ("with", "and", "plus", "including") and i + 2 < len(words) + 1:
                nxt = words[i + 1 : i + 3]
                if nxt and nxt[0] in _FIGURE_OWNERS and nxt[-1] in _FIGURE_WORDS:
                    return True  # "with their totals", "and its count"
        return False

    def _superlative_target(self, cue: Cue) -> tuple[Measure, bool] | None:
        payload = cue.payload
        desc = not payload.endswith("asc") and payload != "youngest"
        named = self._layer_measure_at(cue.end) or self._layer_measure_before(cue.start)
        if named is not None and payload in ("desc", "asc", "n_desc", "n_asc"):
            # "which plan generated the most revenue": rank the groups by the measure
            self.measures = [(pos, m) for pos, m in self.measures if m is not named]
            return named, desc
        agg = next(
            (
                c
                for c in self.cues
                if c.kind == "agg" and c.start >= cue.end and self.gap(cue.end, c.start) == 0
                and all(is_filler(t) for t in self.tokens[cue.end : c.start])
            ),
            None,
        )  # fmt: skip
        if agg is not None:
            k = self.mention_after(agg.end, max_gap=1, kinds=("column",))
            col = self.column_of(k) if k is not None else None
            if k is None:
                k = self.mention_after(agg.end, max_gap=1, kinds=("table",))
                col = self._sole_measure(self.table_of(k) or "") if k is not None else None
            if k is not None and col is not None:
                self._use(k)
                self.cues.remove(agg)
                return Measure(col, agg.payload), desc
            read = next((m for pos, m in self.measures if pos == agg.start), None)
            if read is not None and read.agg == agg.payload:
                # "which specialty has the highest average salary": the aggregate ranks the
                # groups; the answer shows the group, not the aggregate
                self.measures = [(pos, m) for pos, m in self.measures if m is not read]
                self.cues.remove(agg)
                return read, desc
        k = self.mention_after(cue.end, max_gap=1)
        m = self.mentions[k] if k is not None else None
        if payload.startswith("date"):
            col = None
            if m is not None and k is not None and m.kind == "column":
                cand = self.column_of(k)
                if cand is not None and cand.kind == "date":
                    col = cand
                    self._use(k)
            col = col or self.date_column([])
            return (Measure(col), desc) if col else None
        if payload.startswith("length"):
            if m is not None and k is not None and m.kind == "column":
                cand = self.column_of(k)
                if cand is not None and cand.kind == "numeric":
                    self._use(k)
                    return Measure(cand), desc
            for words in LENGTH_WORDS:
                col = self._column_named((words,))
                if col is not None and col.kind == "numeric":
                    return Measure(col), desc
            return None
        if payload.startswith("price"):
            if m is not None and k is not None and m.kind == "column":
                cand = self.column_of(k)
                if cand is not None and cand.kind == "numeric":
                    self._use(k)
                    return Measure(cand), desc
            col = None
            for word in ("price", "cost", "fee", "rate", "charge", "amount"):
                col = self._column_named((word,))
                if col is not None and col.kind == "numeric":
                    break  # "the cheapest tier": by its price, cost or fee
                col = None
            return (Measure(col), desc) if col else None
        if payload in ("oldest", "youngest"):
            age = self._column_named(("age",))
            if age is not None:
                return Measure(age), payload == "oldest"
            date = self._column_named(("birth",)) or self._column_named(("date", "of", "birth"))
            if date is None:
                date = self.date_column([])
            return (Measure(date), payload == "youngest") if date else None
        if m is None or k is None:
            nxt = self.tokens[cue.end] if cue.end < len(self.tokens) else None
            counts_rows = (
                nxt is not None
                and nxt.kind == "word"
                and nxt.lemma not in STOP_WORDS
                and nxt.text.lower() != nxt.lemma
                and payload in ("desc", "asc", "n_desc", "n_asc")
            )
            if payload.startswith("count") or counts_rows:
                if counts_rows and nxt is not None:
                    self._use_token(nxt)
                return Measure(None, "COUNT", count_table=self.intent.table), desc
            return None
        if payload.startswith("n_"):
            if m.kind == "table":
                self._use(k)
                return Measure(None, "COUNT", count_table=self.table_of(k)), desc
            counted = self.column_of(k)
            if counted is not None and counted.kind == "numeric" and not is_key(counted):
                self._use(k)
                return Measure(counted), desc
            if counted is not None:
                self._use(k)
                return Measure(None, "COUNT", count_table=counted.table), desc
        if payload.startswith("count"):
            if m.kind == "column":
                col = self.column_of(k)
                if col is not None:
                    self._use(k)
                    self.group_keys.append((m.start, Measure(col)))
                    self.projection.append((m.start, Measure(col)))
            elif m.kind == "table":
                self._use(k)
            return Measure(None, "COUNT", count_table=self.intent.table), desc
        if m.kind == "table":
            self._use(k)
            table = self.table_of(k) or self.intent.table
            return Measure(None, "COUNT", count_table=table), desc
        if m.kind == "column":
            col = self.column_of(k)
            if col is None:
                return None
            self._use(k)
            return Measure(col), desc
        return None

    def _has_subject_before(self, pos: int) -> bool:
        """Whether something other than the superlative is asked for ("which X", "name of")."""
        first = next((t for t in self.tokens if t.kind == "word"), None)
        if first is not None and first.lemma in ("which", "who", "whose", "list", "show"):
            return True
        if any(t.lemma in SUBJECT_WORDS for t in self.tokens[:pos]):
            return True
        if any(c.kind == "group" or c.kind == "bucket" for c in self.cues):
            return False
        for k, m in enumerate(self.mentions):
            if m.start < pos and k not in self.used and m.kind in ("column", "table"):
                return True
            if (
                m.start > pos
                and m.kind == "table"
                and k > 0
                and self.mentions[k - 1].start >= pos
                and self.mentions[k - 1].end == m.start
            ):
                return True
        return False
