"""The roles a question gives one table's rows when another table refers to it twice.

"Trips from Leeds to York", "matches at home", "the seller of each sale": a table with two
keys to the same table (`origin_station_id`, `destination_station_id`) is joined by the key
whose role the question names. The join planner reads the role from the question's words
(`joinplan.related`); this module adds the roles that small words carry: "from" before a
name is where something starts, "to" before a name where it ends. Only a name (a capitalised
word, a quoted value or a number) after the preposition counts, so "from the list" or "how
to" give no role.
"""

from __future__ import annotations

from backend.nl2sql.engines.builtin.lexicon import Token

PREPOSITION_ROLES = {"from": "origin", "to": "destination"}
"""A preposition before a name, and the role word (of `joinplan`'s role groups) it stands for."""


def role_words(tokens: list[Token]) -> frozenset[str]:
    """The role words the question's prepositions carry ("from Leeds": origin)."""
    out: set[str] = set()
    for k, tok in enumerate(tokens[:-1]):
        role = PREPOSITION_ROLES.get(tok.lemma) if tok.kind == "word" else None
        if role is None:
            continue
        nxt = tokens[k + 1]
        if nxt.kind == "quoted" or nxt.is_capitalised:
            out.add(role)
    return frozenset(out)
