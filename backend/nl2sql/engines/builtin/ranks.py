"""Ranks other than the first: "the second-highest MRR", "the 3rd largest order", "the fifth
cheapest plan" rank like the superlative and skip the rows ranked before (LIMIT 1 OFFSET n-1)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.ranks_by_action import ActionRankReading

_EACH = frozenset({"each", "every"})

ORDINAL_WORDS = {
    "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10,
}  # fmt: skip
"""Ordinal words that name a rank ("first" is the superlative itself)."""
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})


class RankReading(ActionRankReading):
    """Pass: an ordinal before a superlative becomes the rank's offset."""

    rank: int = 1
    """The rank the question asks for (1: the superlative's own first row)."""
    ranked_at: int = -1
    """Where the superlative that takes the rank starts."""

    best_per_group: bool = False
    """ "In each region, which customer has the most ...": the ranking is taken per group."""

    def _best_within_each_group(self, cue: Cue) -> bool:
        """Only "which <rows> has the most ..." with the rows the question is about: a listing
        "in order by their highest" or "the title of the movie with the smallest rating" is
        something else."""
        if self.rank != 1:
            return False
        focus = self.intent.table.lower()
        asked = any(
            m.kind == "table"
            and m.end <= cue.start
            and m.start > 0
            and self.tokens[m.start - 1].lemma == "which"
            and (self.table_of(k) or "").lower() == focus
            for k, m in enumerate(self.mentions)
        )
        if not asked:
            return False
        self.best_per_group = True
        return True

    def _ordinal_ranks(self) -> None:
        for cue in self.cues:
            if cue.kind != "super" or cue.start == 0:
                continue
            found = self._ordinal_before(cue.start)
            if found is None:
                continue
            rank, words = found
            if self.rank != 1 and self.rank != rank:
                raise self.decline("the question asks for two different ranks")
            self.rank = rank
            for tok in words:
                self._use_token(tok)
            for k, m in enumerate(self.mentions):
                if any(m.start <= tok.index < m.end for tok in words):
                    m.kind = "spent"  # "2nd": not a number to compare or an identifier
                    self._use(k)
            self.ranked_at = cue.start
            self.note("order", f"rank {rank}")

    def _ranked_rows(self) -> None:
        """After the superlatives: "the second highest salary" read as MAX(salary) is the
        salary of the row ranked second instead (shown, ordered, one row)."""
        self._ranked_figure_asked()
        if self.rank == 1:
            return
        for pos, m in list(self.measures):
            if pos != self.ranked_at or m.agg not in ("MAX", "MIN") or m.column is None:
                continue
            self.measures.remove((pos, m))
            shown = Measure(m.column)
            self.projection.append((pos, shown))
            self.order_keys.append((pos, Measure(m.column), m.agg == "MAX"))
            self.limit = 1

    def _ranked_figure_asked(self) -> None:
        """ "the three wards with the most patients, and how many each", "which nurse gave
        the most treatments, and how many?": the "how many" after a ranking by a count asks
        for that count beside each ranked row, not for a count of the ranked rows
        themselves (one per row)."""
        if self.order_keys or self.top_mode:
            self._spend_each_of_the_figure()
        ranked = [(pos, m) for pos, m, _ in self.order_keys if m.agg is not None]
        if len(ranked) != 1 or not self._also_how_much(0):
            return
        at, figure = ranked[0]
        focus = self.intent.table.lower()
        own_counts = [
            (pos, m)
            for pos, m in self.measures
            if pos > at
            and m.agg == "COUNT"
            and m.column is None
            and m.sql is None
            and (m.count_table or "").lower() == focus
        ]
        if len(own_counts) != 1:
            return
        if figure.agg != "COUNT" or (figure.count_table or "").lower() == focus:
            return  # "how many" of a ranked total, or of the rows ranked: not the same figure
        if not any(
            m.kind == "table" and m.end <= at and (self.table_of(k) or "").lower() == focus
            for k, m in enumerate(self.mentions)
        ):
            return  # the rows ranked are named before the ranking ("the three nurses ...")
        self.measures.remove(own_counts[0])
        self.measures.append((at, figure))
        self.argmax = [m for m in self.argmax if m is not figure]
        self.note("aggregates", "the ranked count, shown")

    def _spend_each_of_the_figure(self) -> None:
        """After a ranking, "how many songs each released", "the number of songs for each":
        the "each" is said of the ranked rows' figure; it groups by nothing."""
        for cue in list(self.cues):
            if (
                cue.kind != "group"
                or not {t.lemma for t in self.tokens[cue.start : cue.end]} & _EACH
            ):
                continue
            if not self._each_of_the_figure(cue):
                continue
            self.cues.remove(cue)
            self.used_tokens.update(range(cue.start, cue.end))
            for k, m in enumerate(self.mentions):
                if m.start == cue.end and self._participle_of_date(m):
                    m.kind = "spent"
                    self._use(k)

    def _ordinal_before(self, pos: int) -> tuple[int, list[Token]] | None:
        """The rank an ordinal right before token `pos` names, with its tokens."""
        tok = self.tokens[pos - 1]
        if tok.index in self.used_tokens:
            return None
        if tok.kind == "word" and tok.lemma in ORDINAL_WORDS:
            return ORDINAL_WORDS[tok.lemma], [tok]
        if tok.lemma in _ORDINAL_SUFFIXES and pos >= 2:
            number = self.tokens[pos - 2]
            if number.kind == "number" and number.index not in self.used_tokens:
                try:
                    rank = int(number.lemma)
                except ValueError:
                    return None
                if rank >= 2:
                    return rank, [number, tok]
        return None

    def _apply_best_per_group(self, intent: Intent) -> None:
        """ "In each genre, which book has the most pages?": the groups the question names
        partition the ranking; each group's first row (ties kept) is shown with its group.
        Ranked by an aggregate ("the most loans"), the rows ranked are the focus rows'
        groups within each partition."""
        each = any(
            c.kind == "group"
            and {t.lemma for t in self.tokens[c.start : c.end]} & _EACH
            and not self._each_of_the_figure(c)
            for c in self.cues
        )
        if not self.best_per_group and not (each and intent.limit and intent.order_by):
            return
        table = self.index.table(intent.table)
        pk = table.primary_key
        labels = self.label_measures(intent.table, key_fallback=True)
        own = {m.column for m in labels} | ({pk} if pk is not None else set())
        keys = [*intent.group_by, *(m for _, m in sorted(self.group_keys, key=lambda x: x[0]))]
        partition: list[Measure] = []
        for g in keys:
            if g.column is None or g.bucket is not None or g.column in own:
                continue
            if not any(p.column == g.column for p in partition):
                partition.append(g)
        named = any(
            m.kind == "table" and (self.table_of(k) or "").lower() == intent.table.lower()
            for k, m in enumerate(self.mentions)
        )  # "top 2 books ... in each genre": the rows ranked are named
        if not partition and not self.best_per_group:
            return  # "..., and how much for each?": no groups named
        if not partition or len(intent.order_by) != 1 or pk is None or not named:
            raise self.decline("the highest or lowest within each group is not supported")
        ranked, _desc = intent.order_by[0]
        intent.select = [*partition, *labels]
        if ranked.agg is not None:
            intent.group_by = [*partition, Measure(pk)]
            for label in labels:
                if label.column != pk:
                    intent.group_by.append(label)
        else:
            intent.group_by = []
        intent.partition_by = partition
        intent.distinct = False
        self.note("order", f"the first {intent.limit} within each group")

    def _apply_rank(self, intent: Intent) -> None:
        """The rank's offset, on a reading that ranks rows and returns one."""
        if self.rank == 1:
            return
        if not intent.order_by or intent.limit != 1:
            raise self.decline(f"could not tell what rank {self.rank} is taken of")
        intent.offset = self.rank - 1
