"""Both, either and "but not both" over a list of values of a related table.

* "both A and B", "A and B at the same time": a related row for each value (`values.py`
  reads these into one EXISTS per value); two "=" readings of one column ("in the billing and
  the outage categories") are first taken as one list.
* "A or B but not both": rows related to exactly one of the values (the list as a filter,
  grouped per row, HAVING COUNT(DISTINCT column) = 1).
* "either A or B": the list itself.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.intents import Filter, Literal, Measure
from backend.nl2sql.engines.builtin.linking import ColumnRef
from backend.nl2sql.engines.builtin.ranks import RankReading


class SetReading(RankReading):
    """Passes over lists of values: both, either, exactly one of them."""

    def _both(self) -> None:
        if any(c.kind == "both" for c in self.cues):
            self._one_list_of_values()
        super()._both()

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

    @staticmethod
    def _listed(f: Filter) -> bool:
        return isinstance(f.column, ColumnRef) and f.op == "in" and len(f.values) >= 2

    def _sets(self) -> None:
        """ "either A or B", "A or B but not both" (see the module's note)."""
        for cue in list(self.cues):
            if cue.kind not in ("either", "xor"):
                continue
            lists = [f for f in self.intent.filters if self._listed(f)]
            if len(lists) != 1:
                what = "either" if cue.kind == "either" else "not both"
                raise self.decline(f"could not tell which values '{what}' refers to")
            self.used_tokens.update(range(cue.start, cue.end))
            self.cues.remove(cue)
            if cue.kind == "either":
                continue
            flt = lists[0]
            col = flt.column
            assert isinstance(col, ColumnRef)
            focus = self.intent.table
            if col.table.lower() == focus.lower():
                continue  # a row holds one value of its own column: the list is the answer
            if not self.index.join_path(focus, col.table):
                raise self.decline(f"{focus} and {col.table} are not related")
            exactly_one = Filter(Measure(col, "COUNT", distinct=True), "=", [1])
            self.intent.having.append(exactly_one)
            self.note("having", f"exactly one of {flt.values} ({col.name})")
