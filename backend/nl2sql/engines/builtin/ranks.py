"""Ranks other than the first: "the second-highest MRR", "the 3rd largest order", "the fifth
cheapest plan" rank like the superlative and skip the rows ranked before (LIMIT 1 OFFSET n-1)."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.assembly import AssemblyReading
from backend.nl2sql.engines.builtin.intents import Intent, Measure
from backend.nl2sql.engines.builtin.lexicon import Token

ORDINAL_WORDS = {
    "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10,
}  # fmt: skip
"""Ordinal words that name a rank ("first" is the superlative itself)."""
_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})


class RankReading(AssemblyReading):
    """Pass: an ordinal before a superlative becomes the rank's offset."""

    rank: int = 1
    """The rank the question asks for (1: the superlative's own first row)."""
    ranked_at: int = -1
    """Where the superlative that takes the rank starts."""

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

    def _apply_rank(self, intent: Intent) -> None:
        """The rank's offset, on a reading that ranks rows and returns one."""
        if self.rank == 1:
            return
        if not intent.order_by or intent.limit != 1:
            raise self.decline(f"could not tell what rank {self.rank} is taken of")
        intent.offset = self.rank - 1
