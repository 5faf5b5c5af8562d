"""Orders said as a range of extremes: "from least to greatest", "from the highest to the lowest".

Two superlatives of opposite directions joined as "from X to Y" name no row to pick: they say
in which direction rows are listed, the first one first ("from least to greatest" is
ascending). The two superlative cues become one direction cue over the whole phrase, as "in
ascending order" gives, so the ranking passes do not look for what "least" or "greatest"
refers to. Phrases whose ends point the same way ("from the highest to the highest") or that
are not superlatives are left alone.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.cues import Cue
from backend.nl2sql.engines.builtin.lexicon import Token

_DIRECTIONS = frozenset({"asc", "desc"})
_ARTICLES = frozenset({"the"})


def _skip_articles(tokens: list[Token], i: int) -> int:
    while i < len(tokens) and tokens[i].lemma in _ARTICLES:
        i += 1
    return i


def read_direction_ranges(tokens: list[Token], cues: list[Cue]) -> list[Cue]:
    """`cues` with each "from <superlative> to <superlative>" of opposite directions made one
    `dir` cue (see the module's note)."""
    supers = {c.start: c for c in cues if c.kind == "super" and c.payload in _DIRECTIONS}
    out = list(cues)
    for start, first in supers.items():
        lead = start - 1
        while lead >= 0 and tokens[lead].lemma in _ARTICLES:
            lead -= 1
        if lead < 0 or tokens[lead].lemma != "from":
            continue
        to = first.end
        if to >= len(tokens) or tokens[to].lemma != "to":
            continue
        second = supers.get(_skip_articles(tokens, to + 1))
        if second is None or second.payload == first.payload:
            continue
        if any(c.kind != "super" and lead <= c.start < second.end for c in out):
            continue  # the span is read some other way already
        out = [c for c in out if c is not first and c is not second]
        out.append(Cue("dir", lead, second.end, first.payload))
    return sorted(out, key=lambda c: c.start)
