"""Both and "but not both" over a list of values of a related table.

* "both A and B", "A and B at the same time": a related row for each value (`values.py`
  reads these into one EXISTS per value); two "=" readings of one column ("in the billing and
  the outage categories") are first taken as one list.
* "A or B but not both": rows related to exactly one of the values (the list as a filter,
  grouped per row, HAVING COUNT(DISTINCT column) = 1).
"""

from __future__ import annotations

import re

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Filter, Intent, Literal, Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.ranks import RankReading
from backend.nl2sql.engines.builtin.reading import is_filler

_ASKING_WORDS = frozenset(
    {"what", "is", "are", "the", "give", "me", "us", "tell", "show", "find", "return", "list",
     "please", "can", "you", "total", "overall", "we"}
)  # fmt: skip
"""Words that may open a question before "how many" / "number of"."""


def _label(name: str) -> str:
    """A layer measure's name as its `Measure.label` reads (see `definitions.py`)."""
    return re.sub(r"\W+", "_", name.lower()).strip("_")


class SetReading(RankReading):
    """Passes over lists of values: both, exactly one of them."""

    shared_by_rows: int = 0
    """ "the title of the course offered by both Statistics and Psychology": how many values
    rows showing the same answer must cover between them (0: not such a question)."""

    def _both(self) -> None:
        cue = next((c for c in self.cues if c.kind == "both"), None)
        if cue is None:
            return
        self._one_list_of_values()
        listed = [f for f in self.intent.filters if self._listed(f)]
        if not listed and self._both_columns(cue):
            return
        if len(listed) == 1 and self._both_on_own_column(cue, listed[0]):
            return
        super()._both()

    def _both_columns(self, cue: Cue) -> bool:
        """ "List both title and id", "return both the codes and the counts": "both" before
        two things to show, not two values to have."""
        k = self.mention_after(cue.end, max_gap=1)
        first = self.mentions[k] if k is not None else None
        counted = any(c.kind in ("count", "agg") and c.start == cue.end for c in self.cues)
        if not counted and (first is None or first.kind != "column"):
            return False
        after = first.end if first is not None and not counted else cue.end + 1
        if not any(t.lemma == "and" for t in self.tokens[after : after + 2]):
            return False
        self.cues.remove(cue)
        self.used_tokens.update(range(cue.start, cue.end))
        return True

    def _both_on_own_column(self, cue: Cue, flt: Filter) -> bool:
        """ "the title of the course offered by both Statistics and Psychology": one row holds
        one value of its own column, so the answer is what the rows show (the title) for rows
        that cover every value between them: the list as a filter, grouped by what is shown,
        HAVING COUNT(DISTINCT column) = the number of values."""
        col = flt.column
        if not isinstance(col, ColumnRef) or col.table.lower() != self.intent.table.lower():
            return False
        self.cues.remove(cue)
        self.used_tokens.update(range(cue.start, cue.end))
        self.shared_by_rows = len(flt.values)
        self.intent.having.append(
            Filter(Measure(col, "COUNT", distinct=True), "=", [len(flt.values)])
        )
        self.note("having", f"each of {flt.values} ({col.name}) among the rows shown alike")
        return True

    def _group_by_shown(self, intent: Intent) -> None:
        """After the assembly: rows of "both" on their own column are grouped by what is
        shown, never by their key (one row never holds both values)."""
        if not self.shared_by_rows:
            return
        shown = [m for m in intent.select if m.agg is None and m.column is not None]
        pk = self.index.table(intent.table).primary_key
        if not shown or any(m.column == pk for m in shown) or intent.order_by:
            raise self.decline("a row has one value of a column, never both")
        intent.group_by = list(shown)
        intent.distinct = False

    def _one_list_of_values(self) -> None:
        """Two or more "=" filters on one column become one list ("tickets in both the billing
        and the outage categories"), when exactly one column has them and no list exists."""
        if any(self._listed(f) for f in self.intent.filters):
            return
        by_column: dict[ColumnRef, list[Filter]] = {}
        for f in self.intent.filters:
            if isinstance(f.column, ColumnRef) and f.op == "=" and len(f.values) == 1:
                by_column.setdefault(f.column, []).append(f)
        repeated = [fs for fs in by_column.values() if len(fs) >= 2]
        if not repeated and len(by_column) == 1:
            self._other_value_of_both(next(iter(by_column.values()))[0])
            return
        if len(repeated) != 1:
            return
        filters = repeated[0]
        values: list[Literal] = []
        for f in filters:
            if f.values[0] not in values:
                values.append(f.values[0])
        if len(values) < 2:
            return
        first = filters[0]
        for f in filters[1:]:
            self.intent.filters.remove(f)
        first.op, first.values = "in", values

    def _other_value_of_both(self, flt: Filter) -> None:
        """ "both upgraded and downgraded their plan", "both the billing and the outage
        categories": one side became the filter, the other was read as something else (a
        layer's measure named "downgrades" or "billing"); when the other side's words are a
        stored value of the filter's column, both sides are that column's values. What the
        other reading made of those words is dropped."""
        col = flt.column
        cue = next((c for c in self.cues if c.kind == "both"), None)
        if cue is None or not isinstance(col, ColumnRef):
            return
        rest = self.tokens[cue.end : cue.end + 8]
        joint = next((t.index for t in rest if t.lemma == "and"), None)
        if joint is None:
            return
        sides = [self.tokens[cue.end : joint], self.tokens[joint + 1 : joint + 5]]
        found: list[tuple[str, range]] = []
        for side in sides:
            words = [t for t in side if t.kind == "word" and not is_filler(t)]
            hit = None
            for n in range(len(words), 0, -1):
                phrase = tuple(t.lemma for t in words[:n])
                stored = [v for c, v in self.index.values.get(phrase, []) if c == col]
                if stored:
                    hit = (stored[0], range(words[0].index, words[n - 1].index + 1))
                    break
            if hit is None:
                return
            found.append(hit)
        values: list[Literal] = [v for v, _ in found]
        if flt.values[0] not in values or len(set(values)) != 2:
            return
        for _, span in found:
            self.used_tokens.update(span)
            dropped = {m.label for at, m in self.measures if at in span and m.label}
            self.measures = [(at, m) for at, m in self.measures if at not in span]
            self.intent.conditions = [
                c for c in self.intent.conditions
                if c.position not in span
                and not (c.position < 0 and _label(c.name) in dropped)
            ]  # fmt: skip
            self.intent.explained = self.intent.explained | frozenset(span)
            for k, m in enumerate(self.mentions):
                if m.start in span:
                    self._use(k)
        flt.op, flt.values = "in", values

    @staticmethod
    def _listed(f: Filter) -> bool:
        return isinstance(f.column, ColumnRef) and f.op == "in" and len(f.values) >= 2

    def _count_groups(self, intent: Intent) -> None:
        """ "How many members have more than 3 loans?": the rows the HAVING keeps are counted,
        not each kept row's own count."""
        counts = [m for m in intent.select if m.agg is not None]
        if not intent.having or len(counts) != 1 or intent.order_by:
            return
        count = counts[0]
        focus = intent.table.lower()
        pk = self.index.table(intent.table).primary_key
        if (
            pk is None
            or count.agg != "COUNT"
            or count.column is not None
            or (count.count_table or focus).lower() != focus
            or not any(g.column == pk for g in intent.group_by)
            or any(
                m.column is None or m.column.table.lower() != focus
                for m in [*intent.group_by, *(m for m in intent.select if m is not count)]
            )
        ):
            return
        if not self._asks_how_many_of(intent.table):
            return
        intent.select = [Measure(pk)]
        intent.count_groups = True
        self.note("aggregates", f"count of the {intent.table} kept")

    def _asks_how_many_of(self, table: str) -> bool:
        """Whether the question opens by asking how many rows of `table` there are ("How many
        customers...", "Count the members..."), not for a figure among others ("the names and
        number of works")."""
        words = [t for t in self.tokens if t.kind == "word"]
        pos = 0
        while pos < len(words) and words[pos].lemma in _ASKING_WORDS:
            pos += 1
        lead = [t.lemma for t in words[pos : pos + 2]]
        if lead == ["how", "many"] or lead == ["number", "of"]:
            pos += 2
        elif lead[:1] == ["count"]:
            pos += 1
        else:
            return False
        if pos >= len(words):
            return False
        start = words[pos].index
        return any(
            m.kind == "table"
            and start <= m.start <= start + 1
            and (self.table_of(k) or "").lower() == table.lower()
            for k, m in enumerate(self.mentions)
        )

    def _sets(self) -> None:
        """ "A or B but not both" (see the module's note)."""
        for cue in list(self.cues):
            if cue.kind != "xor":
                continue
            lists = [f for f in self.intent.filters if self._listed(f)]
            if len(lists) != 1:
                raise self.decline("could not tell which values 'not both' refers to")
            self.used_tokens.update(range(cue.start, cue.end))
            self.cues.remove(cue)
            flt = lists[0]
            col = flt.column
            if not isinstance(col, ColumnRef):
                continue
            focus = self.intent.table
            if col.table.lower() == focus.lower():
                continue  # a row holds one value of its own column: the list is the answer
            if not self.index.join_path(focus, col.table):
                raise self.decline(f"{focus} and {col.table} are not related")
            exactly_one = Filter(Measure(col, "COUNT", distinct=True), "=", [1])
            self.intent.having.append(exactly_one)
            self.note("having", f"exactly one of {flt.values} ({col.name})")
