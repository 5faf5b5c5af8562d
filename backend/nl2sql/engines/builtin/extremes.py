"""Superlatives coordinated with other aggregate words over one figure: "the highest, lowest
and average GPA for every department", "the greatest and average capacity of rooms in each
building", "the highest and lowest weights", "the average and longest duration". The
superlatives there are the figure's MAX and MIN, shown like the average beside them (per group
when the question names groups), not a ranking of rows by the figure."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Measure
from backend.nl2sql.engines.builtin.products import ProductReading
from backend.nl2sql.engines.builtin.reading import is_key

_PLAIN_EXTREMES = frozenset({"desc", "asc", "length_desc", "length_asc"})
"""Superlative payloads that say only "higher" or "lower" (not "most common", "latest")."""
_FIGURE_AGGREGATES = frozenset({"AVG", "SUM", "MIN", "MAX"})
_LINKS = frozenset({"and", "or", "the", "also"})
_ROW_PICKS = frozenset({"with", "has", "have", "had", "having", "whose", "get", "got"})
"""Words before a superlative that make it pick rows ("the dog with the highest and lowest
weight"): the rows at both ends, not the figures."""


_FREQUENCY_VERBS = frozenset({"appear", "appears", "occur", "occurs", "feature", "features"})
"""Verbs that, like a participle ("used", "played"), say how often a value is found."""


class CoordinatedExtremeReading(ProductReading):
    """Pass helper: a superlative in a list of aggregate words that share the figure after
    the list reads as the figure's MAX or MIN."""

    def _coordinated_extreme(self, cue: Cue) -> Measure | None:
        """The MAX/MIN a superlative in "<agg>, <agg> and <agg> <figure>" stands for, or None
        when the superlative is not one of two or more such words sharing one numeric figure."""
        if cue.payload not in _PLAIN_EXTREMES or self.limit is not None or self.top_mode:
            return None
        chain = [cue]
        pos = cue.start
        while True:  # members before: "the average and highest weight"
            prev = self._member_ending_at(pos)
            if prev is None:
                break
            chain.insert(0, prev)
            pos = prev.start
        pos = cue.end
        while True:  # members after: "the highest, lowest and average weight"
            nxt = self._member_starting_after(pos)
            if nxt is None:
                break
            chain.append(nxt)
            pos = nxt.end
        if len(chain) < 2 or self._picks_rows(chain[0].start):
            return None
        tail = chain[-1].end
        while tail < len(self.tokens) and self.tokens[tail].lemma in ("the",):
            tail += 1
        k = next((k for k, m in enumerate(self.mentions) if m.start == tail), None)
        if k is None or self.mentions[k].kind != "column":
            return None
        col = self.column_of(k)
        if col is None or col.kind != "numeric":
            return None
        self._use(k)
        return Measure(col, "MIN" if cue.payload.endswith("asc") else "MAX")

    def _counted_by_a_verb(self, cue: Cue) -> tuple[Measure, bool] | None:
        """ "What instrument is used the most?", "which genre appears the least": a verb then
        "the most/least" ending the clause ranks the values of the column asked about by how
        many rows hold them. Only when a value column (not a key) is asked about and no table's
        rows are named (ranking named rows by an action is `ranks_by_action`'s reading)."""
        if cue.payload not in ("desc", "asc") or cue.end - cue.start != 1:
            return None
        if cue.end < len(self.tokens) and self.tokens[cue.end].kind != "punct":
            return None
        k = cue.start - 1
        if k >= 0 and self.tokens[k].lemma == "the":
            k -= 1
        if k < 0 or self.tokens[k].kind != "word":
            return None
        verb = self.tokens[k].text.lower()
        if not (verb.endswith("ed") or verb in _FREQUENCY_VERBS):
            return None
        if any(m.start <= k < m.end for m in self.mentions):
            return None  # a linked verb ("billed"): a related table's action
        if any(m.kind == "table" for m in self.mentions):
            return None
        asked = [
            self.column_of(j)
            for j, m in enumerate(self.mentions)
            if m.kind == "column" and m.end <= k
        ]
        if not asked or any(c is None or is_key(c) for c in asked):
            return None
        return Measure(None, "COUNT", count_table=self.intent.table), cue.payload == "desc"

    def _decline_opposite_ranks(self) -> None:
        """ "the duration of the longest and shortest tracks": one figure ranked both ways at
        once has no first row; the two ends are two answers (or its MAX and MIN)."""
        seen: dict[tuple[str, str, str | None], bool] = {}
        for _pos, measure, desc in self.order_keys:
            if measure.column is None:
                continue
            key = (measure.column.table.lower(), measure.column.name.lower(), measure.agg)
            if key in seen and seen[key] != desc:
                name = measure.column.name
                raise self.decline(
                    f"the highest and the lowest {name} were asked for at once: ask for the "
                    f"maximum and minimum {name}, or for each end separately"
                )
            seen[key] = desc

    def _picks_rows(self, start: int) -> bool:
        first = next((t for t in self.tokens if t.kind == "word"), None)
        if first is not None and first.lemma in ("which", "who", "whose"):
            return True
        k = start - 1
        while k >= 0 and self.tokens[k].lemma == "the":
            k -= 1
        return k >= 0 and self.tokens[k].lemma in _ROW_PICKS

    def _is_member(self, c: Cue) -> bool:
        return (c.kind == "super" and c.payload in _PLAIN_EXTREMES) or (
            c.kind == "agg" and c.payload in _FIGURE_AGGREGATES
        )

    def _member_starting_after(self, pos: int) -> Cue | None:
        k = pos
        linked = False
        while k < len(self.tokens) and (
            (self.tokens[k].kind == "punct" and self.tokens[k].text == ",")
            or self.tokens[k].lemma in _LINKS
        ):
            k += 1
            linked = True
        if not linked:
            return None
        return next((c for c in self.cues if c.start == k and self._is_member(c)), None)

    def _member_ending_at(self, pos: int) -> Cue | None:
        k = pos - 1
        linked = False
        while k >= 0 and (
            (self.tokens[k].kind == "punct" and self.tokens[k].text == ",")
            or self.tokens[k].lemma in _LINKS
        ):
            k -= 1
            linked = True
        if not linked:
            return None
        return next((c for c in self.cues if c.end == k + 1 and self._is_member(c)), None)
