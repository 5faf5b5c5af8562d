"""From tokens and linked schema mentions to an `Intent`: the rules of the offline engine."""

from __future__ import annotations

from backend.nl2sql.engines.base import QuestionNotUnderstood
from backend.nl2sql.engines.builtin.cues import (
    LENGTH_WORDS,
    ORDER_VERBS,
    PLACE_WORDS,
    SUBJECT_WORDS,
    TIME_UNITS,
    Cue,
    scan_cues,
)
from backend.nl2sql.engines.builtin.intents import AntiJoin, Filter, Intent, Literal, Measure
from backend.nl2sql.engines.builtin.lexicon import MONTHS, STOP_WORDS, SYNONYMS, Token, tokenise
from backend.nl2sql.engines.builtin.linking import (
    GENERIC_WORDS,
    ColumnRef,
    Mention,
    SchemaIndex,
    link,
    verb_stems,
)


def _is_filler(tok: Token) -> bool:
    return tok.kind == "punct" or (tok.kind == "word" and tok.lemma in STOP_WORDS)


class _Parser:
    def __init__(self, question: str, index: SchemaIndex, refinement_from: list[int]) -> None:
        self.question = question
        self.index = index
        self.tokens = tokenise(question)
        self.cues, skip = scan_cues(self.tokens, index)
        self.mentions = link(index, self.tokens, skip=skip)
        self.refinement_from = refinement_from
        self.used: set[int] = set()
        """ids (positions in self.mentions) of mentions given a role."""
        self.used_tokens: set[int] = set()
        self.recognised: dict[str, list[str]] = {}
        self.intent = Intent(table="")
        self.extra_tables: list[str] = []
        self.table_group_projection: list[int] = []
        self.breakdown = False
        self.order_by_projection = False
        self.content_words = 0
        self.unknown_words = 0
        self.lost_qualifiers = 0
        self.state_negations = 0
        self.inferred_measures = 0

    # ---------------------------------------------------------------- helpers

    def note(self, key: str, value: str) -> None:
        bucket = self.recognised.setdefault(key, [])
        if value not in bucket:
            bucket.append(value)

    def decline(self, message: str) -> QuestionNotUnderstood:
        return QuestionNotUnderstood(message, recognised=dict(self.recognised))

    def gap(self, a: int, b: int) -> int:
        """Content tokens strictly between positions a and b (filler words are free)."""
        lo, hi = min(a, b), max(a, b)
        if any(t.kind == "punct" and t.text in "?;!" for t in self.tokens[lo:hi]):
            return 99
        return sum(
            1
            for t in self.tokens[lo:hi]
            if not _is_filler(t) and t.index not in self.used_tokens and not self.is_cue(t.index)
        )

    def is_cue(self, pos: int) -> bool:
        return any(c.start <= pos < c.end for c in self.cues)

    def mention_after(
        self, pos: int, *, max_gap: int = 1, kinds: tuple[str, ...] = ()
    ) -> int | None:
        for k, m in enumerate(self.mentions):
            if k in self.used or m.start < pos or (kinds and m.kind not in kinds):
                continue
            if self.gap(pos, m.start) <= max_gap and not self._crosses_cue(pos, m.start):
                return k
            return None
        return None

    def mention_before(
        self, pos: int, *, max_gap: int = 1, kinds: tuple[str, ...] = ()
    ) -> int | None:
        for k in range(len(self.mentions) - 1, -1, -1):
            m = self.mentions[k]
            if k in self.used or m.end > pos or (kinds and m.kind not in kinds):
                continue
            if self.gap(m.end, pos) <= max_gap:
                return k
            return None
        return None

    def _crosses_cue(self, a: int, b: int) -> bool:
        return any(a <= c.start < b and c.kind in ("cmp", "neg") for c in self.cues)

    def literal_after(self, pos: int, max_gap: int = 1) -> Token | None:
        for tok in self.tokens[pos:]:
            if tok.index in self.used_tokens:
                continue
            if tok.kind in ("number", "date", "quoted"):
                return tok if self.gap(pos, tok.index) <= max_gap else None
            if tok.kind == "word" and tok.lemma in MONTHS and tok.text[:1].isupper():
                return tok if self.gap(pos, tok.index) <= max_gap + 1 else None
        return None

    def column_of(self, k: int, *, prefer: list[str] | None = None) -> ColumnRef | None:
        """The column a mention most plausibly names, given the tables around it."""
        m = self.mentions[k]
        cols = list(m.columns)
        if m.kind == "table" and not cols:
            return None
        nearby = self.tables_near(k)
        wanted = [*(prefer or []), *nearby, self.intent.table, *self.mentioned_tables()]
        # A value sampled in `course.dept_name` also identifies rows of the focus table when
        # it holds the referenced column (`department.dept_name`): filter there, not via a join.
        if (
            m.kind == "value"
            and self.intent.table
            and not any(c.table.lower() in {t.lower() for t in wanted} for c in cols)
        ):
            table = self.intent.table
            for c in cols:
                own = self.index.column(table, c.name)
                linked = any(
                    other.lower() == c.table.lower()
                    and own_col.lower() == c.name.lower()
                    and other_col.lower() == c.name.lower()
                    for other, own_col, other_col in self.index.edges.get(table.lower(), [])
                )
                if own is not None and linked:
                    return own
        if len(cols) <= 1:
            return cols[0] if cols else None
        for table in wanted:
            hit = [c for c in cols if c.table.lower() == table.lower()]
            if hit:
                return hit[0]
        if self.intent.table:
            joinable = [
                (len(self.index.join_path(self.intent.table, c.table) or [0] * 99), c) for c in cols
            ]
            joinable.sort(key=lambda x: x[0])
            return joinable[0][1]
        return cols[0]

    def tables_near(self, k: int) -> list[str]:
        """Tables named right after ("name of the room") or right before ("room name")."""
        m = self.mentions[k]
        out: list[str] = []
        nxt = k + 1
        if nxt < len(self.mentions):
            after = self.mentions[nxt]
            between = self.tokens[m.end : after.start]
            if after.kind == "table" and self.gap(m.end, after.start) == 0 and len(between) <= 3:
                out.extend(t.name for t in after.tables)
        if k > 0:
            before = self.mentions[k - 1]
            if before.kind == "table" and before.end == m.start:
                out.extend(t.name for t in before.tables)
        return out

    def mentioned_tables(self) -> list[str]:
        out: list[str] = []
        for m in self.mentions:
            if m.kind == "table":
                out.extend(t.name for t in m.tables[:1] if t.name not in out)
        return out

    def table_of(self, k: int) -> str | None:
        m = self.mentions[k]
        if m.kind == "table" and m.tables:
            if len(m.tables) > 1 and self.intent.table:
                for t in m.tables:
                    if t.name.lower() == self.intent.table.lower():
                        return t.name
            if len(m.tables) > 1:
                support = {
                    t.name: sum(
                        1
                        for j, other in enumerate(self.mentions)
                        if j != k and any(c.table == t.name for c in other.columns)
                    )
                    for t in m.tables
                }
                return max(m.tables, key=lambda t: support[t.name]).name
            return m.tables[0].name
        return None

    def label_measures(self, table: str, *, key_fallback: bool = False) -> list[Measure]:
        labels = self.index.label_columns(table)
        if labels:
            return [Measure(c) for c in labels]
        pk = self.index.table(table).primary_key
        if pk is not None and key_fallback:
            return [Measure(pk)]
        return []

    def date_column(self, prefer: list[str]) -> ColumnRef | None:
        tables = [*prefer, self.intent.table, *self.mentioned_tables()]
        for table in tables:
            for col in self.index.columns_of.get(table.lower(), []):
                if col.kind == "date":
                    return col
        return None

    def year_column(self, prefer: list[str]) -> ColumnRef | None:
        for table in [*prefer, self.intent.table, *self.mentioned_tables()]:
            for col in self.index.columns_of.get(table.lower(), []):
                if col.words and col.words[-1] == "year" and col.kind != "date":
                    return col
        return None

    # ---------------------------------------------------------------- focus

    def choose_focus(self) -> str:
        for cue in self.cues:
            ranks_by = cue.start > 0 and self.tokens[cue.start - 1].lemma in ("by", "of")
            if cue.kind in ("count", "share") and not ranks_by:
                k = self.mention_after(cue.end, max_gap=2, kinds=("table",))
                if k is not None:
                    table = self.table_of(k)
                    if table:
                        return table
        negated = {c.end for c in self.cues if c.kind == "neg"}
        for k, m in enumerate(self.mentions):
            after_negation = any(end <= m.start and self.gap(end, m.start) <= 1 for end in negated)
            if m.kind == "table" and not after_negation:
                return self.table_of(k) or ""
        for m in self.mentions:
            # only negated tables: "customer ids who don't have an account" is about customers
            words = {t.lemma for t in self.tokens[m.start : m.end]}
            own = [
                c.table for c in m.columns
                if m.kind == "column" and set(self.index.table(c.table).words) <= words
            ]  # fmt: skip
            if own:
                return own[0]
        for k, m in enumerate(self.mentions):
            if m.kind == "table":
                return self.table_of(k) or ""
        for m in self.mentions:
            if m.columns:
                tables = {c.table for c in m.columns}
                if len(tables) == 1:
                    return m.columns[0].table
        for m in self.mentions:
            if m.columns:
                return m.columns[0].table
        return ""

    # ---------------------------------------------------------------- the passes

    def build(self) -> Intent:
        for cue in self.cues:
            if cue.kind == "unsupported":
                raise self.decline(f"questions involving '{cue.payload}' are not supported")
        focus = self.choose_focus()
        if not focus:
            raise self.decline("could not tell which table the question is about")
        self.intent.table = focus
        self.intent.subject_named = any(m.kind == "table" for m in self.mentions)
        self.note("tables", focus)
        for k, m in enumerate(self.mentions):
            if (
                m.kind == "table"
                and m.columns
                and (self.table_of(k) or "").lower() != focus.lower()
            ):
                own = [c for c in m.columns if c.table.lower() == focus.lower()]
                if own:
                    m.kind, m.columns = "column", own
        self.measures: list[tuple[int, Measure]] = []
        self.projection: list[tuple[int, Measure]] = []
        self.order_keys: list[tuple[int, Measure, bool]] = []
        self.group_keys: list[tuple[int, Measure]] = []
        self.limit: int | None = None
        self.top_mode = False
        self._override_with_refinement()
        self._relative_times()
        self._durations()
        self._comparisons()
        self._counts_and_aggregates()
        self._top_and_superlatives()
        self._grouping_and_order()
        self._null_states()
        self._negations()
        self._values()
        self._leftover_literals()
        self._flag_columns()
        self._projection()
        return self._finish()

    def _use(self, k: int) -> None:
        self.used.add(k)
        m = self.mentions[k]
        self.used_tokens.update(range(m.start, m.end))

    def _use_token(self, tok: Token) -> None:
        self.used_tokens.add(tok.index)

    def _relative_times(self) -> None:
        for cue in self.cues:
            if cue.kind not in ("last", "this"):
                continue
            amount = 1
            if self.tokens[cue.start + 1].kind == "number":
                amount = int(float(self.tokens[cue.start + 1].lemma))
            unit = TIME_UNITS[self.tokens[cue.end - 1].lemma]
            self.used_tokens.update(range(cue.start, cue.end))
            col = self._date_target(cue.start)
            if col is None:
                raise self.decline("a time range was asked for but no date column was found")
            if cue.kind == "this":
                self.intent.filters.append(Filter(col, "this", [], unit=unit))
            else:
                self.intent.filters.append(Filter(col, "recent", [amount], unit=unit))
            self.note("filters", f"{col.name} in the last {amount} {unit}(s)")

    def _date_target(self, pos: int) -> ColumnRef | None:
        k = self.mention_before(pos, max_gap=2, kinds=("column",))
        if k is not None:
            col = self.column_of(k)
            if col is not None and col.kind == "date":
                self._use(k)
                return col
        prefer = [t for _, m in self.measures for t in m.tables]
        return self.date_column(prefer)

    def _literal_value(self, tok: Token) -> Literal:
        if tok.kind == "number":
            value = float(tok.lemma)
            return int(value) if value == int(value) else value
        return tok.text

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

    def _column_named(self, words: tuple[str, ...]) -> ColumnRef | None:
        for table in [self.intent.table, *self.mentioned_tables()]:
            for col in self.index.columns_of.get(table.lower(), []):
                if col.words[-len(words) :] == words:
                    return col
        return None

    def _date_comparison(self, cue: Cue, lits: list[Token]) -> None:
        op = cue.payload
        tok = lits[0]
        if op in ("before", "after", "since"):
            mapped = {"before": "<", "after": ">", "since": ">="}[op]
        else:
            mapped = op
        k = self.mention_before(cue.start, max_gap=2, kinds=("column",))
        col = None
        if k is not None:
            cand = self.column_of(k)
            if cand is not None and (cand.kind == "date" or cand.words[-1:] == ("year",)):
                col = cand
                self._use(k)
        is_year = tok.kind == "number" and 1800 <= float(tok.lemma) <= 2200
        if col is None and is_year:
            col = self.year_column([]) or self.date_column([])
        elif col is None:
            col = self.date_column([])
        if col is None:
            raise self.decline("a date comparison was asked for but no date column was found")
        if tok.kind == "word" and tok.lemma in MONTHS:
            month = MONTHS[tok.lemma]
            year_tok = self.tokens[tok.index + 1] if tok.index + 1 < len(self.tokens) else None
            if year_tok is not None and year_tok.kind == "number":
                self._use_token(year_tok)
                year = int(float(year_tok.lemma))
                start = f"{year:04d}-{month:02d}-01"
                end = f"{year + (month == 12):04d}-{month % 12 + 1:02d}-01"
                value = start if mapped in ("<", ">=") else end
                self.intent.filters.append(Filter(col, mapped if mapped != ">" else ">=", [value]))
            else:
                self.intent.filters.append(Filter(col, "month" + mapped, [month]))
        elif is_year and col.kind == "date":
            year = int(float(tok.lemma))
            if mapped == "<":
                self.intent.filters.append(Filter(col, "<", [f"{year:04d}-01-01"]))
            elif mapped == ">":
                self.intent.filters.append(Filter(col, ">=", [f"{year + 1:04d}-01-01"]))
            elif mapped == "between" and len(lits) == 2:
                end_year = int(float(lits[1].lemma))
                self.intent.filters.append(Filter(col, ">=", [f"{year:04d}-01-01"]))
                self.intent.filters.append(Filter(col, "<", [f"{end_year + 1:04d}-01-01"]))
            else:
                self.intent.filters.append(Filter(col, ">=", [f"{year:04d}-01-01"]))
        else:
            values = [self._literal_value(t) for t in lits]
            self.intent.filters.append(Filter(col, mapped, values))
        self.note("filters", f"{col.name} {op} {tok.text}")

    def _counts_and_aggregates(self) -> None:
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
            if cue.kind == "count":
                if k is not None and self.mentions[k].kind == "table":
                    self._use(k)
                    table = self.table_of(k) or self.intent.table
                    self.measures.append((cue.start, Measure(None, "COUNT", count_table=table)))
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

    def _sole_measure(self, table: str) -> ColumnRef | None:
        """The one numeric, non-key column of `table`, if it has exactly one."""
        if not table:
            return None
        numeric = [
            c
            for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "numeric" and not _is_key(c) and c.words[-1:] != ("year",)
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

    def _superlative_target(self, cue: Cue) -> tuple[Measure, bool] | None:
        payload = cue.payload
        desc = not payload.endswith("asc") and payload != "youngest"
        agg = next(
            (
                c
                for c in self.cues
                if c.kind == "agg" and c.start >= cue.end and self.gap(cue.end, c.start) == 0
                and all(_is_filler(t) for t in self.tokens[cue.end : c.start])
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
            col = self._column_named(("price",)) or self._column_named(("cost",))
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
            if counted is not None and counted.kind == "numeric" and not _is_key(counted):
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
            if prev is not None and prev.kind == "number" and prev.index not in self.used_tokens:
                self.limit = int(float(prev.lemma))
                self._use_token(prev)
            for m in self.mentions:
                before = self.tokens[m.start - 1] if m.start > 0 else None
                if (
                    m.kind == "table"
                    and m.end <= cue.start
                    and before is not None
                    and before.kind == "number"
                    and before.index not in self.used_tokens
                    and self.limit is None
                ):
                    self.limit = int(float(before.lemma))
                    self._use_token(before)
            target = self._superlative_target(cue)
            if target is None:
                raise self.decline("could not tell what 'highest/most/least' refers to")
            measure, desc = target
            self.note("order", f"{'highest' if desc else 'lowest'} {self._describe(measure)}")
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
            self.order_keys.append((cue.start, measure, desc))
            self.limit = self.limit or 1

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

    def _after_group_word(self, pos: int) -> bool:
        return any(
            t.lemma in ("for", "different", "each", "per", "by", "every")
            for t in self.tokens[max(0, pos - 2) : pos]
        )

    def _asks_for_everything(self) -> bool:
        """ "all the customer information", "details of the order": every column."""
        covered = {i for m in self.mentions for i in range(m.start, m.end)}
        return any(
            t.lemma in ("information", "info", "detail") and t.index not in covered
            for t in self.tokens
        )

    def _counting_words(self) -> bool:
        return any(c.kind in ("count", "agg", "super") for c in self.cues)

    def _group_key(self, k: int) -> None:
        m = self.mentions[k]
        self._use(k)
        if m.kind == "table":
            table = self.table_of(k) or self.intent.table
            for measure in self.label_measures(table, key_fallback=True):
                self.projection.append((m.start, measure))
                self.table_group_projection.append(id(measure))
            pk = self.index.table(table).primary_key
            keys = [Measure(pk)] if pk else self.label_measures(table)
            for key in keys:
                self.group_keys.append((m.start, key))
            self.note("grouping", table)
        else:
            col = self.column_of(k)
            if col is not None:
                self.group_keys.append((m.start, Measure(col)))
                self.projection.append((m.start, Measure(col)))
                self.note("grouping", col.name)

    def _grouping_and_order(self) -> None:
        has_rank = self.top_mode or bool(self.order_keys)
        for cue in self.cues:
            if cue.kind == "bucket":
                prefer = [t for _, m in self.measures for t in m.tables]
                col = self._date_target(cue.start) if False else self.date_column(prefer)
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
                        if c.kind == "count" and c.start >= cue.end
                        and all(
                            _is_filler(t) or any(
                                d.kind == "dir" and d.start <= t.index < d.end for d in self.cues
                            )
                            for t in self.tokens[cue.end : c.start]
                        )
                    ),
                    None,
                )  # fmt: skip
                if counted is not None and (
                    cue.kind == "order"
                    or (cue.kind == "dir" and self.tokens[cue.end].lemma == "of")
                    or (cue.kind == "by" and has_rank)
                ):
                    desc = self._direction(default=cue.kind == "by")
                    measure = next(
                        (m for pos, m in self.measures if pos == counted.start),
                        Measure(None, "COUNT", count_table=self.intent.table),
                    )
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
        nxt = next((t for t in self.tokens[cue.end :] if not _is_filler(t)), None)
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
        return k is not None and self.mentions[k].kind == "value"

    def _mentions_numeric_before(self, pos: int) -> bool:
        for k, m in enumerate(self.mentions):
            if m.start < pos and k not in self.used and m.kind == "column":
                col = self.column_of(k)
                if col is not None and col.kind == "numeric" and not col.is_primary_key:
                    return True
        return False

    def _is_order_by(self, cue: Cue) -> bool:
        return any(c.kind in ("order", "dir") and c.end == cue.start for c in self.cues)

    def _direction(self, *, default: bool) -> bool:
        for cue in self.cues:
            if cue.kind == "dir":
                return cue.payload == "desc"
        return default

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

    def _state_column(self, lemma: str) -> tuple[ColumnRef, bool] | None:
        """A nullable column that records an event a word names, and whether the word denies
        it: "churned" -> (churned_at, False), "unpaid" -> (paid_date, True), "open" ->
        (closed_at, True). Only columns of the tables the question is about count."""
        candidates: list[tuple[str, bool]] = [(lemma, False)]
        if lemma.startswith("un") and len(lemma) > 5:
            candidates.append((lemma[2:], True))
        if lemma in _STATE_ANTONYMS:
            candidates.append((_STATE_ANTONYMS[lemma], True))
        tables = [self.intent.table, *self.mentioned_tables()]
        for word, denied in candidates:
            for table in dict.fromkeys(t.lower() for t in tables):
                for col in self.index.columns_of.get(table, []):
                    if (
                        col.nullable
                        and len(col.words) == 2
                        and col.words[0] == word
                        and (col.kind == "date" or col.words[1] in _EVENT_SUFFIXES)
                    ):
                        return col, denied
        return None

    def _null_states(self) -> None:
        """ "haven't churned", "still unpaid", "open tickets", "not yet shipped": NULL means
        the event has not happened (IS NULL); the bare event word means it has."""
        for tok in self.tokens:
            if tok.kind != "word" or tok.index in self.used_tokens:
                continue
            if not (tok.lemma.endswith("ed") or tok.lemma.startswith("un")
                    or tok.lemma in _STATE_ANTONYMS or tok.lemma in _PARTICIPLES):  # fmt: skip
                continue
            spans = [
                (k, m) for k, m in enumerate(self.mentions) if m.start <= tok.index < m.end
            ]  # fmt: skip
            if spans and (spans[0][1].end - spans[0][1].start > 1 or spans[0][0] in self.used):
                continue  # "paid date" names the column itself
            if spans and spans[0][1].kind == "value":
                continue
            found = self._state_column(tok.lemma)
            if found is None:
                continue
            col, denied = found
            before = [t for t in self.tokens[max(0, tok.index - 3) : tok.index] if t.kind == "word"]
            if any(t.lemma in ("when", "date") for t in before):
                continue  # "when did they churn": the date is asked for
            neg = next(
                (c for c in self.cues
                 if c.kind == "neg" and c.end <= tok.index and tok.index - c.end <= 2
                 and c.payload != "used"),
                None,
            )  # fmt: skip
            if neg is not None:
                denied = not denied
                neg.payload = "used"
                self.used_tokens.update(range(neg.start, neg.end))
                self.state_negations += 1
            for k, _ in spans:
                self._use(k)
            self._use_token(tok)
            for t in before:
                if t.lemma in ("still", "yet", "already", "ever"):
                    self._use_token(t)
            if tok.index + 1 < len(self.tokens) and self.tokens[tok.index + 1].lemma == "yet":
                self._use_token(self.tokens[tok.index + 1])
            op = "is null" if denied else "is not null"
            self.intent.filters.append(Filter(col, op))
            self.note("filters", f"{col.name} {op}")

    def _missing_attribute(self, cue: Cue) -> bool:
        """ "without a manager", "has no phone number", "no seat limit recorded": a nullable
        column of the focus table left empty (IS NULL), when no related table is meant."""
        words: list[Token] = []
        for tok in self.tokens[cue.end : cue.end + 5]:
            if tok.kind != "word" or tok.index in self.used_tokens:
                break
            if tok.lemma in ("a", "an", "any", "the", "have", "has", "had", "got", "their", "its"):
                if words:
                    break
                continue
            words.append(tok)
            if len(words) == 2:
                break
        if not words:
            return False
        table = self.intent.table.lower()
        for n in (2, 1):
            phrase = tuple(t.lemma for t in words[:n])
            if len(phrase) < n:
                continue
            for col in self.index.columns_of.get(table, []):
                named = col.words == phrase or (
                    col.words[:-1] == phrase and col.words[-1] in ("id", "code", "number")
                )
                if not named or not col.nullable or col.is_primary_key:
                    continue
                related = [
                    m for m in self.mentions
                    if m.start == words[0].index and m.kind == "table"
                    and (self.table_of(self.mentions.index(m)) or "").lower() != table
                    and col.words[-1] not in ("id", "code", "number")
                ]  # fmt: skip
                if related:
                    return False  # "customers with no orders": rows of another table
                taken = words[:n]
                if n == 1 and len(words) == 2 and words[1].lemma in GENERIC_WORDS:
                    taken = words  # "no phone number": the number is the phone
                for k, m in enumerate(self.mentions):
                    if taken[-1].index >= m.start >= words[0].index:
                        self._use(k)
                for t in taken:
                    self._use_token(t)
                self.used_tokens.update(range(cue.start, cue.end))
                cue.payload = "used"
                self.state_negations += 1
                self.intent.filters.append(Filter(col, "is null"))
                self.note("filters", f"{col.name} is null")
                return True
        return False

    def _negations(self) -> None:
        for cue in self.cues:
            if cue.kind != "neg" or cue.payload == "used":
                continue
            if self._missing_attribute(cue):
                continue
            k = self.mention_after(cue.end, max_gap=2)
            if k is None:
                continue
            m = self.mentions[k]
            if m.kind == "table":
                table = self.table_of(k) or ""
                if table.lower() == self.intent.table.lower():
                    continue
                self._use(k)
                anti = AntiJoin(table)
                self.intent.anti_joins.append(anti)
                self.note("negation", f"without {table}")
                t = self.mention_after(m.end, max_gap=1, kinds=("table",))
                if t is not None and (self.table_of(t) or "").lower() != self.intent.table.lower():
                    self._use(t)  # "didn't teach any courses": still inside the negation
                j = self.mention_after(m.end, max_gap=2, kinds=("value",))
                if j is not None and self.mentions[j].columns:
                    cols = self.mentions[j].columns
                    own = [c for c in cols if c.table.lower() == table.lower()]
                    other = [c for c in cols if c.table.lower() != self.intent.table.lower()]
                    candidates = own or other
                    if candidates:
                        pick = candidates[0]
                        self._use(j)
                        anti.filters.append(Filter(pick, "=", [self.mentions[j].value or ""]))
            elif m.kind in ("value", "column"):
                if m.kind == "column":
                    # "not living in the city HKG": the column names the value's column
                    j = self.mention_after(m.end, max_gap=0, kinds=("value",))
                    if j is None or not set(self.mentions[j].columns) & set(m.columns):
                        # "students who don't play sports": no related row at all
                        col = self.column_of(k)
                        if (
                            j is None
                            and col is not None
                            and col.table.lower() != self.intent.table.lower()
                            and self.index.are_joinable(self.intent.table, col.table)
                        ):
                            self._use(k)
                            self.intent.anti_joins.append(AntiJoin(col.table))
                            self.note("negation", f"without {col.table}")
                        continue
                    self._use(k)
                    k, m = j, self.mentions[j]
                nxt = self.mention_after(m.end, max_gap=0, kinds=("table",))
                col = self.column_of(k)
                if col is None:
                    continue
                self._use(k)
                values: list[Literal] = [m.value or ""]
                j = k + 1
                while (
                    j < len(self.mentions)
                    and self.mentions[j].kind == "value"
                    and col in self.mentions[j].columns
                    and all(
                        t.kind == "punct" or t.lemma in ("or", "and", "nor")
                        for t in self.tokens[self.mentions[j - 1].end : self.mentions[j].start]
                    )
                ):
                    self._use(j)
                    values.append(self.mentions[j].value or "")
                    j += 1
                op = "in" if len(values) > 1 else "="
                if (
                    nxt is not None
                    and (self.table_of(nxt) or "").lower() != self.intent.table.lower()
                ):
                    self._use(nxt)
                    table = self.table_of(nxt) or col.table
                    self.intent.anti_joins.append(AntiJoin(table, [Filter(col, op, values)]))
                    self.note("negation", f"without {table} where {col.name} {op} {values}")
                elif col.table.lower() != self.intent.table.lower() and self.index.are_joinable(
                    self.intent.table, col.table
                ):
                    # "movies not reviewed by X": no related row with the value, not a row
                    # related to some other value
                    self.intent.anti_joins.append(AntiJoin(col.table, [Filter(col, op, values)]))
                    self.note("negation", f"without {col.table} where {col.name} {op} {values}")
                else:
                    self.intent.filters.append(Filter(col, "!=" if op == "=" else "not in", values))
                    self.note("filters", f"{col.name} not {values}")

    def _values(self) -> None:
        pending: list[tuple[int, Filter]] = []
        for k, m in enumerate(self.mentions):
            if m.kind != "value" or k in self.used:
                continue
            like = next(
                (
                    c
                    for c in self.cues
                    if c.kind == "like" and c.end <= m.start and self.gap(c.end, m.start) == 0
                ),
                None,
            )
            col: ColumnRef | None = None
            adjacent = [
                j
                for j in (k - 1, k + 1)
                if 0 <= j < len(self.mentions)
                and j not in self.used
                and self.mentions[j].kind == "column"
                and self.gap(min(m.end, self.mentions[j].end), max(m.start, self.mentions[j].start))
                == 0
                and (
                    set(self.mentions[j].columns) & set(m.columns)
                    or self._describes_value_column(self.mentions[j], m)
                )
            ]
            previous = pending[-1][1] if pending else None
            joined_to_previous = (
                previous is not None
                and isinstance(previous.column, ColumnRef)
                and previous.column in m.columns
                and k > 0
                and self.mentions[k - 1].kind == "value"
                and all(
                    t.kind == "punct" or t.lemma in ("or", "and")
                    for t in self.tokens[self.mentions[k - 1].end : m.start]
                )
            )
            if (
                joined_to_previous
                and previous is not None
                and isinstance(previous.column, ColumnRef)
            ):
                col = previous.column
            elif adjacent and like is None:
                shared = [c for c in self.mentions[adjacent[0]].columns if c in m.columns]
                col = shared[0] if shared else self.column_of(k)
                self._use(adjacent[0])
            elif m.columns and like is None:
                col = self.column_of(k)
            else:
                col = self._column_for_literal(m.start)
            if col is None:
                raise self.decline(f"could not tell which column '{m.text}' belongs to")
            self._use(k)
            value = m.value or m.text
            if like is not None:
                pattern = {"contains": f"%{value}%", "starts": f"{value}%", "ends": f"%{value}"}
                op = "not like" if self._negated_before(like.start) else "like"
                pending.append((m.start, Filter(col, op, [pattern[like.payload]])))
            elif m.pattern is not None:  # h-lexical hook: a value written as part of one
                pending.append((m.start, Filter(col, "like", [m.pattern])))
            else:
                pending.append((m.start, Filter(col, "=", [value])))
            self.note("values", f"{col.name} = {value}")
        merged: list[Filter] = []
        for _, flt in pending:
            same = next(
                (
                    f
                    for f in merged
                    if f.column == flt.column and f.op in ("=", "in") and flt.op == "="
                ),
                None,
            )
            if same is not None:
                if flt.values[0] not in same.values:
                    same.op = "in"
                    same.values.extend(flt.values)
            else:
                merged.append(flt)
        self.intent.filters.extend(merged)

    def _describes_value_column(self, column_mention: Mention, value: Mention) -> bool:
        """ "king bed" for a value of `bedType`: the noun right after names the value's column."""
        if column_mention.start != value.end or not self._counting_words():
            return False
        words = {t.lemma for t in self.tokens[column_mention.start : column_mention.end]}
        return any(words & set(c.words) for c in value.columns)

    def _column_for_literal(self, pos: int) -> ColumnRef | None:
        """The column a value without a stored sample belongs to: named just before it."""
        named = any(c.kind == "named" and c.end <= pos and pos - c.end <= 1 for c in self.cues)
        k = self.mention_before(pos, max_gap=0)
        if k is not None:
            m = self.mentions[k]
            if m.kind == "column":
                col = self.column_of(k)
                if col is not None and col.kind == "text":
                    self._use(k)
                    return col
            if m.kind == "table":
                labels = self.index.label_columns(self.table_of(k) or "")
                if labels:
                    return labels[0]
        if named:
            k = self.mention_before(pos, max_gap=2, kinds=("table",))
            table = (self.table_of(k) if k is not None else None) or self.intent.table
            labels = self.index.label_columns(table)
            if labels:
                return labels[0]
        return None

    def _leftover_literals(self) -> None:
        for tok in self.tokens:
            if tok.index in self.used_tokens or self.is_cue(tok.index):
                continue
            if tok.kind == "quoted":
                continue
            prev_filter = self.intent.filters[-1] if self.intent.filters else None
            if (
                tok.kind == "number"
                and prev_filter is not None
                and prev_filter.op in ("=", "in")
                and tok.index >= 2
                and self.tokens[tok.index - 1].lemma in ("or", "and")
                and self.tokens[tok.index - 2].kind == "number"
                and self.tokens[tok.index - 2].index in self.used_tokens
                and all(isinstance(v, int | float) for v in prev_filter.values)
            ):
                prev_filter.op = "in"
                prev_filter.values.append(self._literal_value(tok))
                self._use_token(tok)
                continue
            if tok.kind == "number" and tok.text.lower() == "one":
                # "the youngest one": a pronoun, unless a comparison or a column claimed it
                continue
            if tok.kind == "number":
                value = self._literal_value(tok)
                k = self.mention_before(tok.index, max_gap=0, kinds=("column",))
                prev = self.tokens[tok.index - 1] if tok.index > 0 else None
                year_like = (
                    isinstance(value, int)
                    and 1800 <= value <= 2200
                    and prev is not None
                    and prev.lemma in ("in", "during", "for", "of", "from")
                )
                if k is not None and year_like:
                    col = self.column_of(k)
                    if col is None or "year" not in col.words:
                        k = None
                if k is not None:
                    col = self.column_of(k)
                    if col is not None:
                        self._use(k)
                        self._use_token(tok)
                        self.intent.filters.append(Filter(col, "=", [value]))
                        self.note("filters", f"{col.name} = {value}")
                        continue
                if isinstance(value, int) and 1800 <= value <= 2200:
                    col = self.year_column([t for _, m in self.measures for t in m.tables])
                    if col is not None:
                        self.intent.filters.append(Filter(col, "=", [value]))
                    else:
                        date = self._date_target(tok.index)
                        if date is None:
                            raise self.decline(f"no date column for the year {value}")
                        month = self._month_before(tok)
                        if month is not None:
                            # "in February 2024": that month, not the whole year
                            self._use_token(self.tokens[tok.index - 1])
                            start, end = _month_range(value, month)
                            self.intent.filters.append(Filter(date, ">=", [start]))
                            self.intent.filters.append(Filter(date, "<", [end]))
                            self._use_token(tok)
                            self.note("filters", f"month {start[:7]}")
                            continue
                        self.intent.filters.append(Filter(date, ">=", [f"{value:04d}-01-01"]))
                        self.intent.filters.append(Filter(date, "<", [f"{value + 1:04d}-01-01"]))
                    self._use_token(tok)
                    self.note("filters", f"year {value}")
                    continue
                k = self.mention_before(tok.index, max_gap=0, kinds=("table",))
                col = self._column_for_table_number(k) if k is not None else None
                if col is not None:
                    self._use_token(tok)
                    self.intent.filters.append(Filter(col, "=", [value]))
                    self.note("filters", f"{col.name} = {value}")
                    continue
                raise self.decline(f"could not tell what the number {tok.text} refers to")
            if tok.kind == "date":
                k = self.mention_before(tok.index, max_gap=1, kinds=("column",))
                col = self.column_of(k) if k is not None else self.date_column([])
                if col is None:
                    raise self.decline(f"could not tell which column the date {tok.text} is for")
                if k is not None:
                    self._use(k)
                self.intent.filters.append(Filter(col, "=", [tok.text]))
                self._use_token(tok)
        self._like_words()
        pos = 1
        previous: tuple[Token, Filter] | None = None
        while pos < len(self.tokens):
            run: list[Token] = []
            while pos < len(self.tokens) and (
                self._is_unknown_name(self.tokens[pos])
                or (run and self._continues_name(self.tokens[pos]))
            ):
                run.append(self.tokens[pos])
                pos += 1
            while run and not self._is_unknown_name(run[-1]):
                pos -= 1
                run.pop()
            if not run:
                pos += 1
                continue
            nxt = self.tokens[pos] if pos < len(self.tokens) else None
            if (
                nxt is not None
                and nxt.is_capitalised
                and any(
                    m.kind == "table" and m.start == pos and m.end == pos + 1 for m in self.mentions
                )
            ):
                # "John F Kennedy International Airport": a capitalised table word ends a name
                run.append(nxt)
                pos += 1
            if previous is not None and all(
                t.kind == "punct" or t.lemma in ("or", "and")
                for t in self.tokens[previous[0].index + 1 : run[0].index]
            ):
                # "in Cuba or Argentina": the same column as the name before
                flt = previous[1]
                flt.op = "in"
                flt.values.append(" ".join(t.text for t in run))
                for t in run:
                    self._use_token(t)
                previous = (run[-1], flt)
                continue
            like = next(
                (
                    c for c in self.cues
                    if c.kind == "like" and c.end <= run[0].index
                    and all(_is_filler(t) for t in self.tokens[c.end : run[0].index])
                ),
                None,
            )  # fmt: skip
            col = self._label_next_to(run[0].index, run[-1].index + 1)
            if col is None or like is not None:
                anchor = like.start if like is not None else run[0].index
                col = self._column_for_literal(anchor) or col
                before = self.tokens[run[0].index - 1].lemma
                if like is None and before in ("in", "from") and col is not None:
                    col = self._place_column(col.table)
            if col is None:
                raise self.decline(f"did not recognise '{run[0].text}' in this database")
            text = " ".join(t.text for t in run)
            for t in run:
                self._use_token(t)
            if like is not None:
                pattern = {"contains": f"%{text}%", "starts": f"{text}%", "ends": f"%{text}"}
                op = "not like" if self._negated_before(like.start) else "like"
                flt = Filter(col, op, [pattern[like.payload]])
            else:
                flt = Filter(col, "=", [text])
            self.intent.filters.append(flt)
            previous = (run[-1], flt)
            self.note("values", f"{col.name} = {text}")

    def _negated_before(self, pos: int) -> bool:
        """ "without the letter M", "not containing": a negation right before a pattern."""
        return any(
            c.kind == "neg" and c.end <= pos and pos - c.end <= 2
            and all(_is_filler(t) for t in self.tokens[c.end : pos])
            for c in self.cues
        )  # fmt: skip

    def _place_column(self, table: str) -> ColumnRef | None:
        """ "airports in Cuba": the table's one place-like column, if it has exactly one."""
        places = [
            c
            for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "text" and set(c.words) & PLACE_WORDS
        ]
        return places[0] if len(places) == 1 else None

    def _like_words(self) -> None:
        """ "names that end with the letter m": an unquoted word after a pattern cue."""
        covered = {i for m in self.mentions for i in range(m.start, m.end)}
        for cue in self.cues:
            if cue.kind != "like":
                continue
            pos = cue.end
            names_a_letter = any(t.lemma == "letter" for t in self.tokens[cue.start : cue.end])
            while not names_a_letter and pos < len(self.tokens) and _is_filler(self.tokens[pos]):
                pos += 1
            if pos >= len(self.tokens):
                continue
            tok = self.tokens[pos]
            if tok.kind != "word" or tok.index in covered or tok.index in self.used_tokens:
                continue
            if (tok.is_capitalised and not names_a_letter) or self.is_cue(tok.index):
                continue
            after = self.mention_after(tok.index + 1, max_gap=0, kinds=("column",))
            col = self.column_of(after) if after is not None else None
            if after is not None and col is not None and col.kind == "text":
                self._use(after)  # "the letter a in their last name"
            else:
                col = self._column_for_literal(cue.start)
            if col is None:
                continue
            self._use_token(tok)
            text = tok.text
            pattern = {"contains": f"%{text}%", "starts": f"{text}%", "ends": f"%{text}"}
            op = "not like" if self._negated_before(cue.start) else "like"
            self.intent.filters.append(Filter(col, op, [pattern[cue.payload]]))
            self.note("values", f"{col.name} like {pattern[cue.payload]}")

    def _column_for_table_number(self, k: int) -> ColumnRef | None:
        """ "room 112": a column named like the table in the focus, else the table's key."""
        table = self.table_of(k)
        if table is None:
            return None
        words = self.index.table(table).words
        for col in self.index.columns_of[self.intent.table.lower()]:
            if col.words == words:
                return col
        for other, own_col, _ in self.index.edges.get(self.intent.table.lower(), []):
            if other.lower() == table.lower():
                fk = self.index.column(self.intent.table, own_col)
                if fk is not None and fk.kind == "numeric" and not fk.is_primary_key:
                    self._use(k)
                    return fk
        pk = self.index.table(table).primary_key
        if pk is not None and pk.kind == "numeric":
            self._use(k)
            return pk
        return None

    def _continues_name(self, tok: Token) -> bool:
        """Capitalised small words inside a name ("Computer Information Systems")."""
        return (
            tok.is_capitalised
            and tok.index not in self.used_tokens
            and not any(m.start <= tok.index < m.end for m in self.mentions)
        )

    def _is_unknown_name(self, tok: Token) -> bool:
        return (
            tok.is_capitalised
            and tok.index not in self.used_tokens
            and not self.is_cue(tok.index)
            and not any(m.start <= tok.index < m.end for m in self.mentions)
            and tok.lemma not in STOP_WORDS
            and tok.lemma not in MONTHS
        )

    def _label_next_to(self, start: int, end: int) -> ColumnRef | None:
        """ "the Art department", "course Mobile Computing": a name beside its table."""
        for k, m in enumerate(self.mentions):
            if m.kind != "table":
                continue
            if m.start == end or m.end == start:
                labels = self.index.label_columns(self.table_of(k) or "")
                if len(labels) == 1:
                    return labels[0]
        return None

    def _flag_columns(self) -> None:
        """ "products that are discontinued": a yes/no column after "is/are" is a filter."""
        for k, m in enumerate(self.mentions):
            if k in self.used or m.kind != "column" or m.start == 0:
                continue
            col = self.column_of(k)
            if col is None or not _is_flag(col):
                continue
            before = [t for t in self.tokens[: m.start] if t.kind == "word"][-2:]
            lemmas = [t.lemma for t in before]
            if not lemmas or lemmas[-1] not in ("is", "are", "was", "were", "be", "not", "never"):
                continue
            negated = "not" in lemmas or "never" in lemmas
            self._use(k)
            value: Literal = 0 if negated else 1
            self.intent.filters.append(Filter(col, "=", [value]))
            self.note("filters", f"{col.name} = {'no' if negated else 'yes'}")

    def _projection(self) -> None:
        covered = {i for m in self.mentions for i in range(m.start, m.end)}
        for tok in self.tokens:
            if tok.lemma not in ("name", "id") or tok.index in covered or self.is_cue(tok.index):
                continue
            if tok.index in self.used_tokens:
                continue
            followed_by_of = (
                tok.index + 1 < len(self.tokens) and self.tokens[tok.index + 1].lemma == "of"
            )
            nxt_word = next((t for t in self.tokens[tok.index + 2 :] if not _is_filler(t)), None)
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
                col = self.column_of(k)
                if col is not None:
                    self._use(k)
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

    def _describe(self, measure: Measure) -> str:
        if measure.column is None:
            return f"number of {measure.count_table}"
        return measure.column.name

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
        if later_years or kinds_later & {"last", "this"}:
            for tok in self.tokens[:cut]:
                if tok.kind == "number" and 1800 <= float(tok.lemma) <= 2200:
                    self.used_tokens.add(tok.index)
            for cue in earlier:
                if cue.kind in ("last", "this") or cue.payload in ("before", "after", "since"):
                    drop_cue(cue, with_target=False)
        later_values = [m for m in self.mentions if m.kind == "value" and m.start >= cut]
        for k, m in enumerate(self.mentions):
            if m.kind != "value" or m.start >= cut:
                continue
            if any(set(m.columns) & set(v.columns) for v in later_values):
                self._use(k)

    def _finish(self) -> Intent:
        intent = self.intent

        def ordered(items: list[tuple[int, Measure]]) -> list[Measure]:
            out: list[Measure] = []
            for _, m in sorted(items, key=lambda x: x[0]):
                if not any(_same(m, o) for o in out):
                    out.append(m)
            return out

        measures = ordered(self.measures)
        group = ordered(self.group_keys)
        projection = [m for m in ordered(self.projection) if not any(_same(m, x) for x in measures)]
        order = [(m, desc) for _, m, desc in sorted(self.order_keys, key=lambda x: x[0])]
        ordered_by_aggregate = any(m.agg for m, _ in order)
        if (ordered_by_aggregate or intent.having) and not group:
            plain = [p for p in projection if p.agg is None]
            if plain and not intent.having:
                group = list(plain)
            else:
                labels = self.label_measures(intent.table, key_fallback=True)
                pk = self.index.table(intent.table).primary_key
                group = [Measure(pk)] if pk else list(labels)
                for label in labels:
                    if not any(_same(label, g) for g in group):
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
                and not p.column.is_primary_key and not any(_same(p, g) for g in group)
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
            group = [
                p for p in projection
                if p.agg is None and p.column is not None
                and (p.column.table.lower() in own or id(p) in asked_before)
            ]  # fmt: skip
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
                    and not any(_same(p, g) for g in group)
                ]  # fmt: skip
                if not numeric:
                    measures = [Measure(None, "COUNT", count_table=intent.table)]
            fixed: list[Measure] = []
            for p in projection:
                if any(_same(p, g) for g in group) or p.agg is not None:
                    fixed.append(p)
                elif p.column is not None and p.column.kind == "numeric" and not _is_key(p.column):
                    fixed.append(Measure(p.column, "SUM"))
                else:
                    group.append(p)
                    fixed.append(p)
            projection = fixed
        pk = self.index.table(intent.table).primary_key
        for m, _desc in order:
            if m.agg and m.column is not None and not any(_same(m, x) for x in measures):
                measures.append(m)
            if (
                m.agg == "COUNT"
                and m.column is None
                and (m.count_table or "").lower() == intent.table.lower()
                and pk is not None
                and any(g.column == pk for g in group)
            ):
                raise self.decline(f"could not tell what to rank {intent.table} by")
        select = projection + measures
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
        intent.limit = self.limit if intent.order_by else None
        intent.extra_tables = [t for t in self.extra_tables if t.lower() != intent.table.lower()]
        intent.distinct = (
            any(c.kind == "distinct" for c in self.cues)
            and not any(m.distinct for m in measures)
            and not group
            and not measures
        )
        lemmas = {t.lemma for t in self.tokens if t.kind == "word" and t.lemma not in STOP_WORDS}
        lemmas |= {stem for lemma in list(lemmas) for stem in verb_stems(lemma)}
        intent.preferred_tables = frozenset(
            name
            for name, ref in self.index.tables.items()
            if set(ref.words) & lemmas or name in {t.lower() for t in self.mentioned_tables()}
        )
        self._check_coverage()
        if any(c.kind == "share" for c in self.cues):
            self._as_share(intent)
        unique: list[Filter] = []
        for f in intent.filters:
            if not any(f == g for g in unique):
                unique.append(f)
        intent.filters = unique
        intent.signals = self._signals(intent)
        intent.recognised = {k: list(v) for k, v in self.recognised.items()}
        return intent

    def _durations(self) -> None:
        """ "took more than 30 days to close", "average days to pay", "avg hours to resolve":
        the time between the row's start date and the date of the event the verb names."""
        for tok in self.tokens:
            unit = _DURATION_UNITS.get(tok.lemma)
            if tok.kind != "word" or unit is None or tok.index in self.used_tokens:
                continue
            after = [t for t in self.tokens[tok.index + 1 : tok.index + 4] if t.kind == "word"]
            verb_at = next(
                (i for i, t in enumerate(after[:-1]) if t.lemma in ("to", "until", "before")),
                None,
            )
            if verb_at is None:
                continue
            verb = after[verb_at + 1]
            table = self.intent.table
            end = self._event_column(table, verb.lemma)
            if end is None:
                continue
            start = self._start_column(table, end)
            if start is None:
                raise self.decline(
                    f"could not tell from which date the time to '{verb.text}' is counted"
                )
            span = Measure(end, since=start, unit=unit)
            consumed = [tok, *after[: verb_at + 2]]
            number = self.tokens[tok.index - 1] if tok.index > 0 else None
            cmp_cue = None
            if number is not None and number.kind == "number":
                cmp_cue = next(
                    (c for c in self.cues if c.kind == "cmp" and c.end == number.index), None
                )
            agg_cue = next(
                (c for c in self.cues
                 if c.kind == "agg" and c.end <= tok.index and tok.index - c.end <= 3),
                None,
            )  # fmt: skip
            if cmp_cue is not None and number is not None:
                self.cues.remove(cmp_cue)
                self.used_tokens.update(range(cmp_cue.start, cmp_cue.end))
                consumed.append(number)
                op = cmp_cue.payload if cmp_cue.payload in (">", "<", ">=", "<=") else ">"
                self.intent.filters.append(Filter(span, op, [self._literal_value(number)]))
                self.note("filters", f"{unit}s from {start.name} to {end.name} {op} {number.text}")
            elif agg_cue is not None and agg_cue.payload in ("AVG", "SUM", "MIN", "MAX"):
                self.cues.remove(agg_cue)
                self.used_tokens.update(range(agg_cue.start, agg_cue.end))
                span.agg = agg_cue.payload
                for c in [c for c in self.cues if c.kind == "count"]:
                    if agg_cue.end <= c.start < tok.index:  # "average number of days"
                        self.cues.remove(c)
                        self.used_tokens.update(range(c.start, c.end))
                self.measures.append((tok.index, span))
                self.note("aggregates", f"{span.agg} {unit}s from {start.name} to {end.name}")
            else:
                continue
            for t in consumed:
                self._use_token(t)
            for k, m in enumerate(self.mentions):
                if any(m.start <= t.index < m.end for t in consumed):
                    m.kind = "spent"  # read as part of the duration, not as a link
                    self._use(k)

    def _event_column(self, table: str, verb: str) -> ColumnRef | None:
        """The date column recording when `verb` happened: close -> closed_at, pay -> paid_date."""
        forms = {verb, verb + "ed", verb + "d", verb + verb[-1:] + "ed"}
        forms.add(_IRREGULAR_PAST.get(verb, verb))
        if verb.endswith("y"):
            forms.add(verb[:-1] + "ied")
        for col in self.index.columns_of.get(table.lower(), []):
            if col.kind == "date" and col.words and col.words[0] in forms:
                return col
        return None

    def _start_column(self, table: str, end: ColumnRef) -> ColumnRef | None:
        """The date a row starts from: the table's only other date, or its creation-like one."""
        others = [
            c for c in self.index.columns_of.get(table.lower(), [])
            if c.kind == "date" and c != end
        ]  # fmt: skip
        if len(others) == 1:
            return others[0]
        own = set(self.index.table(table).words)
        starts = [
            c for c in others if c.words and (c.words[0] in _START_WORDS or own & set(c.words))
        ]
        return starts[0] if len(starts) == 1 else None

    def _as_share(self, intent: Intent) -> None:
        """ "What percentage of tickets were escalated?": the condition becomes the share of
        rows that meet it; a time range stays the population ("of 2024's invoices")."""
        if intent.anti_joins or intent.having or any(m.agg for m in intent.select):
            raise self.decline("a share of an aggregate or of missing rows is not supported")
        is_period = [
            isinstance(f.column, ColumnRef)
            and f.column.kind == "date"
            and f.op in (">=", "<", "between", "recent", "this")
            for f in intent.filters
        ]
        condition = [f for f, p in zip(intent.filters, is_period, strict=True) if not p]
        if len(condition) != 1:
            raise self.decline("a share needs exactly one condition to measure")
        intent.filters = [f for f, p in zip(intent.filters, is_period, strict=True) if p]
        keys = intent.group_by
        if not keys and any(c.kind in ("group", "bucket") for c in self.cues):
            keys = []
            for _, m in sorted(self.group_keys, key=lambda x: x[0]):
                if not any(_same(m, k) for k in keys):
                    keys.append(m)
            intent.group_by = keys
        intent.select = [
            *keys,
            Measure(None, "PCT", count_table=intent.table, condition=condition),
        ]
        intent.order_by = [(m, d) for m, d in intent.order_by if m.bucket]
        intent.distinct = False
        self.note("share", f"percentage where {condition[0].column}")

    def _month_before(self, tok: Token) -> int | None:
        """The month named right before a year ("May 2023"), unless something else used it."""
        if tok.index == 0:
            return None
        prev = self.tokens[tok.index - 1]
        if prev.kind != "word" or prev.index in self.used_tokens or prev.lemma not in MONTHS:
            return None
        if len(prev.lemma) <= 3 and not prev.text[:1].isupper():
            return None  # "may", "mar": only as a capitalised name
        return MONTHS[prev.lemma]

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

    def _ambiguous_dates(self, intent: Intent) -> list[tuple[ColumnRef, list[ColumnRef]]]:
        """Date columns the reading chose without the question naming them, in tables that
        have other dates too ("lost in 2023": created, churned?): (chosen, alternatives)."""
        lemmas = {t.lemma for t in self.tokens if t.kind == "word"}
        lemmas |= {stem for lemma in list(lemmas) for stem in verb_stems(lemma)}
        used: list[ColumnRef] = [
            f.column for f in intent.filters
            if isinstance(f.column, ColumnRef) and f.column.kind == "date"
            and f.op not in ("is null", "is not null")
        ]  # fmt: skip
        buckets = [m.column for m in intent.group_by if m.bucket and m.column is not None]
        out: list[tuple[ColumnRef, list[ColumnRef]]] = []
        for col in dict.fromkeys([*used, *buckets]):
            named = set(col.words) - {"date", "at", "on", "time", "timestamp", "day"}
            if named & lemmas:
                continue
            own = self.index.table(col.table).words
            if set(own) & named or (named & _CREATION_WORDS and col not in used):
                continue  # `order_date` of orders; `created_at` for "per month": the row's date
            others = [
                c for c in self.index.columns_of.get(col.table.lower(), [])
                if c.kind == "date" and c != col
            ]  # fmt: skip
            if others:
                out.append((col, others))
        return out

    def _signals(self, intent: Intent) -> dict[str, float]:
        """What the confidence of this reading rests on (see `confidence.py`)."""
        used = [self.mentions[k] for k in sorted(self.used)]
        unused = [
            m for k, m in enumerate(self.mentions)
            if k not in self.used and not all(i in self.used_tokens for i in range(m.start, m.end))
        ]  # fmt: skip
        negated = sum(
            1 for c in self.cues
            if c.kind == "neg" and not (c.start > 0 and self.tokens[c.start - 1].lemma == "or")
        )  # fmt: skip
        negations = (
            self.state_negations
            + len(intent.anti_joins)
            + sum(
                1
                for f in [*intent.filters, *intent.having]
                if f.op in ("!=", "not in", "not like") or (f.op == "=" and f.values == [0])
            )
        )
        grouping_words = any(c.kind in ("group", "by", "bucket") for c in self.cues)
        key_literals = sum(
            1
            for f in intent.filters
            if isinstance(f.column, ColumnRef)
            and _is_key(f.column)
            and any(isinstance(v, int | float) for v in f.values)
        )
        # "which jobs": shown by `customer_name` when the table has no name of its own
        own_words = self.index.table(intent.table).words
        own_key = self.index.table(intent.table).primary_key
        borrowed = (
            own_key is not None
            and len(own_key.name) > 3
            and any(
                m.column is not None
                and m.agg is None
                and m.column.table.lower() == intent.table.lower()
                and m.column.words[-1:] in (("name",), ("title",))
                and len(m.column.words) > 1
                and m.column.words[:-1] != own_words
                and m.column.words[:-1] not in (("first",), ("last",), ("full",))
                and not any(
                    mm.start <= t.index < mm.end
                    for mm in self.mentions
                    for t in self.tokens
                    if mm.kind == "column" and m.column in mm.columns
                )
                for m in intent.select
            )
        )
        quoted = {t.text.strip("'\"") for t in self.tokens if t.kind == "quoted"} | {
            t.lemma for t in self.tokens if t.kind == "quoted"
        }
        guessed = sum(
            1
            for f in [*intent.filters, *(f for a in intent.anti_joins for f in a.filters)]
            if isinstance(f.column, ColumnRef)
            and f.op in ("=", "!=", "in", "not in")
            and f.column.kind == "text"
            and any(
                isinstance(v, str) and v not in quoted and self.index.misplaced_value(f.column, v)
                for v in f.values
            )
        )
        # a loosely matched word that pulls in a column of a table the question never names
        named_tables = {t.lower() for t in self.mentioned_tables()} | {intent.table.lower()}
        far_weak = 0
        for k in self.used:
            m = self.mentions[k]
            if m.kind != "column" or m.score >= 2.0 or not m.columns:
                continue
            lemmas = {t.lemma for t in self.tokens[m.start : m.end]}
            if lemmas & SYNONYMS.keys() and not any(lemmas & set(c.words) for c in m.columns):
                continue  # a known synonym ("revenue" for amount) is vocabulary, not a guess
            tables = {c.table.lower() for c in m.columns}
            if not tables & named_tables:
                far_weak += 1
        filters: list[Filter] = [f for f in intent.filters if isinstance(f.column, ColumnRef)]
        contradictions = sum(
            1
            for i, a in enumerate(filters)
            for b in filters[i + 1 :]
            if a.column == b.column
            and a.op in ("=", "in")
            and b.op in ("=", "!=", "in")
            and a.values != b.values
        )
        ranked_by_text = (
            any(
                m.agg is None and m.column is not None and m.column.kind == "text" and desc
                for m, desc in intent.order_by
            )
            and intent.limit is not None
        )
        edge_columns = {
            (t, own.lower()) for t, edges in self.index.edges.items() for _, own, _ in edges
        }
        summed_keys = sum(
            1
            for m in [*intent.select, *(m for m, _ in intent.order_by)]
            if m.agg in ("SUM", "AVG")
            and m.column is not None
            and (
                _is_key(m.column) or (m.column.table.lower(), m.column.name.lower()) in edge_columns
            )
        )
        mismatched = sum(
            1
            for f in filters
            if isinstance(f.column, ColumnRef)
            and f.column.kind == "date"
            and f.op not in ("recent", "this", "is null", "is not null")
            and not f.op.startswith("month")
            and any(isinstance(v, int | float) for v in f.values)
        ) + sum(
            1
            for m in [*intent.select, *(m for m, _ in intent.order_by)]
            if m.agg in ("SUM", "AVG")
            and m.column is not None
            and m.since is None
            and m.column.kind != "numeric"
        )
        agg_cues = [c for c in self.cues if c.kind == "agg"]
        aggregated = any(m.agg not in (None, "COUNT") for m in intent.select)
        aggregated = (
            aggregated
            or any(isinstance(f.column, Measure) and f.column.agg for f in intent.having)
            or any(f.subquery_agg for f in intent.filters)
            or any(m.agg not in (None, "COUNT") for m, _ in intent.order_by)
        )
        lost_aggregate = bool(agg_cues) and not aggregated
        intent.date_choices = self._ambiguous_dates(intent)
        group_cues = [c for c in self.cues if c.kind in ("group", "by")]
        by_value = sum(
            1
            for c in group_cues
            for m in self.mentions
            if m.kind == "value" and 0 <= m.start - c.end <= 1
            and any(g.column is not None and g.column in m.columns for g in intent.group_by)
        )  # fmt: skip
        lost_grouping = (
            any(c.kind in ("group", "bucket") for c in self.cues)
            and not intent.group_by
            and not intent.order_by
        )
        # "came in by phone": a column of another table, or the focus table's value 'phone'?
        focus = intent.table.lower()
        value_or_column = 0
        for k in self.used:
            m = self.mentions[k]
            if m.kind != "column" or any(c.table.lower() == focus for c in m.columns):
                continue
            phrase = tuple(t.lemma for t in self.tokens[m.start : m.end])
            if any(c.table.lower() == focus for c, _ in self.index.values.get(phrase, [])):
                value_or_column += 1
        return {
            "value_or_column": float(value_or_column),
            "grouped_by_value": float(by_value),
            "lost_grouping": float(lost_grouping),
            "inferred_measures": float(self.inferred_measures > 0),
            "type_mismatches": float(mismatched),
            "lost_aggregate": float(lost_aggregate),
            "ambiguous_dates": float(len(intent.date_choices)),
            "far_weak_links": float(far_weak),
            "contradictions": float(contradictions),
            "ranked_by_text": float(ranked_by_text),
            "summed_keys": float(summed_keys),
            "content_words": float(self.content_words),
            "unknown_words": float(self.unknown_words),
            "weak_links": float(
                sum(1 for m in used if m.kind not in ("value", "spent") and m.score < 2.0)
            ),
            "strong_links": float(sum(1 for m in used if m.score >= 2.5)),
            "links": float(len(used)),
            "unused_mentions": float(len(unused)),
            "lost_negation": float(max(0, negated - negations)),
            "unasked_grouping": float(
                bool(intent.group_by)
                and not grouping_words
                and not any(c.kind in ("super", "top") for c in self.cues)
            ),
            "subject_named": float(intent.subject_named),
            "key_literals": float(key_literals),
            "lost_qualifiers": float(self.lost_qualifiers),
            "guessed_values": float(guessed),
            "asks_everything": float(self._asks_for_everything()),
            "borrowed_label": float(borrowed),
        }

    def _check_coverage(self) -> None:
        """Decline when too many content words of the question were not understood."""
        covered: set[int] = set(self.used_tokens)
        for m in self.mentions:
            covered.update(range(m.start, m.end))
        for c in self.cues:
            covered.update(range(c.start, c.end))
        unknown_tokens = [
            t
            for t in self.tokens
            if t.kind == "word"
            and t.index not in covered
            and t.lemma not in STOP_WORDS
            and t.lemma not in _HARMLESS
        ]
        unknown = [t.text for t in unknown_tokens]
        self.lost_qualifiers = sum(
            1
            for t in self.tokens
            if t.kind == "word"
            and t.index not in covered
            and (t.lemma in QUALIFIER_WORDS or _is_superlative(t.lemma))
        )
        content = [t for t in self.tokens if t.kind == "word" and t.lemma not in STOP_WORDS]
        self.content_words, self.unknown_words = len(content), len(unknown)
        if unknown:
            self.note("unknown_words", ", ".join(unknown))
        if len(unknown) >= 2 and len(unknown) > 0.5 * max(len(content), 1):
            raise self.decline("too many words of the question did not match this database")


