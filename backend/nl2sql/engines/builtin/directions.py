"""Orders said as a range of extremes: "from least to greatest", "from the highest to the lowest".

Two superlatives of opposite directions joined as "from X to Y" name no row to pick: they say
in which direction rows are listed, the first one first ("from least to greatest" is
ascending). The two superlative cues become one direction cue over the whole phrase, as "in
ascending order" gives, so the ranking passes do not look for what "least" or "greatest"
refers to. Phrases whose ends point the same way ("from the highest to the highest") or that
are not superlatives are left alone.

"the most often", "most frequently", "the fewest times" after a verb of occurring ("which type
code appears the most often", "the film rented most frequently") rank by how many rows there
are, as "the most common" does: the superlative becomes a ranking by count over the whole
phrase (with the verb of occurring, which adds nothing else).

"in the range of 8000 and 12000", "within the range 7000 to 12000", "in the range from 5 to
9": bounds of a range of numbers, read as "between" reads them (both included).
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


_FREQUENCY_ADVERBS = frozenset({"often", "frequently", "commonly", "times"})
_OCCURRING = frozenset({"appear", "occur", "show", "come", "feature", "happen", "recur"})
_BY_COUNT = {"desc": "count_desc", "asc": "count_asc"}


def read_frequency_adverbs(tokens: list[Token], cues: list[Cue]) -> tuple[list[Cue], set[int]]:
    """`cues` with "most/least often" made a ranking by count, and the tokens of a verb of
    occurring right before it (read: the count expresses it); see the module's note."""
    out: list[Cue] = []
    spent: set[int] = set()
    for cue in cues:
        after = cue.end
        if (
            cue.kind != "super"
            or cue.payload not in _BY_COUNT
            or tokens[cue.start].lemma not in ("most", "least", "fewest")
            or after >= len(tokens)
            or tokens[after].lemma not in _FREQUENCY_ADVERBS
        ):
            out.append(cue)
            continue
        start = (
            cue.start - 1 if cue.start > 0 and tokens[cue.start - 1].lemma == "the" else cue.start
        )
        out.append(Cue("super", start, after + 1, _BY_COUNT[cue.payload]))
        verb = start - 1
        if verb >= 0 and tokens[verb].lemma in _OCCURRING:
            spent.add(verb)
    return out, spent


_RANGE_LEADS = frozenset({"in", "within", "inside"})
_RANGE_FILLERS = frozenset({"the", "a", "of", "from"})


def read_number_ranges(tokens: list[Token], cues: list[Cue]) -> list[Cue]:
    """`cues` with a `between` comparison for each "in the range of N and M" (see the module's
    note); the phrase up to the first number is the cue, the numbers are its values."""
    taken = {i for c in cues for i in range(c.start, c.end)}
    out = list(cues)
    for i, tok in enumerate(tokens):
        if tok.lemma not in _RANGE_LEADS or i in taken:
            continue
        at = i + 1
        while at < len(tokens) and tokens[at].lemma in _RANGE_FILLERS:
            at += 1
        if at >= len(tokens) or tokens[at].lemma != "range":
            continue
        at += 1
        while at < len(tokens) and tokens[at].lemma in _RANGE_FILLERS:
            at += 1
        if at + 2 >= len(tokens) or taken & set(range(i, at + 3)):
            continue
        low, joint, high = tokens[at], tokens[at + 1], tokens[at + 2]
        if low.kind == "number" and joint.lemma in ("and", "to") and high.kind == "number":
            out.append(Cue("cmp", i, at, "between"))
    return sorted(out, key=lambda c: c.start)
