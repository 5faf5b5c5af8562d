"""Values joined by "and" on rows that have many related rows: each of them, not either.

"students allergic to milk and cats", "the professor teaching CIS-220 and QM-261", "drivers who
drove trains of the Pacer and the Voyager models": the values belong to a column of a table the
rows reach through a one-to-many path (a student has many allergies), and "and" between them
asks for rows related to each value: one EXISTS per value, as "both" says (the reading
`values.py` gives "both"). A list of values joined by "and" on the rows' own column, or on a
table they reach one-to-one ("orders of customers in France and Germany"), stays a list: one
row holds one value, so "and" there can only mean either.

Not read this way (the list is left as it is): "or" anywhere between the values, a negation
before them ("not allergic to milk and cats": which of the readings is meant is unclear, so the
negation pass's reading is kept), values that ask for a figure each ("the average age of male
and female students" groups by them).

"either A or B" where A and B are stored values of one column ("living in either HKG or CHI",
"allergic either to milk or to cats") is that column's list of values, as "A or B" is: the
"either" only stresses the choice. Any other "either" (two conditions on different columns,
"either made after 2000 or directed by X"; "either" without its "or"; a negation before it)
stays declined as not supported.
"""

from __future__ import annotations

import re

from backend.nl2sql.engines.builtin.count_columns import read_count_columns
from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.directions import (
    read_direction_ranges,
    read_frequency_adverbs,
    read_number_ranges,
)
from backend.nl2sql.engines.builtin.intents import Filter, Measure
from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex
from backend.nl2sql.engines.builtin.sets import SetReading

_BETWEEN_VALUES = frozenset({"or", "to", "the", "a", "an", "in", "from", "of", "with", "by"})
"""Words that may stand between "either" and a value, and between the values ("either to milk
or to cats"); exactly one "or" among them joins the values."""
_IMPERATIVE_OBJECTS = frozenset(
    {"the", "a", "an", "their", "them", "its", "it", "his", "her", "all", "each", "every", "these",
     "those", "this", "that", "me", "us", "we"}
)  # fmt: skip
"""Words after an imperative verb opening a sentence ("Sort the", "Give me", "Print their")."""
_SORT_VERBS = frozenset({"sort", "order", "arrange", "rank"})
"""Imperatives that make a sentence naming what by ("Sort the list by price") an order."""
_NEGATIONS = frozenset({"not", "no", "never", "without", "nor", "neither", "n't", "none"})


