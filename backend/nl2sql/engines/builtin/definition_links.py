"""A named filter said as a predicate: "customers that are still active" names the layer's
"active customer" as surely as the phrase itself, once the question's words around it say so.

`linking.link_definitions` finds the phrases as written; this adds the predicate form of a
filter named "<state> <rows>" (or a synonym of that shape): the rows, then a form of "be"
(after "that"/"who"/"which" and before "still", "currently"...), then the state."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.linking import DefinitionMention, SchemaIndex

_COPULAS = frozenset({"is", "are", "was", "were", "be", "been", "being", "remain", "stay"})
_RELATIVES = frozenset({"that", "who", "which"})
_STATE_ADVERBS = frozenset({"still", "currently", "now", "already", "not", "no", "longer"})
_MAX_BETWEEN = 4
"""Words allowed between the rows and the state ("customers that are not still ...")."""


def predicate_filters(
    index: SchemaIndex, tokens: list[Token], taken: set[int]
) -> list[DefinitionMention]:
    """Spans naming a filter "<state> <rows>" in the order "<rows> ... is/are ... <state>":
    the span is the state's words (the rows keep their own link as the table)."""
    out: list[DefinitionMention] = []
    nouns = _row_nouns(index)
    for words, definitions in index.definitions.items():
        filters = [d for d in definitions if d.kind == "filter"]
        if len(words) < 2 or not filters:
            continue
        table = filters[0].table.lower()
        for cut in range(1, len(words)):
            state, rows = words[:cut], words[cut:]
            if rows not in nouns.get(table, set()):
                continue
            for start in range(len(tokens) - len(rows)):
                found = _predicate_at(tokens, start, rows, state)
                if found is None or any(k in taken for k in range(*found)):
                    continue
                text = " ".join(t.text for t in tokens[found[0] : found[1]])
                score = 3.0 * len(words) - 1.0  # below the phrase as written
                out.append(DefinitionMention(found[0], found[1], filters[0], score, text))
                taken.update(range(*found))
    return out


def _row_nouns(index: SchemaIndex) -> dict[str, set[tuple[str, ...]]]:
    """The words for each table's rows: its name's words and the layer's synonyms for it."""
    out: dict[str, set[tuple[str, ...]]] = {}
    for name, ref in index.tables.items():
        out.setdefault(name, set()).add(ref.words)
    for phrase, refs in index.table_synonyms.items():
        for ref in refs:
            out.setdefault(ref.name.lower(), set()).add(phrase)
    return out


def _predicate_at(
    tokens: list[Token], start: int, rows: tuple[str, ...], state: tuple[str, ...]
) -> tuple[int, int] | None:
    """(start, end) of `state` said of `rows` written at `start`, or None."""
    end_rows = start + len(rows)
    if tuple(t.lemma for t in tokens[start:end_rows]) != rows:
        return None
    k = end_rows
    if k < len(tokens) and tokens[k].lemma in _RELATIVES:
        k += 1
    if k >= len(tokens) or tokens[k].lemma not in _COPULAS:
        return None
    k += 1
    between = 0
    while k < len(tokens) and tokens[k].lemma in _STATE_ADVERBS and between < _MAX_BETWEEN:
        k += 1
        between += 1
    end = k + len(state)
    if end > len(tokens) or tuple(t.lemma for t in tokens[k:end]) != state:
        return None
    if any(t.kind != "word" for t in tokens[k:end]):
        return None
    return k, end
