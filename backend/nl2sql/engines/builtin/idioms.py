"""Idioms of English rewritten to the plain words the engine reads, before tokenising.

People ask the same thing in set phrases: "who reports to nobody", "not managed by anyone" and
"at the top of the org chart" all say "has no manager". Each rewrite here is a phrase of
general English (about people and organisations), never a name of one database: the words it
writes are read by the ordinary stages afterwards ("manager" links to a `supervisor_id` or a
`boss_id` by the synonym list), so a schema without such a column still declines.
"""

from __future__ import annotations

import re

_NOBODY = r"(?:nobody|no[\s-]?one|no person|anyone|anybody)"

IDIOMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        # "reporting to nobody", "who report to no one": no manager
        (rf"\b(?:do(?:es)?\s+not\s+|don't\s+|doesn't\s+)report(?:s|ing|ed)?\s+to\s+{_NOBODY}\b",
         "have no manager"),
        (r"\breport(?:s|ing|ed)?\s+to\s+(?:nobody|no[\s-]?one|no person)\b", "have no manager"),
        # "not managed by anyone", "managed by nobody", "without anyone managing them"
        (rf"\b(?:are|is|were|was)\s+not\s+(?:managed|supervised)\s+by\s+{_NOBODY}\b",
         "have no manager"),
        (r"\b(?:managed|supervised)\s+by\s+(?:nobody|no[\s-]?one)\b", "with no manager"),
        # "at the top of the org chart": nobody above them
        (r"\b(?:sits?|sitting|is|are|be|stands?)\s+at\s+the\s+(?:very\s+)?top\s+of\s+the\s+"
         r"(?:org(?:ani[sz]ation(?:al)?)?\s+chart|org|hierarchy|company|chain\s+of\s+command)\b",
         "have no manager"),
        # "lifetime billings": the amounts billed, added up
        (r"\b(?:lifetime|all[\s-]time|total|cumulative)\s+billings\b", "total billed amount"),
        (r"\bbillings\b", "billed amount"),
    )
)  # fmt: skip
"""(pattern, plain words): set phrases and what they say in the engine's words."""


def rewrite_idioms(question: str) -> str:
    """The question with its idioms in plain words (unchanged when it has none)."""
    for pattern, replacement in IDIOMS:
        question = pattern.sub(replacement, question)
    return question