class SetOpsReading(SetReading):
    """The "and" of values on a to-many path read as "both" (see the module's note)."""

    def __init__(self, question: str, index: SchemaIndex, refinement_from: list[int]) -> None:
        super().__init__(question, index, refinement_from)
        self.cues = read_direction_ranges(self.tokens, self.cues)
        self.cues = read_number_ranges(self.tokens, self.cues)
        self._sort_sentences()
        self.cues, occurring = read_frequency_adverbs(self.tokens, self.cues)
        self.used_tokens |= occurring
        self.cues, spent, notes = read_count_columns(self.tokens, self.cues, self.mentions)
        self.used_tokens |= spent
        for note in notes:
            self.note("measures", note)
        self.either_values: list[tuple[Cue, set[ColumnRef]]] = []
        """"either" cues before two values of one column, with the columns they may be of:
        read as that column's list when the rows hold the column one value each (`_both`)."""
        for c in self.cues:
            columns = self._either_of_values(c)
            if columns:
                c.kind = "either"
                self.either_values.append((c, columns))

    def _opens_a_sentence(self, tok: Token) -> bool:
        """Whether a capitalised word opens a later sentence and a determiner or pronoun
        follows it: an imperative verb ("Sort the list", "Print their ages")."""
        at = tok.index
        if not (0 < at < len(self.tokens) - 1 and tok.is_capitalised):
            return False
        nxt = self.tokens[at + 1]
        if nxt.lemma not in _IMPERATIVE_OBJECTS:
            return False
        opening = rf"[.?!;]\s+{re.escape(tok.text)}\s+{re.escape(nxt.text)}\b"
        return re.search(opening, self.question) is not None  # (the tokens keep no full stops)

    def _sort_sentences(self) -> None:
        """ "... Sort the list by their price.", "Order the countries by ...": a sentence that
        opens with a verb of sorting and names what by is an order, as "sorted by" is."""
        for tok in self.tokens:
            if tok.lemma not in _SORT_VERBS or not self._opens_a_sentence(tok):
                continue
            by = next(
                (c for c in self.cues
                 if c.kind == "by" and tok.index < c.start <= tok.index + 5),
                None,
            )  # fmt: skip
            if by is None or any(
                c.kind not in ("by",) and tok.index <= c.start < by.end for c in self.cues
            ):
                continue
            self.cues = [c for c in self.cues if c is not by]
            self.cues.append(Cue("order", tok.index, by.end, ""))
            self.cues.sort(key=lambda c: c.start)

    def _is_unknown_name(self, tok: Token) -> bool:
        """A capitalised word opening a later sentence and followed by a determiner or a
        pronoun ("... a king bed. Sort the list by price.", "Report the number for each decor
        type", "Print their ages") is an imperative verb, as the question's first word is,
        not a name the database should hold."""
        return not self._opens_a_sentence(tok) and super()._is_unknown_name(tok)

    def _superlative_target(self, cue: Cue) -> tuple[Measure, bool] | None:
        """ "the most recent movie", "the newest album", "the oldest film" on rows dated by a
        year number and no date: the year is what "recent" or "old" ranks by (the latest year
        first for "recent", the earliest for "oldest")."""
        target = super()._superlative_target(cue)
        if target is not None or not (
            cue.payload.startswith("date") or cue.payload in ("oldest", "youngest")
        ):
            return target
        if self.intent.table and self.date_column([self.intent.table]) is not None:
            return None  # dated rows whose date the ranking could not settle
        if any(c.kind == "cmp" and c.end <= cue.start and self.gap(c.end, cue.start) <= 1
               for c in self.cues):  # fmt: skip
            return None  # "after the most recent X": a comparison with it, not a ranking
        year = self.year_column([self.intent.table] if self.intent.table else [])
        if year is None or year.kind != "numeric":
            return None
        if cue.payload in ("oldest", "youngest"):
            return Measure(year), cue.payload == "youngest"
        return Measure(year), not cue.payload.endswith("asc")

    def _either_of_values(self, cue: Cue) -> set[ColumnRef]:
        """The columns both values may be of, when an "either" cue only stresses a choice
        between stored values of one column ("either HKG or CHI"); empty otherwise."""
        if cue.kind != "unsupported" or cue.payload != "either":
            return set()
        before = {t.lemma for t in self.tokens[max(0, cue.start - 4) : cue.start]}
        if before & _NEGATIONS or any(c.kind == "neg" and c.end <= cue.start for c in self.cues):
            return set()  # "not allergic to either": which of the readings is meant is unclear
        values = [m for m in self.mentions if m.start >= cue.end]
        if len(values) < 2 or any(m.kind != "value" for m in values[:2]):
            return set()
        first, second = values[0], values[1]
        gaps = (self.tokens[cue.end : first.start], self.tokens[first.end : second.start])
        if any(t.lemma not in _BETWEEN_VALUES for gap in gaps for t in gap):
            return set()
        if [t.lemma for t in gaps[0]].count("or") or [t.lemma for t in gaps[1]].count("or") != 1:
            return set()
        rest = self.tokens[second.end :]
        if rest and rest[0].lemma == "or":
            return set()  # "either A or B or C ...": a longer choice than is read here
        # values of different columns (none shared): two conditions, not one list
        return set(first.columns) & set(second.columns)

    def _both(self) -> None:
        self._either_as_a_list()
        if not any(c.kind in ("both", "xor") for c in self.cues):
            self._each_of_values_joined_by_and()
        super()._both()

    def _either_as_a_list(self) -> None:
        """An "either" before two values stands for their list when the values pass read them
        as one column's list and each row holds one value of that column (its own column or
        one reached one-to-one). On rows with many related values ("physicians affiliated
        with either Surgery or Psychiatry") "either" may also mean exactly one of them:
        declined as before."""
        for cue, columns in self.either_values:
            listed = [
                f for f in self.intent.filters
                if isinstance(f.column, ColumnRef) and f.column in columns and f.op == "in"
            ]  # fmt: skip
            col = listed[0].column if len(listed) == 1 else None
            if not isinstance(col, ColumnRef) or self._to_many(col.table):
                raise self.decline("questions involving 'either' are not supported")
            self.used_tokens.update(range(cue.start, cue.end))
            self.note("filters", f"'either' between two values of {col.table}.{col.name}")

    def _each_of_values_joined_by_and(self) -> None:
        listed = [
            f for f in self.intent.filters
            if isinstance(f.column, ColumnRef) and f.op == "in" and len(f.values) >= 2
        ]  # fmt: skip
        if len(listed) != 1:
            return
        flt = listed[0]
        col = flt.column
        if not isinstance(col, ColumnRef) or not self._to_many(col.table):
            return
        if any(g.column == col for _, g in self.group_keys):
            return  # "for male and female students": a figure for each value
        joint = self._joined_by_and(flt, col)
        if joint is None:
            return
        self.cues.append(Cue("both", joint, joint, "and"))
        self.cues.sort(key=lambda c: c.start)
        self.note("both", f"'and' between values of {col.table}, which each row has many of")

    def _to_many(self, table: str) -> bool:
        """Whether the focus rows reach `table` through a step to rows that are not unique
        per row (a student to their allergies), so one row can be related to several
        values."""
        focus = self.intent.table
        if not focus or table.lower() == focus.lower():
            return False
        path = self.index.join_path(focus, table, preferred=self.intent.preferred_tables)
        if not path:
            return False
        for _, _, to_table, to_col in path:
            pk = self.index.table(to_table).primary_key
            if pk is None or pk.name.lower() != to_col.lower():
                return True
        return False

    def _joined_by_and(self, flt: Filter, col: ColumnRef) -> int | None:
        """Where the "and" between the list's values stands, when only "and" and punctuation
        join them and no negation or "either" comes before the first."""
        spans = [
            m for m in self.mentions
            if m.kind == "value" and col in m.columns and (m.value or m.text) in flt.values
        ]  # fmt: skip
        if len(spans) != len(flt.values):
            return None
        spans.sort(key=lambda m: m.start)
        joint: int | None = None
        for a, b in zip(spans, spans[1:], strict=False):
            between = self.tokens[a.end : b.start]
            words = {t.lemma for t in between if t.kind == "word"}
            if not words <= {"and", "the", "a", "an"} or "and" not in words:
                return None
            joint = next(t.index for t in between if t.lemma == "and")
        first = spans[0].start
        before = {t.lemma for t in self.tokens[max(0, first - 6) : first]}
        if before & {"either", "not", "no", "never", "without", "nor", "neither"}:
            return None
        if any(c.kind == "neg" and c.end <= first for c in self.cues):
            return None
        return joint