QUALIFIER_WORDS = frozenset(
    """
    still current currently yet already ever never active inactive open closed unpaid paid
    outstanding overdue late early former left remaining pending unresolved resolved unassigned
    share percentage percent proportion rate ratio fraction median days hours weeks months
    years quarter quarterly monthly yearly annual annually weekly daily longer shorter within
    ago since until last previous next second third both either neither except
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Words that change what the answer is; left unexplained, the reading misses part of the ask."""

_DURATION_UNITS = {"day": "day", "hour": "hour", "week": "week"}
_IRREGULAR_PAST = {"pay": "paid", "payment": "paid", "leave": "left", "sell": "sold",
                   "send": "sent", "resolve": "resolved", "close": "closed"}  # fmt: skip
_START_WORDS = frozenset(
    {"created", "opened", "issued", "issue", "start", "started", "submitted", "placed",
     "registered", "signup", "hire", "hired", "ordered", "requested", "received", "booked"}
)  # fmt: skip
"""First words of date columns a row's life starts from (`opened_at`, `issue_date`)."""
_CREATION_WORDS = frozenset({"created", "creation", "registered", "registration", "signup"})
_STATE_ANTONYMS = {"open": "closed", "outstanding": "paid", "owed": "paid", "running": "ended",
                   "employed": "left", "pending": "resolved", "unresolved": "resolved"}  # fmt: skip
"""State words that mean an event column is still empty ("open" = not closed)."""
_PARTICIPLES = frozenset({"paid", "left", "sold", "shipped", "closed", "ended", "built"})
_EVENT_SUFFIXES = frozenset({"at", "on", "date", "time", "to", "by"})
"""Second words of event columns: `churned_at`, `left_on`, `paid_date`, `assigned_to`."""

_HARMLESS = frozenset(
    """
    now about instead again currently ever along total placed made make belong belongs
    belonging located live lives living work works working play plays take takes taken took use
    used using go goes went come comes like registered listed recorded stored available
    exist exists existing there here everything anything something one ones thing things
    kind kinds
    """.split()  # noqa: SIM905 - a word list reads better as prose
)


def _is_superlative(word: str) -> bool:
    """ "heaviest", "busiest", "longest": a ranking the reading must not drop silently."""
    return (
        len(word) > 6
        and word.endswith("iest")
        or (len(word) > 5 and word.endswith("est") and word[-4] == word[-5])
        or word
        in (
            "highest",
            "lowest",
            "largest",
            "smallest",
            "fastest",
            "slowest",
            "oldest",
            "newest",
            "youngest",
            "cheapest",
            "longest",
            "shortest",
            "heaviest",
        )
    )


def _month_range(year: int, month: int) -> tuple[str, str]:
    """First day of the month and first day of the next, as ISO dates."""
    end_year, end_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return f"{year:04d}-{month:02d}-01", f"{end_year:04d}-{end_month:02d}-01"


def _is_flag(col: ColumnRef) -> bool:
    """A yes/no column: boolean type, or an integer named like a state ("discontinued")."""
    if col.kind == "boolean":
        return True
    return (
        col.kind == "numeric"
        and bool(col.words)
        and (
            col.words[0] in ("is", "has")
            or col.words[-1].endswith("ed")
            or col.words[-1] == "active"
        )
    )


def _is_key(col: ColumnRef) -> bool:
    return col.is_primary_key or (bool(col.words) and col.words[-1] in ("id", "code", "number"))


def _same(a: Measure, b: Measure) -> bool:
    return (
        a.column == b.column
        and a.agg == b.agg
        and a.bucket == b.bucket
        and a.count_table == b.count_table
        and a.distinct == b.distinct
    )


def parse(question: str, index: SchemaIndex, *, refinement_from: list[int] | None = None) -> Intent:
    """Read `question` into an `Intent`; raises `QuestionNotUnderstood`.

    `refinement_from` lists token positions where follow-ups start: what a later part says
    about a slot (a value's column, the grouping, the time range, the ranking) replaces what
    an earlier part said.
    """
    parser = _Parser(question, index, refinement_from or [])
    return parser.build()
