"""A named filter said as a predicate: "customers that are still active" names the layer's
"active customer" as surely as the phrase itself, once the question's words around it say so.

`linking.link_definitions` finds the phrases as written; this adds the predicate form of a
filter named "<state> <rows>" (or a synonym of that shape): the rows, then a form of "be"
(after "that"/"who"/"which" and before "still", "currently"...), then the state."""

from __future__ import annotations

from backend.nl2sql.engines.builtin.lexicon import Token
from backend.nl2sql.engines.builtin.linking import DefinitionMention, Mention, SchemaIndex

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


def stored_value_over_role_synonym(
    index: SchemaIndex,
    tokens: list[Token],
    mentions: list[Mention],
    definitions: list[DefinitionMention],
) -> None:
    """ "Which of our current account managers work remotely?": words the layer gives as a
    synonym of a reference key (`accounts.account_manager_id`, "account manager") that are
    also a value stored in the table the key refers to (`staff.role = 'Account Manager'`).
    The key's reading needs the referring table (accounts); when every other word of the
    question that names a table names the one the key refers to (or none), the value's
    reading covers the question with fewer tables, so the words are read as the value (the
    rows in that role). The key's reading stays where another table is named ("account
    managers with customers in ...", "account managers by MRR": the accounts, or rows
    reached through them)."""
    if index.semantic is None:
        return
    for m in mentions:
        if m.kind != "column" or len(m.columns) != 1:
            continue
        phrase = tuple(t.lemma for t in tokens[m.start : m.end])
        key = m.columns[0]
        if key not in index.column_synonyms.get(phrase, []):
            continue
        target = index.referred_row(key)
        if target is None or target[0].lower() == key.table.lower():
            continue
        stored = [(c, v) for c, v in index.values.get(phrase, []) if c.table == target[0]]
        if len(stored) != 1:
            continue
        others = _tables_named(m, mentions, definitions)
        if not others <= {target[0].lower()}:
            continue  # another table is named: the key's reading may be what joins to it
        col, value = stored[0]
        m.kind, m.columns, m.tables, m.value = "value", [col], [], value


_LISTING = frozenset({"which", "who", "list", "name", "show"})
_HAVING_VERBS = frozenset({"have", "has", "had", "with", "own", "owns", "manage", "manages"})


def rows_in_role(index: SchemaIndex, tokens: list[Token], mentions: list[Mention]) -> None:
    """ "Which reps have customers in more than three different countries?": the rows listed
    are named by the layer's synonym of a reference key (`accounts.account_manager_id`,
    "rep") and then said to have rows of the table that holds the key (customers): they are
    the rows the key refers to (staff), reached through that key, as "which staff have
    customers ..." would say. Only where that key is the one way between the two tables."""
    if index.semantic is None:
        return
    words = [t for t in tokens if t.kind == "word"]
    if not words or words[0].lemma not in _LISTING:
        return
    for m in mentions:
        if m.kind != "column" or len(m.columns) != 1:
            continue
        before = [t for t in tokens[: m.start] if t.kind == "word"]
        if len(before) > 3 or any(t.lemma not in _LISTING | _LEADING for t in before):
            continue
        if m.end >= len(tokens) or tokens[m.end].lemma not in _HAVING_VERBS:
            return
        phrase = tuple(t.lemma for t in tokens[m.start : m.end])
        key = m.columns[0]
        if key not in index.column_synonyms.get(phrase, []):
            return
        target = index.referred_row(key)
        if target is None or target[0].lower() == key.table.lower():
            return
        ways = [
            e for e in index.edges.get(key.table.lower(), []) if e[0].lower() == target[0].lower()
        ]
        if len(ways) != 1 or not _named_elsewhere(key.table.lower(), m, mentions, []):
            return
        others = {
            t.lower()
            for o in mentions if o is not m
            for t in [*(r.name for r in o.tables), *(c.table for c in o.columns)]
        } - {key.table.lower(), target[0].lower()}  # fmt: skip
        if any(e[0].lower() == target[0].lower() for t in others for e in index.edges.get(t, [])):
            return  # another table named is related to those rows its own way (tickets' agent)
        m.kind, m.columns, m.tables = "table", [], [index.table(target[0])]
        return


_LEADING = frozenset({"of", "our", "the", "your", "all"})


def _tables_named(
    m: Mention, mentions: list[Mention], definitions: list[DefinitionMention]
) -> set[str]:
    """The tables the question's other strong links (and named definitions) name."""
    out = {d.definition.table.lower() for d in definitions}
    for other in mentions:
        if other is m or other.score < 2.0:
            continue
        out |= {t.name.lower() for t in other.tables} | {c.table.lower() for c in other.columns}
    return out


def _named_elsewhere(
    table: str, m: Mention, mentions: list[Mention], definitions: list[DefinitionMention]
) -> bool:
    """Whether a word of the question other than `m` names `table` or one of its columns."""
    for other in mentions:
        if other is m:
            continue
        named = {t.name.lower() for t in other.tables} | {c.table.lower() for c in other.columns}
        if table in named:
            return True
    return any(d.definition.table.lower() == table for d in definitions)
