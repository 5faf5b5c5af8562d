"""A verb of an event read as the date that records it ("accounts we *lost*" -> `churned_at`,
"tickets that were *fixed*" -> `closed_at`, "invoices *settled*" -> `paid_date`).

A past participle that names no column by spelling is read as the event whose date column
starts with one of the words `lexicon.EVENT_WORDS` lists for the verb. Only a nullable date
qualifies (a row has the event once it happened, NULL before); `negation` reads the word as
that date being set, as it reads "churned" for `churned_at`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.nl2sql.engines.builtin.lexicon import EVENT_WORDS

if TYPE_CHECKING:
    from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

IRREGULAR_PARTICIPLES = {
    "lost": "lose", "left": "leave", "won": "win", "paid": "pay", "sent": "send",
    "bought": "buy", "sold": "sell", "brought": "bring", "begun": "begin", "quit": "quit",
    "shut": "shut", "made": "make", "done": "do", "given": "give", "taken": "take",
}  # fmt: skip
"""Past participles that do not end in -ed, to the verb they are a form of."""

_STATE_EVENTS = frozenset(
    {"lose", "churn", "cancel", "quit", "drop", "leave", "resolve", "close", "solve", "fix",
     "complete", "finish", "repair", "pay", "collect", "settle", "ship", "deliver", "dispatch",
     "send"}
)  # fmt: skip
"""Verbs of EVENT_WORDS whose date is empty until a row's life or task ends (a state the row
is in afterwards); not the events that create a row ("won", "joined", "ordered")."""


def _verb_forms(word: str) -> list[str]:
    """The verb a participle may be a form of ("fixed" -> fix, "settled" -> settle)."""
    if word in IRREGULAR_PARTICIPLES:
        return [word, IRREGULAR_PARTICIPLES[word]]
    if not word.endswith("ed") or len(word) <= 4:
        return []
    forms = [word, word[:-2], word[:-1]]
    if word[-3] == word[-4]:
        forms.append(word[:-3])  # "dropped" -> drop
    if word.endswith("ied"):
        forms.append(word[:-3] + "y")
    return forms


def event_dates(index: SchemaIndex, word: str) -> list[ColumnRef]:
    """The nullable date columns recording the event a participle names (may be several)."""
    starts: set[str] = set()
    for form in _verb_forms(word):
        if form in _STATE_EVENTS:
            starts |= EVENT_WORDS.get(form, frozenset())
    if not starts:
        return []
    return [
        c
        for c in index.columns
        if c.kind == "date" and c.nullable and not c.is_primary_key and c.words[:1]
        and c.words[0] in starts
    ]  # fmt: skip
