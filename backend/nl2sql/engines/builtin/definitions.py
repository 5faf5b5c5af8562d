"""The semantic layer's words in a question: a named measure ("revenue", "MRR") becomes its
aggregate with its own filter and is dated by its time column; a named filter ("active
customer", "overdue") becomes its condition, negated when the question denies it ("customers
that have not churned"); the layer's `today` anchors relative time.

`linking.link_definitions` finds the spans; this pass gives them their roles."""

from __future__ import annotations

import datetime as dt
import re

import sqlglot
from sqlglot import exp

from backend.nl2sql.engines.builtin.combined import (
    CombinedFigure,
    plan_from_tokens,
    side_by_side_plan,
)
from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.fiscal import PeriodNotRead, fiscal_periods
from backend.nl2sql.engines.builtin.intents import AntiJoin, Condition, Filter, Intent, Measure
from backend.nl2sql.engines.builtin.lexicon import STOP_WORDS, Token
from backend.nl2sql.engines.builtin.linking import (
    ColumnRef,
    DefinitionMention,
    Mention,
    phrase_words,
)
from backend.nl2sql.engines.builtin.reading import Reading, is_filler
from backend.nl2sql.engines.builtin.split_measures import own_filters
from backend.semantic.layer import Measure as LayerMeasure
from backend.semantic.layer import NamedFilter

_QUALIFYING = frozenset(
    {"the", "a", "an", "our", "their", "its", "total", "lifetime", "overall", "new", "current"}
)
_SUPERLATIVES = {"most": "desc", "fewest": "asc", "least": "asc"}
"""Superlatives the layer's linking lets inside a measure's words ("lost the most customers")."""
_STATE_ADVERBS = frozenset({"still", "currently", "already", "yet", "now", "ever"})
_EXCLUSIONS = (
    ("leaving", "out"), ("leave", "out"), ("left", "out"), ("excluding",), ("exclude",),
    ("except",), ("apart", "from"), ("aside", "from"), ("other", "than"), ("not", "counting"),
    ("without", "counting"), ("minus",), ("ignoring",), ("ignore",),
)  # fmt: skip
"""Words that take a segment out of the rows ("leaving out anyone who has churned")."""
_TIME_UNITS = {"year": "year", "month": "month", "quarter": "quarter", "week": "week"}
_AGAINST = frozenset({"versus", "vs", "v", "against", "and", "or", "compared"})
"""Words that set one segment against another ("escalated versus non-escalated")."""
_ARITHMETIC = frozenset({"divided", "minus", "plus", "times", "multiplied", "subtracted"})
_SIDES = {"above": ">", "below": "<"}
_AVERAGE_WORDS = {
    "above-average": ">", "below-average": "<", "higher-than-average": ">",
    "lower-than-average": "<", "better-than-average": ">", "worse-than-average": "<",
}  # fmt: skip
"""Adjectives comparing each row's figure with its average over the rows."""
_MEASURE_LINKS = frozenset(
    {
        "by",
        "in",
        "on",
        "for",
        "of",
        "with",
        "have",
        "has",
        "had",
        "an",
        "a",
        "term",
        "terms",
        "their",
        "its",
    }
)
"""Words between rows and the measure they are compared by ("customers by MRR", "reps with
an MRR")."""
_LISTING_WORDS = frozenset({"which", "who", "list", "show", "name", "give"})
_ANYONE = frozenset(
    {"anyone", "anybody", "everyone", "any", "one", "those", "people", "person", "ones", "all"}
)


