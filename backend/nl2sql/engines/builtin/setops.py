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
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.sets import SetReading


class SetOpsReading(SetReading):
    """The "and" of values on a to-many path read as "both" (see the module's note)."""

    def _both(self) -> None:
        if not any(c.kind in ("both", "xor") for c in self.cues):
            self._each_of_values_joined_by_and()
        super()._both()

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
