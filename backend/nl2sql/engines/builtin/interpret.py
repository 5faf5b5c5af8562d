"""Question -> interpretation: which table a question is about, then the passes that read its
measures, dimensions, filters, time and ranking into an `Intent` (see `reading.py` for the
stages and their order)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.intents import Intent
from backend.nl2sql.engines.builtin.linking import SchemaIndex
from backend.nl2sql.engines.builtin.setops import SetOpsReading


class Interpreter(SetOpsReading):
    """Chooses the focus table and runs the passes in order."""

    def choose_focus(self) -> str:
        owner = self._owner_of_ranked_rows()
        if owner:
            return owner
        for cue in self.cues:
            ranks_by = cue.start > 0 and self.tokens[cue.start - 1].lemma in ("by", "of")
            if cue.kind in ("count", "share") and not ranks_by:
                k = self.mention_after(cue.end, max_gap=2, kinds=("table",))
                if k is not None:
                    table = self.table_of(k)
                    if table:
                        return table
        negated = {c.end for c in self.cues if c.kind == "neg"}
        named = {(d.start, d.end) for d in self.definitions if d.end - d.start == 1}
        for k, m in sorted(
            enumerate(self.mentions), key=lambda km: (km[1].start, km[1].end) in named
        ):  # a table the question names outranks a one-word named filter's table ("paid")
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
        for d in self.definitions:
            if d.definition.table.lower() in self.index.tables:
                return self.index.table(d.definition.table).name  # "revenue by quarter"
        for m in self.mentions:
            if m.columns:
                tables = {c.table for c in m.columns}
                if len(tables) == 1:
                    return m.columns[0].table
        for m in self.mentions:
            if m.columns:
                return m.columns[0].table
        return ""

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
        self._override_with_refinement()
        self._valid_on_day()
        self._event_gaps()
        self._definitions()
        self._periods()
        self._relative_times()
        self._cadences()
        self._event_bucket_dates()
        self._rating_scales()
        self._durations()
        self._elapsed_times()
        self._comparisons()
        self._counts_and_aggregates()
        self._ordinal_ranks()
        self._top_and_superlatives()
        self._ranked_rows()
        self._grouping_and_order()
        self._null_states()
        self._negations()
        self._values()
        self._leftover_literals()
        self._aggregate_scopes()
        self._both()
        self._sets()
        self._state_shared_by_the_negated_side()
        self._flag_columns()
        self._projection()
        intent = self._finish()
        self._apply_rank(intent)
        self._apply_best_per_group(intent)
        self._group_by_shown(intent)
        self._count_groups(intent)
        self._rows_asked_for_kept(intent)
        if intent.count_groups or intent.partition_by or self.shared_by_rows:
            intent.signals = self._signals(intent)  # read on the query's final shape
        return intent


def parse(question: str, index: SchemaIndex, *, refinement_from: list[int] | None = None) -> Intent:
    """Read `question` into an `Intent`; raises `QuestionNotUnderstood`.

    `refinement_from` lists token positions where follow-ups start: what a later part says
    about a slot (a value's column, the grouping, the time range, the ranking) replaces what
    an earlier part said.
    """
    return Interpreter(question, index, refinement_from or []).build()