class DefinitionReading(Reading):
    """Pass: named measures and filters of the semantic layer."""

    def _definitions(self) -> None:
        layer = self.index.semantic
        if layer is None:
            return
        self.intent.today = layer.today
        self._column_words_before()
        self._fiscal_periods(
            layer.today or dt.date.today(),
            layer.fiscal_year_start_month,
            layer.fiscal_year_named_by,
        )
        for m in self.mentions:
            if m.kind == "value":
                self._use_state_adverbs(m.start)  # "are still active": a state, as stored
        self.denied_filters: set[int] = set()
        self._absence_denied()
        if not self.definitions:
            return
        measures = {m.name: m for m in layer.measures}
        filters = {f.name: f for f in layer.filters}
        seen: set[str] = set()
        self._combined_figure(colon=None)
        self._drop_exclusion_links()
        self._filter_around_its_rows()
        self._ranking_inside()
        self._restated_after_to(measures)
        self._rows_not_figures()
        self._restatements(measures)
        self._spelled_out(measures)
        self._measure_dates_a_bucket(measures)
        self._fold_nested_filters()
        self._segments_against_each_other(filters)
        for d in list(self.definitions):
            nxt = next((o for o in self.definitions if o.start == d.end), None)
            if (
                d.definition.kind == "measure"
                and d.end - d.start == 1
                and self.tokens[d.start].lemma in _QUALIFYING
                and nxt is not None
                and nxt.definition.kind == "measure"
            ):
                self.definitions.remove(d)  # "lifetime billings": a word qualifying a measure
                self.intent.explained = self.intent.explained | {d.start}
                continue
            if self._reads_as_something_else(d.start, d.end, d.definition.kind, d.definition.table):
                self.definitions.remove(d)
                continue
            if d.definition.kind == "filter" and self._span_endpoint(d.start, d.end):
                self.definitions.remove(d)  # "hours from open to close": events, not states
                continue
            span = range(d.start, d.end)
            self.used_tokens.update(span)
            counted = any(c.kind == "count" and c.end == d.start for c in self.cues) or (
                d.start > 0
                and self.tokens[d.start - 1].kind == "number"
                and any(c.kind == "cmp" and c.end == d.start - 1 for c in self.cues)
            )  # ("more than 10 active customers": the rows compared in number)
            for k, m in enumerate(self.mentions):
                if m.start == d.start and m.end == d.end and m.kind == "table" and not counted:
                    self._use(k)  # the rows a named filter names are the focus already
                # ("how many active subscriptions ...": left for the count to count them)
            name = d.definition.name
            if d.definition.kind == "measure" and name in measures:
                self._use_state_adverbs(d.start)  # "still owed"
                if name in seen:
                    continue  # "brought in ... revenue": one measure, named twice
                seen.add(name)
                self._drop_aggregate_cue_before(d.start)
                if self._per_other_measure(d, measures, seen):
                    continue
                self._layer_measure(d.start, measures[name])
                self._qualifier_after_measure(d.end)
                self._measure_of_each_row(d.start)
                self._rows_ranked_by_measure(d.start)
                self._above_average_rows(d.start)
            elif d.definition.kind == "filter" and name in filters:
                if name in seen:
                    continue
                seen.add(name)
                self._layer_filter(d.start, filters[name])
        self._date_asked_of_filter()
        labels = {m.label for _, m in self.measures if m.sql}
        named = [m for m in layer.measures if _label(m.name) in labels]
        if len({m.table.lower() for m in named}) > 1:
            # "revenue (invoices) and discounts (subscriptions)": one query over the joined rows
            # would repeat one side's rows and inflate its sums; named as a list, each is read
            # over its own rows and they are put side by side
            self._figures_side_by_side(named)
            raise self.decline("measures over different tables in one answer are not supported")
        sharing = any(c.kind == "share" for c in self.cues)  # (a share splits by a filter)
        if len({m.filter for m in named}) > 1 and not sharing:
            # one measure's own filter would restrict the other's rows too: each measure
            # applies its own inside its aggregates instead (see `own_filters`)
            said = {
                f.condition for f in layer.filters
                if any(d.definition.kind == "filter" and d.definition.name == f.name
                       for d in self.definitions)
            }  # fmt: skip
            moved = own_filters(self.measures, named, said)
            if moved is None:
                self._figures_side_by_side(named)
                raise self.decline(
                    "measures with different filters in one answer are not supported"
                )
            self.intent.conditions = [
                c for c in self.intent.conditions if c.position >= 0 or c.sql not in moved
            ]

    def _fiscal_periods(self, today: dt.date, start_month: int, named_by: str | None) -> None:
        """ "this fiscal year", "last financial quarter", "FY2024", "last quarter": the whole
        period the layer's calendar gives (see `fiscal`), as a period the time pass dates."""
        try:
            periods = fiscal_periods(self.tokens, today, start_month, named_by)
        except PeriodNotRead as exc:
            raise self.decline(str(exc)) from exc
        for period in periods:
            span = range(period.start, period.stop)
            self.cues = [c for c in self.cues if c.start not in span and c.end - 1 not in span]
            self.cues = sorted(
                [*self.cues, Cue("period", period.start, period.stop, period.payload)],
                key=lambda c: c.start,
            )
            used = [self.mentions[k] for k in self.used]
            self.mentions = [
                m for m in self.mentions if m.start not in span or any(m is u for u in used)
            ]  # ("fiscal" is no column's word here)
            self.used = {k for k, m in enumerate(self.mentions) if any(m is u for u in used)}
            kind = "fiscal period" if period.fiscal else "period"
            self.note("filters", f"{kind} {period.payload.replace('|', ' to before ')}")

    def _column_words_before(self) -> None:
        """ "its monthly per-seat price": words right before a column's link that its layer
        synonym ("per-seat price") or its own name (`monthly_price`) holds are the column's,
        not a "per" grouping or a "monthly" bucket."""
        layer = self.index.semantic
        if layer is None:
            return
        for m in self.mentions:
            if m.kind != "column" or len(m.columns) != 1 or m.score < 2.0:
                continue
            col = m.columns[0]
            table = next((t for t in layer.tables if t.name.lower() == col.table.lower()), None)
            defined = (
                next((c for c in table.columns if c.name.lower() == col.name.lower()), None)
                if table is not None
                else None
            )
            phrases = [phrase_words(p) for p in (defined.synonyms if defined else [])]
            k = m.start
            while k > 0:
                said = tuple(t.lemma for t in self.tokens[k - 1 : m.end])
                prev = self.tokens[k - 1]
                in_synonym = any(len(p) >= len(said) and p[-len(said) :] == said for p in phrases)
                own_word = prev.lemma in col.words and self.is_cue(prev.index)
                if prev.kind != "word" or not (in_synonym or own_word):
                    break
                k -= 1
            if k == m.start:
                continue
            self.cues = [c for c in self.cues if not k <= c.start < m.start]
            self.used_tokens.update(range(k, m.start))
            self.intent.explained = self.intent.explained | frozenset(range(k, m.start))

    def _combined_figure(self, colon: int | None) -> None:
        """ "sign-ups minus churned accounts by quarter", "net new customers per quarter:
        sign-ups minus churns": arithmetic between the layer's definitions, each dated by its
        own date, is read part by part (see `combined`)."""
        if colon is None and any(t.text == ":" for t in self.tokens):
            return  # read after the colon, once a restatement is ruled out
        spans = [
            (d.start, d.end, d.definition.name)
            for d in sorted(self.definitions, key=lambda d: d.start)
            if d.definition.kind in ("measure", "filter")
        ]
        stops = frozenset(
            [c.start for c in self.cues] + [t.index for t in self.tokens if t.kind != "word"]
        )
        conditions = frozenset(
            k for m in self.mentions
            if m.kind == "value" or (m.kind == "column" and m.score >= 2.0)
            for k in range(m.start, m.end)
        )  # fmt: skip
        plan = plan_from_tokens(self.tokens, spans, colon, stops, conditions)
        if plan is not None:
            raise CombinedFigure(plan)

    def _figures_side_by_side(self, named: list[LayerMeasure]) -> None:
        """ "MRR and revenue by region": measures named as a list that one query cannot give
        (other tables, other filters) are each read on their own (see `combined`)."""
        names = {m.name for m in named}
        spans = [
            (d.start, d.end, d.definition.name)
            for d in sorted(self.definitions, key=lambda d: d.start)
            if d.definition.kind == "measure" and d.definition.name in names
        ]
        if len({name for _, _, name in spans}) != len(names):
            return
        plan = side_by_side_plan(self.tokens, spans)
        if plan is not None:
            raise CombinedFigure(plan)

    def _date_asked_of_filter(self) -> None:
        """ "which customers did we lose ..., and on what date?": the date a named filter
        tests (`churned_at` of "lost customers") is the date asked for."""
        dates = list(dict.fromkeys(self.named_dates.values()))
        if len(dates) != 1:
            return
        for t in self.tokens[1:]:
            before = self.tokens[t.index - 1].lemma
            if t.lemma not in ("date", "day") or before not in ("what", "which"):
                continue
            if any(m.start <= t.index < m.end and m.score >= 2.0 for m in self.mentions):
                return  # "what date" names a column of its own
            at = [
                k for k, m in enumerate(self.mentions)
                if m.start == t.index and m.end == t.index + 1 and k not in self.used
            ]  # fmt: skip
            for k in at:
                # the word names that date, as strongly as its own name would
                m = self.mentions[k]
                m.kind, m.columns, m.tables, m.score = "column", dates, [], 3.0
            if not at and not any(m.start <= t.index < m.end for m in self.mentions):
                self._insert_mention(
                    Mention(t.index, t.index + 1, "column", columns=dates, score=3.0, text=t.text)
                )
            return

    def _insert_mention(self, mention: Mention) -> None:
        """Add a mention in token order, keeping which mentions already have a role."""
        used = [self.mentions[k] for k in self.used]
        self.mentions = sorted([*self.mentions, mention], key=lambda m: m.start)
        self.used = {k for k, m in enumerate(self.mentions) if any(m is u for u in used)}

    def _ranking_inside(self) -> None:
        """ "which rep has lost the most customers": a superlative inside a measure's words
        ranks by the measure; the measure is read from after it (its words before it are
        taken as its own), so the ranking finds the measure right after "the most"."""
        for d in self.definitions:
            if d.definition.kind != "measure" or self.used:
                continue
            at = next(
                (t.index for t in self.tokens[d.start + 1 : d.end] if t.lemma in _SUPERLATIVES),
                None,
            )
            if at is None:
                continue
            self.used_tokens.update(range(d.start, at))
            direction = _SUPERLATIVES[self.tokens[at].lemma]
            self.cues = sorted(
                [*self.cues, Cue("super", at, at + 1, direction)], key=lambda c: c.start
            )
            d.start = at + 1
            d.alternatives = ()  # ranked by, the words name the figure, not the segment

    def _restated_after_to(self, measures: dict[str, LayerMeasure]) -> None:
        """ "lost the most customers to churn": a measure named right after another one and
        "to", reading no column the first does not read, says how the first came about; it
        is not a second figure. So does a measure of other rows after a segment and "to" in
        a question that lists rows ("which plans are no longer sold to new customers")."""
        for first in [d for d in self.definitions if d.definition.kind == "filter"]:
            second = next(
                (d for d in self.definitions
                 if d.start == first.end + 1 and d.definition.kind == "measure"),
                None,
            )  # fmt: skip
            if (
                second is None
                or self.tokens[first.end].lemma != "to"
                or not self._lists_rows()
                or second.definition.table.lower() == first.definition.table.lower()
            ):
                continue
            # "which plans are no longer sold to new customers": to whom the segment applies,
            # not a figure of other rows
            self.definitions.remove(second)
            self.used_tokens.update(range(first.end, second.end))
            self.intent.explained = self.intent.explained | frozenset(range(first.end, second.end))
        for first in [d for d in self.definitions if d.definition.kind == "measure"]:
            second = next(
                (d for d in self.definitions
                 if d.start == first.end + 1 and d.definition.kind == "measure"),
                None,
            )  # fmt: skip
            if second is None or self.tokens[first.end].lemma not in ("to", "through"):
                continue
            a, b = measures.get(first.definition.name), measures.get(second.definition.name)
            if a is None or b is None:
                continue
            read = set(self._fragment_columns(f"{a.expression} + 0 = {a.filter or 0}"))
            theirs = set(self._fragment_columns(f"{b.expression} + 0 = {b.filter or 0}"))
            if not theirs or not theirs <= read or a.table.lower() != b.table.lower():
                continue
            self.definitions.remove(second)
            self.used_tokens.update(range(first.end, second.end))
            self.intent.explained = self.intent.explained | frozenset(range(first.end, second.end))

    def _rows_not_figures(self) -> None:
        """ "Which customers did we lose": words that name both a measure and a segment
        ask for the segment's rows when the question lists rows."""
        if self.used or not self._lists_rows():
            return
        for d in self.definitions:
            segment = next((a for a in d.alternatives if a.kind == "filter"), None)
            if d.definition.kind != "measure" or segment is None:
                continue
            d.definition = segment
            if segment.table.lower() in self.index.tables:
                table = self.index.table(segment.table)
                self.mentions.append(
                    Mention(d.start, d.end, "table", tables=[table], score=d.score, text=d.text)
                )
                self.intent.subject_named = True  # "which customers ...": they are named
        self.mentions.sort(key=lambda m: m.start)

    def _rows_asked_for_kept(self, intent: Intent) -> None:
        """ "Which plans are no longer sold to new customers?": a question that lists rows
        is not answered by one figure of a layer measure its words happen to name."""
        if self.index.semantic is None:
            return
        asks_who = self._asks_who_they_are()
        if not asks_who and not self._lists_rows():
            return
        if intent.group_by or intent.having or intent.order_by or intent.partition_by:
            return
        if not intent.select or not all(m.agg is not None for m in intent.select):
            return
        if not any(m.agg == "LAYER" for m in intent.select):
            return
        if asks_who:  # "above-average customers by MRR: who are they?"
            raise self.decline("the question asks which rows, but the reading gives one figure")
        first = min(self.mentions, key=lambda m: m.start, default=None)
        listing = next(t for t in self.tokens if t.kind == "word")
        named = {i for d in self.definitions for i in range(d.start, d.end)}
        if (
            first is not None
            and first.kind == "table"
            and first.start not in named
            and self.gap(listing.index + 1, first.start) == 0
        ):  # "which plans ...", "list the customers ...": the rows asked for
            raise self.decline("the question lists rows, but the reading gives one figure")

    def _state_shared_by_the_negated_side(self) -> None:
        """ "customers with Slack switched on but not Microsoft Teams": a named state said of
        one value of a column ("switched on") and then "not" another value of the same
        column: the other side is read in the same state (no row of Teams switched on), as
        "both Slack and Jira switched on" puts it on each side. Only the states of rows
        between the question's rows and the value's table, never the rows' own."""
        focus = self.intent.table.lower()
        for anti in self.intent.anti_joins:
            if anti.exists or len(anti.filters) != 1 or anti.filters[0].op not in ("=", "in"):
                continue
            col = anti.filters[0].column
            if not isinstance(col, ColumnRef) or not any(
                f.column == col and f.op in ("=", "in") for f in self.intent.filters
            ):
                continue  # no positive side named on the same column
            for cue in self.cues:
                before = self.tokens[cue.start - 1] if cue.start > 0 else None
                if cue.kind == "neg" and before is not None and before.lemma == "but":
                    self._use_token(before)  # "Slack but not Teams": the two sides
            path = self.index.join_path(self.intent.table, col.table)
            if not path:
                continue
            on_path = {step[2].lower() for step in path} - {focus}
            for c in self.intent.conditions:
                if c.position < 0 or not c.tables or c.sql in anti.conditions:
                    continue
                if all(t.lower() in on_path for t in c.tables):
                    anti.conditions.append(c.sql)

    def counted_rows_after(self, pos: int) -> int | None:
        """ "average CSAT for each agent with at least 20 rated tickets": a number followed by
        rows a table names (past a word or two that name no column: "rated", "open") bounds
        how many rows there are, not the layer measure named before it. The mention of
        those rows, or None."""
        k = pos
        while k < len(self.tokens) and k - pos <= 2:
            at = [j for j, m in enumerate(self.mentions) if m.start <= k < m.end]
            table = next(
                (j for j in at if self.mentions[j].kind == "table" and self.mentions[j].start == k),
                None,
            )
            if table is not None:
                return table
            tok = self.tokens[k]
            if tok.kind != "word" or any(self.mentions[j].kind in ("column", "value") for j in at):
                return None
            k += 1
        return None

    def _asks_who_they_are(self) -> bool:
        """ "...: who are they?", "which are those?": rows are asked for, whatever came first."""
        words = [t.lemma for t in self.tokens if t.kind == "word"]
        return any(
            words[k] in ("who", "which", "what") and words[k + 1] in ("are", "were", "be")
            and words[k + 2] in ("they", "these", "those", "them")
            for k in range(len(words) - 2)
        )  # fmt: skip

    def _lists_rows(self) -> bool:
        """ "Which customers ...", "list the ...": the question asks for rows, not a figure
        (no count, total or ranking word)."""
        words = [t.lemma for t in self.tokens if t.kind == "word"]
        if not words or words[0] not in _LISTING_WORDS:
            return False
        return not any(c.kind in ("count", "agg", "super", "top", "share") for c in self.cues)

    def _layer_measure_at(self, pos: int) -> Measure | None:
        """The layer measure named at `pos`, past filler and qualifying words ("by the
        current MRR", "by lifetime billings", "by total amount invoiced")."""
        for at, m in self.measures:
            if m.sql is None or at < pos or at - pos > 5:
                continue
            ranked = self._ranked_rows_before_by(pos, at) | self._quantity_of(pos, at)
            between = [t for t in self.tokens[pos:at] if t.index not in ranked]
            if len(between) <= 3 and all(
                t.lemma in _QUALIFYING
                or is_filler(t)
                or (t.index in self.used_tokens and not self.is_cue(t.index))
                for t in between
            ):
                self.used_tokens.update(t.index for t in between if t.lemma in _QUALIFYING)
                return m
        return None

    def _layer_measure_before(self, pos: int) -> Measure | None:
        """ "which accounts have we invoiced the most": the layer measure named right before
        a superlative (past "the") is what it ranks by."""
        for at, m in self.measures:
            end = self._definition_end(at)
            if m.sql is not None and end <= pos and all(is_filler(t) for t in self.tokens[end:pos]):
                return m
        return None

    def _quantity_of(self, pos: int, at: int) -> set[int]:
        """ "the biggest book of MRR", "the largest amount of revenue": one word and "of" right
        before the measure say how much of it; the word names nothing of the schema."""
        if at - pos < 2 or self.tokens[at - 1].lemma != "of":
            return set()
        word = self.tokens[at - 2]
        if word.kind != "word" or word.lemma in STOP_WORDS or self.is_cue(word.index):
            return set()
        if any(m.start <= word.index < m.end and m.score >= 2.0 for m in self.mentions):
            return set()
        return {word.index, at - 1}

    def _ranked_rows_before_by(self, pos: int, at: int) -> set[int]:
        """ "biggest customer by total invoiced": the rows ranked, then "by", then the
        measure; the table's words and the "by" stand between the superlative and it."""
        for m in self.mentions:
            by = m.end
            if m.kind == "table" and m.start == pos and by < at and self.tokens[by].lemma == "by":
                return set(range(m.start, by + 1))
        return set()

    def measure_date_near(self, start: int, end: int) -> ColumnRef | None:
        """ "2024 revenue", "revenue in 2024", "sign-ups during Q3": the time column of the
        layer measure named right next to a period (`start`..`end`) dates that period, before
        any other date a word elsewhere in the question might name."""
        layer = self.index.semantic
        if layer is None:
            return None
        labels = {m.label for _, m in self.measures if m.sql and m.label}
        for d in self.definitions:
            if d.definition.kind != "measure":
                continue
            named = next((m for m in layer.measures if m.name == d.definition.name), None)
            if named is None or not named.time_column or "." not in named.time_column:
                continue
            if _label(named.name) not in labels and not any(
                label.startswith(_label(named.name) + "_per_") for label in labels
            ):
                continue  # the words were read as something else
            after = d.start >= end and self.gap(end, d.start) == 0
            before = d.end <= start and self.gap(d.end, start) == 0
            if not (after or before):
                continue
            table, _, column = named.time_column.partition(".")
            if table.lower() in self.index.tables:
                col = self.index.column(table, column)
                if col is not None:
                    return col
        return None

    def layer_labels_rows(self, col: ColumnRef) -> bool:
        """Whether the semantic layer says `col` is its table's own name: the words before
        "name" are a synonym of the table (`company_name` of a table users call "company"),
        or a synonym of the column is "<a word for the table> name" ("customer name"); and
        the question names that table first, as the rows it asks for."""
        layer = self.index.semantic
        if layer is None or not col.words or col.words[-1] not in ("name", "title"):
            return False
        first = min(self.mentions, key=lambda m: m.start, default=None)
        if (
            first is None
            or first.kind != "table"
            or first.tables[:1] != [self.index.table(col.table)]
        ):
            return False  # the rows listed are not named first ("which account managers")
        defined = next((t for t in layer.tables if t.name.lower() == col.table.lower()), None)
        if defined is None:
            return False
        table_words = {phrase_words(s) for s in defined.synonyms} | {
            self.index.table(col.table).words
        }
        if col.words[:-1] in table_words:
            return True
        column = next((c for c in defined.columns if c.name.lower() == col.name.lower()), None)
        return column is not None and any(
            words[-1:] == col.words[-1:] and words[:-1] in table_words
            for words in (phrase_words(s) for s in column.synonyms)
        )

    def _definition_end(self, pos: int) -> int:
        return next((d.end for d in self.definitions if d.start == pos), pos)

    def _absence_denied(self) -> None:
        """ "accounts that have an account manager (assigned)": a named filter the layer
        words as an absence ("no account manager" for self-serve accounts) said with "have a"
        or "with a" names its negation: the rows that do have one."""
        if self.used:
            return
        taken = {k for d in self.definitions for k in range(d.start, d.end)}
        for phrase, named in self.index.definitions.items():
            filters = [d for d in named if d.kind == "filter"]
            if len(phrase) < 2 or phrase[0] not in ("no", "without") or len(filters) != 1:
                continue
            rest = phrase[2:] if phrase[1] in ("a", "an", "any") else phrase[1:]
            if not rest:
                continue
            for tok in self.tokens:
                if tok.lemma not in ("have", "has", "had", "with"):
                    continue
                k = tok.index + 1
                if k < len(self.tokens) and self.tokens[k].lemma in ("a", "an", "any"):
                    k += 1
                end = k + len(rest)
                if tuple(t.lemma for t in self.tokens[k:end]) != rest:
                    continue
                if end < len(self.tokens) and self._loose_participle(self.tokens[end]):
                    end += 1  # "have an account manager assigned"
                if any(i in taken for i in range(tok.index, end)):
                    continue
                self.mentions = [
                    m for m in self.mentions if not tok.index <= m.start < end
                ]  # the words are the filter's, not links of their own
                mention = DefinitionMention(k, end, filters[0], 3.0 * len(rest), tok.text)
                self.definitions = sorted([*self.definitions, mention], key=lambda d: d.start)
                self.used_tokens.update(range(tok.index, k))
                self.denied_filters.add(k)
                taken.update(range(tok.index, end))

    def _loose_participle(self, tok: Token) -> bool:
        """A participle after a thing had ("assigned", "attached") that links to nothing
        or only loosely: it says the thing is had, nothing more."""
        if tok.kind != "word" or not tok.lemma.endswith("ed"):
            return False
        return not any(m.start <= tok.index < m.end and m.score >= 2.0 for m in self.mentions)

    def _filter_around_its_rows(self) -> None:
        """ "never paid an invoice late": the words of a named filter ("paid late") written
        around the rows it is a state of ("an invoice"); the last words alone linked it. The
        filter is read from its first word, so what stands before it ("never") is said of it,
        and the rows inside are its own rows, not a link of their own."""
        if self.used:
            return
        for d in self.definitions:
            if d.definition.kind != "filter":
                continue
            said = tuple(t.lemma for t in self.tokens[d.start : d.end])
            for phrase, named in self.index.definitions.items():
                if d.definition not in named or len(phrase) <= len(said):
                    continue
                if phrase[-len(said) :] != said:
                    continue
                start = self._phrase_head_before(d, phrase[: -len(said)])
                if start is None:
                    continue
                inside = range(start, d.start)
                self.mentions = [
                    m for m in self.mentions
                    if m.kind == "table" or not (m.start in inside and m.end <= d.start)
                ]  # fmt: skip  # ("paid" is not the `amount` paid)
                for k, m in enumerate(self.mentions):
                    if m.kind == "table" and m.start in inside and m.end <= d.start:
                        self._use(k)  # "an invoice": the filter's own rows
                self.used_tokens.update(inside)
                self.intent.explained = self.intent.explained | frozenset(inside)
                d.start = start
                break

    def _phrase_head_before(self, d: DefinitionMention, head: tuple[str, ...]) -> int | None:
        """Where `head` (the first words of a filter's name) stands before `d`, with only
        articles and words naming the filter's table between them."""
        own = d.definition.table.lower()
        rows = {
            k for m in self.mentions
            if m.kind == "table" and any(t.name.lower() == own for t in m.tables)
            for k in range(m.start, m.end)
        }  # fmt: skip
        k = d.start
        gap = 0
        while k > 0 and gap <= 3:
            tok = self.tokens[k - 1]
            if tok.lemma in ("a", "an", "the", "any", "their", "its", "one") or tok.index in rows:
                k -= 1
                gap += 1
                continue
            break
        if gap == 0 or not any(i in rows for i in range(k, d.start)):
            return None
        start = k - len(head)
        if start < 0 or tuple(t.lemma for t in self.tokens[start:k]) != head:
            return None
        if any(t.kind != "word" for t in self.tokens[start:k]):
            return None
        return start

    def _fold_nested_filters(self) -> None:
        """ "never paid an invoice late": "paid" and "paid late" name filters on the same
        table a few words apart; the longer one is meant, from where the shorter starts."""
        filters = [d for d in self.definitions if d.definition.kind == "filter"]
        for short in filters:
            words = set(short.definition.name.lower().split())
            for long in filters:
                longer = set(long.definition.name.lower().split())
                if (
                    long is not short
                    and words < longer
                    and long.definition.table == short.definition.table
                    and 0 < long.start - short.start <= 4
                    and short in self.definitions
                ):
                    self.definitions.remove(short)
                    self.used_tokens.update(range(short.start, short.end))
                    long.start = short.start
                    for k, m in enumerate(self.mentions):
                        if m.kind == "table" and m.start == short.start and m.end == short.end:
                            self._use(k)

    def _reads_as_something_else(self, start: int, end: int, kind: str, table: str) -> bool:
        """One loose word is not enough to bring in a definition on an unrelated table:
        "highest-paid staff" is not about paid invoices; "customers billed in euros" uses
        the measure's name as a verb."""
        if end - start != 1:
            return False
        tok = self.tokens[start]
        after_table = any(m.kind == "table" and m.end == start for m in self.mentions)
        if kind == "measure" and tok.lemma.endswith("ed") and after_table:
            return True
        if kind != "filter" or table.lower() == self.intent.table.lower():
            return False
        named = {
            t.name.lower()
            for m in self.mentions
            if m.kind == "table" and not (m.start == start and m.end == end)
            for t in m.tables[:1]
        } | {c.table.lower() for m in self.mentions if m.kind != "table" for c in m.columns[:1]}
        return not any(
            table.lower() == other or len(self.index.join_path(other, table) or [0, 0]) == 1
            for other in named
        )

    def _segments_against_each_other(self, filters: dict[str, NamedFilter]) -> None:
        """ "escalated versus non-escalated tickets", "churned vs active customers": a named
        filter set against its opposite (its own name after "non"/"not", or a filter whose
        condition is its negation) asks for a figure for each side: the rows are grouped by
        the filter's test, not restricted by it."""
        named = [d for d in self.definitions if d.definition.kind == "filter"]
        for a in named:
            first = filters.get(a.definition.name)
            if first is None or a not in self.definitions:
                continue
            if any(
                c.kind == "neg" and c.end <= a.start and a.start - c.end <= 2 for c in self.cues
            ):
                continue  # "not churned and active": one segment said twice
            for b in named:
                second = filters.get(b.definition.name)
                if b.start < a.end or second is None or b not in self.definitions:
                    continue
                between = [t.lemma for t in self.tokens[a.end : b.start] if t.kind == "word"]
                if not set(between) & _AGAINST or len(between) > 3:
                    continue
                opposite = (
                    second.name == first.name and between[-1:] in (["non"], ["not"], ["un"])
                ) or (
                    second.table.lower() == first.table.lower()
                    and not set(between) & {"not", "non", "un", "never", "no"}
                    and _same_test(_negation(first.condition), second.condition)
                )  # ("current and not former": one segment said twice)
                if opposite:
                    self._group_by_filter(a, b, first)
                    break

    def _group_by_filter(
        self, a: DefinitionMention, b: DefinitionMention, named: NamedFilter
    ) -> None:
        self.definitions.remove(a)
        self.definitions.remove(b)
        self.used_tokens.update(range(a.start, a.end))
        self.used_tokens.update(range(a.end, b.start))
        self.used_tokens.update(range(b.start, b.end))
        for k, m in enumerate(self.mentions):
            if a.start <= m.start and m.end <= b.end and m.kind != "table":
                self._use(k)  # the words are the segment's, read as its two sides
        column = self._tested_flag(named.condition)
        label = _label(named.name) or "segment"
        key = (
            Measure(column)
            if column is not None
            else Measure(None, sql=named.condition, label=label,
                         sql_tables=self._fragment_tables(named.condition))
        )  # fmt: skip
        self.group_keys.append((a.start, key))
        self.projection.append((a.start, key))
        end = len(self.tokens)
        if not any(c.payload == "compare" for c in self.cues):
            self.cues.append(Cue("group", end, end, "compare"))  # a breakdown was asked for
        self.note("grouping", f"{named.name} or not")

    def _tested_flag(self, condition: str) -> ColumnRef | None:
        """The yes/no column a condition tests against 1 (`tickets.is_escalated = 1`): its
        own values name the two sides."""
        try:
            tree = sqlglot.parse_one(condition)
        except sqlglot.errors.ParseError:
            return None
        if not isinstance(tree, exp.EQ) or not isinstance(tree.this, exp.Column):
            return None
        literal = tree.expression
        if not isinstance(literal, exp.Literal) or literal.this not in ("1", "true"):
            return None
        cols = self._fragment_columns(condition)
        return cols[0] if len(cols) == 1 else None

    def _measure_of_each_row(self, pos: int) -> None:
        """ "List customers with their revenue", "show plans and their MRR": a measure said
        to belong to the rows listed ("their", "its") is a figure for each of them: the rows
        are its group, as "for each customer" would say."""
        if any(c.kind in ("group", "by", "bucket", "top", "super") for c in self.cues):
            return
        words = [t for t in self.tokens[:pos] if t.kind == "word"]
        while words and (words[-1].lemma in _QUALIFYING - {"their", "its"}):
            words.pop()  # "their total revenue", "its current MRR"
        if len(words) < 3 or words[-1].lemma not in ("their", "its"):
            return
        if words[-2].lemma not in ("with", "and", "alongside", "plus"):
            return
        link = words[-2].index
        k = next(
            (k for k, m in enumerate(self.mentions)
             if m.kind == "table" and m.end <= link and self.gap(m.end, link) == 0),
            None,
        )  # fmt: skip
        if k is None or not {t.lemma for t in words[:2]} & (_LISTING_WORDS | {"what"}):
            return
        self._group_key(k)
        end = len(self.tokens)
        if not any(c.payload == "compare" for c in self.cues):
            self.cues.append(Cue("group", end, end, "compare"))  # a breakdown was asked for
        self.used_tokens.update({link, words[-1].index})

    def _rows_ranked_by_measure(self, pos: int) -> None:
        """ "Rank account managers by MRR", "customers ranked by revenue": the rows named
        are each given the measure and put in its order, highest first unless the question
        says otherwise (a "top N" ranking is read by the ranking pass instead)."""
        top = self._top_after_ranking(pos)
        if top is None and any(c.kind in ("top", "super") for c in self.cues):
            return
        measure = next((m for at, m in self.measures if at == pos), None)
        by = next(
            (c for c in self.cues
             if c.kind in ("by", "order") and c.end <= pos
             and self._layer_measure_at(c.end) is measure),
            None,
        )  # fmt: skip
        if measure is None or by is None:
            return
        verb = next(
            (t for t in self.tokens[: by.end] if t.lemma in ("rank", "ranked", "ranking")), None
        )
        if verb is None:
            return
        k = next(
            (k for k, m in enumerate(self.mentions)
             if m.kind == "table" and m.end <= by.start
             and (verb.index < m.start or verb.index >= by.start)
             and self.gap(m.end, by.start) == 0),
            None,
        )  # fmt: skip
        if k is None:
            return
        self._group_key(k)
        self.order_keys.append((by.start, measure, self._direction(default=True)))
        if top is not None:  # "... and give me the top five": the first rows of that order
            self.limit = int(float(self.tokens[top.end].lemma))
            self.used_tokens.update(range(top.start, top.end + 1))
            self.cues.remove(top)
        self.cues = [c for c in self.cues if c is not by and not (c.start <= verb.index < c.end)]
        self.used_tokens.update({verb.index, *range(by.start, by.end)})
        self.note("order", f"{measure.label} per {self.mentions[k].text}, ranked")

    def _above_average_rows(self, pos: int) -> None:
        """ "Above-average customers by MRR", "which reps have below-average CSAT": the rows
        named are each given the measure, and kept where it is above (below) its average over
        those rows (HAVING, as "whose MRR is above the average" reads)."""
        measure = next((m for at, m in self.measures if at == pos and m.sql is not None), None)
        said = _average_adjective(self.tokens, pos)
        if measure is None or said is None:
            return
        first, last, op = said
        between = [t for t in self.tokens[last:pos] if t.kind == "word"]
        rows = next(
            (k for k, m in enumerate(self.mentions)
             if m.kind == "table" and m.start == last and self.table_of(k)),
            None,
        )  # fmt: skip
        if rows is not None:  # "above-average customers by MRR": those rows are grouped
            table_words = range(self.mentions[rows].start, self.mentions[rows].end)
            between = [t for t in between if t.index not in table_words]
        if not all(t.lemma in _MEASURE_LINKS or t.lemma in _QUALIFYING for t in between):
            return
        if rows is None:
            end = self._definition_end(pos)
            rows = next(
                (k for k, m in enumerate(self.mentions)
                 if m.kind == "table" and m.start == end and self.table_of(k)),
                None,
            )  # fmt: skip  # "above-average MRR customers"
        if rows is None and not any(
            m.kind == "table" and m.end <= first and self.table_of(k)
            for k, m in enumerate(self.mentions)
        ):
            # "above-average MRR" alone: no rows to compare, and one figure would not answer
            raise self.decline(
                f"'{' '.join(t.text for t in self.tokens[first:last])}' needs the rows whose "
                f"{measure.label} is compared"
            )
        if rows is not None:
            self._use(rows)
        self.measures = [(at, m) for at, m in self.measures if m is not measure]
        span = range(first, pos)
        self.cues = [c for c in self.cues if c.start not in span]
        self.used_tokens.update(t.index for t in self.tokens[first:pos] if t.kind == "word")
        self.intent.having.append(Filter(measure, op, [], subquery_agg="AVG"))
        self.note("having", f"{measure.label} {op} its average per group")

    def _qualifier_after_measure(self, end: int) -> None:
        """ "MRR under management": "under" and one word no table, column or value knows,
        closing the phrase, qualify the measure; they compare it with nothing."""
        cue = next((c for c in self.cues if c.kind == "cmp" and c.start == end), None)
        if cue is None or self.tokens[cue.start].lemma != "under" or cue.end >= len(self.tokens):
            return
        word = self.tokens[cue.end]
        after = self.tokens[cue.end + 1] if cue.end + 1 < len(self.tokens) else None
        if word.kind != "word" or word.lemma in STOP_WORDS:
            return
        if any(m.start <= word.index < m.end for m in self.mentions):
            return
        if after is not None and after.kind == "word" and after.lemma not in ("and", "or"):
            return
        self.cues.remove(cue)
        self.used_tokens.update({cue.start, word.index})
        self.intent.explained = self.intent.explained | {cue.start, word.index}

    def _top_after_ranking(self, pos: int) -> Cue | None:
        """ "Rank account managers by MRR and give me the top five": the only ranking cue is
        a "top N" after the measure ranked by, with no column of its own after the number."""
        ranking = [c for c in self.cues if c.kind in ("top", "super")]
        if len(ranking) != 1 or ranking[0].kind != "top" or ranking[0].start <= pos:
            return None
        top = ranking[0]
        if top.end >= len(self.tokens) or self.tokens[top.end].kind != "number":
            return None
        if any(m.start == top.end + 1 and m.kind == "column" for m in self.mentions):
            return None  # "the top 5 salaries": ranked by a column of their own
        return top

    def _span_endpoint(self, start: int, end: int) -> bool:
        """Whether one word is an end of "from X to Y" / "between X and Y" of single words:
        the events a time span runs between ("hours from open to close"), not a segment."""
        if end - start != 1:
            return False
        words = [t for t in self.tokens if t.kind == "word"]
        at = next((i for i, t in enumerate(words) if t.index == start), None)
        if at is None:
            return False
        lemmas = [t.lemma for t in words]
        opens = {"from": ("to", "until", "till"), "between": ("and",)}
        before = lemmas[at - 1] if at >= 1 else ""
        if before in opens and at + 2 < len(lemmas) and lemmas[at + 1] in opens[before]:
            return True  # the first end
        two_back = lemmas[at - 2] if at >= 2 else ""
        return two_back in opens and before in opens[two_back]  # the second end

    def _drop_aggregate_cue_before(self, pos: int) -> None:
        """ "total MRR", "how many sign-ups": the measure already says how it aggregates."""
        for cue in list(self.cues):
            if cue.kind in ("agg", "count") and cue.end <= pos and self.gap(cue.end, pos) == 0:
                self.cues.remove(cue)
                self.used_tokens.update(range(cue.start, cue.end))

    def _layer_measure(self, pos: int, named: LayerMeasure) -> None:
        tables = self._fragment_tables(named.expression) or [named.table]
        label = _label(named.name) or "measure"
        expression = self._in_unit(pos, named)
        measure = Measure(None, "LAYER", sql=expression, label=label, sql_tables=tables)
        self.measures.append((pos, measure))
        read = set(self._fragment_columns(named.expression))
        for k, m in enumerate(self.mentions):
            touching = m.end == pos or m.start == self._definition_end(pos)
            if touching and m.kind == "column" and m.columns and set(m.columns) <= read:
                self._use(k)  # "average CSAT score": `score` is the measure's own column
        if named.filter:
            self._add_condition(named.name, named.filter, negated=False, pos=-1)
            self._own_filter_restated(pos, named)
        if named.time_column and "." in named.time_column:
            table, column = named.time_column.split(".", 1)
            col = self.index.column(table, column) if table.lower() in self.index.tables else None
            if col is not None and col not in self.time_preference:
                self.time_preference.append(col)
        self.note("measures", named.name)

    def _own_filter_restated(self, pos: int, named: LayerMeasure) -> None:
        """ "active MRR": a word right before a measure that starts the name of a layer filter
        whose test is the measure's own filter ("active subscription": `end_date IS NULL`)
        says what the measure already applies; it is read as part of the measure."""
        layer = self.index.semantic
        if layer is None or pos == 0 or named.filter is None:
            return
        tok = self.tokens[pos - 1]
        if tok.kind != "word" or self.is_cue(tok.index):
            return
        for f in layer.filters:
            if f.table.lower() != named.table.lower() or not _same_test(f.condition, named.filter):
                continue
            firsts = {phrase_words(p)[:1] for p in [f.name, *f.synonyms]}
            if (tok.lemma,) not in firsts:
                continue
            self.used_tokens.add(tok.index)
            for k, m in enumerate(self.mentions):
                if m.start <= tok.index < m.end and m.end <= pos and m.kind != "table":
                    m.kind = "spent"  # not a value of its own ("active" status)
                    self._use(k)
            return

    def _in_unit(self, pos: int, named: LayerMeasure) -> str:
        """ "average resolution time in hours": a measure counted in days, converted."""
        text = f"{named.name} {named.description or ''}".lower()
        in_days = "julianday" in named.expression.lower() or "days" in text.split()
        end = self._definition_end(pos)
        after = [t.lemma for t in self.tokens[end : end + 3]]
        for unit, factor in (("hour", "* 24"), ("minute", "* 1440"), ("week", "/ 7.0")):
            if in_days and "in" in after and unit in after:
                at = end + after.index(unit)
                self.used_tokens.update(range(end, at + 1))
                return f"({named.expression}) {factor}"
        if in_days and after[:2] == ["in", "day"]:
            self.used_tokens.update(range(end, end + 2))  # "in days": as it is counted
            for k, m in enumerate(self.mentions):
                if end <= m.start < end + 2 and m.kind == "column":
                    m.kind = "spent"
                    self._use(k)
        return named.expression

    def _layer_filter(self, pos: int, named: NamedFilter) -> None:
        neg = next(
            (
                c
                for c in self.cues
                if c.kind == "neg" and c.end <= pos and pos - c.end <= 2 and c.payload != "used"
            ),
            None,
        )
        excluded = self._exclusion_before(pos) if neg is None else None
        if pos in self.denied_filters:
            neg, excluded = None, set()  # "have an account manager": the absence denied
        if neg is not None:
            neg.payload = "used"
            self.used_tokens.update(range(neg.start, neg.end))
            self.state_negations += 1
        elif excluded is not None:
            self.used_tokens.update(excluded)
            for cue in self.cues:
                if cue.kind == "neg" and cue.start in excluded:
                    cue.payload = "used"  # the exclusion is this negation, expressed here
                    self.state_negations += 1
            for k, m in enumerate(self.mentions):
                if m.start in excluded and m.kind != "table":
                    self._use(k)  # "leaving" is not `left_on` here
        self._use_state_adverbs(pos)  # "still unpaid", "currently active"
        negated = neg is not None or excluded is not None
        table = self.index.tables.get(named.table.lower())
        if (
            negated
            and table is not None
            and table.name.lower() != self.intent.table.lower()
            and self.index.are_joinable(self.intent.table, table.name)
        ):
            # "customers who never paid an invoice late": no related row meets it
            self.intent.anti_joins.append(AntiJoin(table.name, conditions=[named.condition]))
            for k, m in enumerate(self.mentions):
                names = {t.name.lower() for t in m.tables}
                near = abs(m.start - pos) <= 3
                if m.kind == "table" and near and table.name.lower() in names:
                    self._use(k)  # "never paid an invoice late": the invoices are negated too
            self.note("negation", f"without {table.name} where {named.name}")
            return
        self._add_condition(named.name, named.condition, negated=negated, pos=pos)
        self.note("filters", ("not " if negated else "") + named.name)
        unset = _tests_unset(named.condition) and not negated
        for col in self._fragment_columns(named.condition):
            if col.kind == "date" and not unset:
                self.named_dates[pos] = col  # "churned between ...": the date it names
            # (an "open job" has no `closed_at`: no period falls on a date it leaves empty)

    def _per_other_measure(
        self, d: DefinitionMention, measures: dict[str, LayerMeasure], seen: set[str]
    ) -> bool:
        """ "amount invoiced per seat billed": a measure per another measure of the same
        rows (same table, same filter) is their ratio, one figure."""
        per = next((c for c in self.cues if c.kind == "group" and c.start == d.end), None)
        if per is None or self.tokens[per.start].lemma != "per":
            return False
        other = next(
            (
                o for o in self.definitions
                if o.start == per.end and o.definition.kind == "measure"
                and o.definition.name in measures
            ),
            None,
        )  # fmt: skip
        if other is None:
            return False
        top, bottom = measures[d.definition.name], measures[other.definition.name]
        same_rows = top.table.lower() == bottom.table.lower() and top.filter == bottom.filter
        if not same_rows:
            return False
        self.cues.remove(per)
        self.used_tokens.update(range(per.start, per.end))
        self.used_tokens.update(range(other.start, other.end))
        seen.add(bottom.name)
        ratio = top.model_copy(
            update={
                "name": f"{top.name} per {bottom.name}",
                "expression": f"1.0 * ({top.expression}) / ({bottom.expression})",
                "time_column": top.time_column or bottom.time_column,
                "description": None,
            }
        )
        self._layer_measure(d.start, ratio)
        return True

    def _restatements(self, measures: dict[str, LayerMeasure]) -> None:
        """ "Churn rate by size band, as the percent of all accounts in the band that
        churned": a clause after the measure that says, in other words, what it is. Its
        words are read as the measure's own: a segment the measure already tests, columns
        of the measure's tables and loose links are not new conditions or columns."""
        for d in [x for x in self.definitions if x.definition.kind == "measure"]:
            named = measures.get(d.definition.name)
            if named is None:
                continue
            start = next(
                (
                    t.index for t in self.tokens[d.end :]
                    if t.lemma == "as" and t.index > 0
                    and self.tokens[t.index - 1].text == ","
                    and t.index + 1 < len(self.tokens)
                    and self.tokens[t.index + 1].lemma in ("the", "a", "an")
                ),
                None,
            )  # fmt: skip
            end = next(
                (t.index for t in self.tokens[start or 0 :] if t.text in ("?", ";", "!")),
                len(self.tokens),
            )
            if d.end < len(self.tokens) and self.tokens[d.end].text == "(":
                # "list-price value (seats times per-seat price)": the measure in other words
                close = next((t.index for t in self.tokens[d.end :] if t.text == ")"), None)
                if close is not None:
                    start, end = d.end + 1, close
            if start is None:
                continue
            own = {c.lower() for c in [named.table, *self._fragment_tables(named.expression)]}
            read = set(self._fragment_columns(named.expression))
            for other in list(self.definitions):
                if other is d or not start <= other.start < end:
                    continue
                tested = self._definition_columns(other.definition.name, other.definition.kind)
                if other.definition.kind == "filter" and tested and tested <= read:
                    self.definitions.remove(other)  # "... that churned": the rate's own test
            self.cues = [c for c in self.cues if not start <= c.start < end]
            for k, m in enumerate(self.mentions):
                if not start <= m.start < end:
                    continue
                tables = {t.name.lower() for t in m.tables} | {c.table.lower() for c in m.columns}
                if m.score < 2.0 or (tables and tables <= own):
                    m.kind = "spent"  # read as part of the measure, not as a link
                    self._use(k)
            self.used_tokens.update(range(start - 1, end))
            self.intent.explained = self.intent.explained | frozenset(range(start, end))

    def _spelled_out(self, measures: dict[str, LayerMeasure]) -> None:
        """ "ARPA: total current MRR divided by the number of active customers": after a colon,
        arithmetic over the layer's measures spells out the measure named before it. When
        every measure it names is part of that measure, the clause adds nothing; otherwise
        it asks for a figure computed from several measures, which is declined."""
        colon = next((t.index for t in self.tokens if t.text == ":"), None)
        if colon is None:
            return
        end = next(
            (t.index for t in self.tokens[colon:] if t.text in ("?", ";", "!")), len(self.tokens)
        )
        if not {t.lemma for t in self.tokens[colon:end]} & _ARITHMETIC:
            return
        before = [
            d for d in self.definitions
            if d.definition.kind == "measure" and d.end <= colon and colon - d.end <= 3
        ]  # fmt: skip
        inside = [d for d in self.definitions if colon < d.start < end]
        named = measures.get(before[-1].definition.name) if before else None
        parts = [measures.get(d.definition.name) for d in inside if d.definition.kind == "measure"]
        whole = re.sub(r"\s+", "", named.expression.lower()) if named is not None else ""
        if (
            named is None
            or not parts
            or any(
                p is None
                or p.name == named.name
                or re.sub(r"\s+", "", p.expression.lower()) not in whole
                for p in parts
            )
        ):
            self._combined_figure(colon=colon)
            raise self.decline("a figure computed from several measures is not supported")
        for d in inside:
            self.definitions.remove(d)
        self.cues = [c for c in self.cues if not colon < c.start < end]
        for k, m in enumerate(self.mentions):
            if colon < m.start < end:
                m.kind = "spent"  # read as part of the measure, not as a link
                self._use(k)
        self.used_tokens.update(range(colon, end))
        self.intent.explained = self.intent.explained | frozenset(range(colon, end))

    def _measure_dates_a_bucket(self, measures: dict[str, LayerMeasure]) -> None:
        """ "for each sign-up year", "per churn month": a measure's name before a unit of
        time is the time bucket of the date it is dated by, not the measure itself."""
        for d in list(self.definitions):
            named = measures.get(d.definition.name)
            if named is None or not named.time_column or d.end >= len(self.tokens):
                continue
            unit = _TIME_UNITS.get(self.tokens[d.end].lemma)
            group = next(
                (c for c in self.cues if c.kind in ("group", "by") and c.end == d.start), None
            )
            table, _, column = named.time_column.partition(".")
            col = self.index.column(table, column) if table.lower() in self.index.tables else None
            if unit is None or group is None or col is None:
                continue
            self.definitions.remove(d)
            self.cues.remove(group)
            self.cues = sorted(
                [*self.cues, Cue("bucket", group.start, d.end + 1, unit)], key=lambda c: c.start
            )
            self.used_tokens.update(range(group.start, d.end + 1))
            self.time_preference.insert(0, col)
            self.note("grouping", f"{unit} of {named.name}")

    def _definition_columns(self, name: str, kind: str) -> set[ColumnRef]:
        layer = self.index.semantic
        if layer is None:
            return set()
        if kind == "filter":
            fragments = [f.condition for f in layer.filters if f.name == name]
        else:
            fragments = [m.expression for m in layer.measures if m.name == name]
        return {c for sql in fragments for c in self._fragment_columns(sql)}

    def _use_state_adverbs(self, pos: int) -> None:
        for t in self.tokens[max(0, pos - 2) : pos]:
            if t.lemma in _STATE_ADVERBS:
                self._use_token(t)

    def _drop_exclusion_links(self) -> None:
        """ "leaving out anyone who has churned": the exclusion's words are not schema words
        ("leaving" is no `left_on`); dropped before any link is given a role."""
        if self.used:
            return
        words: set[int] = set()
        for d in self.definitions:
            if d.definition.kind == "filter":
                words |= self._exclusion_before(d.start) or set()
        self.mentions = [
            m for m in self.mentions
            if m.kind == "table" or not set(range(m.start, m.end)) <= words
        ]  # fmt: skip

    def _exclusion_before(self, pos: int) -> set[int] | None:
        """The tokens of "leaving out anyone who has", "excluding those", "except the
        ones" right before a named filter at `pos`: the segment is taken out, not kept."""
        for start in range(max(0, pos - 6), pos):
            words = [t.lemma for t in self.tokens[start:pos]]
            for phrase in _EXCLUSIONS:
                n = len(phrase)
                if tuple(words[:n]) != phrase:
                    continue
                rest = self.tokens[start + n : pos]
                if all(
                    t.kind == "word" and (t.lemma in STOP_WORDS or t.lemma in _ANYONE) for t in rest
                ):
                    return set(range(start, pos))
        return None

    def _add_condition(self, name: str, sql: str, *, negated: bool, pos: int) -> None:
        text = _negation(sql) if negated else sql
        if any(c.sql == text for c in self.intent.conditions):
            return
        tables = self._fragment_tables(sql)
        said = f"not {name}" if negated else name
        self.intent.conditions.append(Condition(said, text, tables, pos))

    def _fragment_columns(self, sql: str) -> list[ColumnRef]:
        try:
            tree = sqlglot.parse_one(sql)
        except sqlglot.errors.ParseError:
            return []
        out: list[ColumnRef] = []
        for col in tree.find_all(exp.Column):
            if col.table and col.table.lower() in self.index.tables:
                ref = self.index.column(col.table, col.name)
                if ref is not None and ref not in out:
                    out.append(ref)
        return out

    def _fragment_tables(self, sql: str) -> list[str]:
        """The schema's tables a layer fragment's `table.column` references name."""
        try:
            tree = sqlglot.parse_one(sql)
        except sqlglot.errors.ParseError:
            return []
        out: list[str] = []
        for col in tree.find_all(exp.Column):
            ref = self.index.tables.get(col.table.lower()) if col.table else None
            if ref is not None and ref.name not in out:
                out.append(ref.name)
        return out


def _average_adjective(tokens: list[Token], pos: int) -> tuple[int, int, str] | None:
    """Where "above-average" / "below average" (also "higher-than-average") stands before
    `pos`, with its comparison: (first token, token after it, operator)."""
    for tok in tokens[:pos]:
        word = tok.lemma
        if word in _AVERAGE_WORDS:
            return tok.index, tok.index + 1, _AVERAGE_WORDS[word]
        nxt = tokens[tok.index + 1] if tok.index + 1 < pos else None
        if word in _SIDES and nxt is not None and nxt.lemma == "average":
            return tok.index, tok.index + 2, _SIDES[word]
    return None


def _label(name: str) -> str:
    """The output label of a layer measure: its name in lower case, words joined by `_`."""
    return re.sub(r"\W+", "_", name.lower()).strip("_")


def _tests_unset(sql: str) -> bool:
    """Whether a fragment is `column IS NULL`: the rows that have no such value."""
    try:
        tree = sqlglot.parse_one(sql)
    except sqlglot.errors.ParseError:
        return False
    return isinstance(tree, exp.Is) and isinstance(tree.expression, exp.Null)


def _same_test(a: str, b: str) -> bool:
    """Whether two boolean fragments say the same (`NOT x IS NULL` and `x IS NOT NULL`)."""

    def bare(node: exp.Expr) -> exp.Expr:
        return node.this if isinstance(node, exp.Paren) else node

    try:
        first, second = sqlglot.parse_one(a), sqlglot.parse_one(b)
    except sqlglot.errors.ParseError:
        return a.strip() == b.strip()
    return bool(first.transform(bare).sql() == second.transform(bare).sql())


def _negation(sql: str) -> str:
    """NOT of a fragment, without a double negation ("not churned" of `churned_at IS NOT
    NULL` is `churned_at IS NULL`)."""
    try:
        tree = sqlglot.parse_one(sql)
    except sqlglot.errors.ParseError:
        return f"NOT ({sql})"
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, exp.Not):
        return str(tree.this.sql())
    return f"NOT ({sql})"
