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
        # "how do customers rate the service": the (satisfaction) rating they give it
        (r"\bhow\s+(?:do|does|did|would)\s+((?:(?!rate\b)[a-z']+\s+){1,4}?)rate\b",
         r"what satisfaction rating do \1give"),
        # "how satisfied are customers with ...": the satisfaction rating they give
        (r"\bhow\s+(?:satisfied|happy|pleased)\s+(?:are|were|is|was)\s+"
         r"((?:(?!with\b)[a-z']+\s+){1,4}?)with\b", r"what satisfaction rating do \1give"),
        # "a rep's book of business": the clients they look after
        (r"\bbooks?\s+of\s+business\b", "clients"),
        # "sales reps", "account representatives": the reps
        (r"\b(?:sales|account)\s+(reps?|representatives?)\b", r"\1"),
        # "what is the top salary among ...": the highest value of a measure, not a ranking
        # of rows ("the top customer by MRR", "the top 5 plans" stay rankings)
        (r"\b(what(?:'s|\s+is|\s+was)\s+(?:the|our)\s+)top\s+"
         r"(?=[a-z]+(?:\s+[a-z]+)?\b(?:\s+(?:among|across|of|for|in)\b|\s*\?|\s*$))"
         r"(?!(?:one|two|three|four|five|six|seven|eight|nine|ten)\b)", r"\1highest "),
        # "employee-count bracket", "headcount band": a company's size, in bands of employees
        (r"\b(?:(?:employee|staff|worker|head)[\s-]?(?:count|number)|headcount|workforce)"
         r"(?=[\s-]+(?:band|bracket|range|tier|bucket|class|category|segment)s?\b)", "size"),
    )
)  # fmt: skip
"""(pattern, plain words): set phrases and what they say in the engine's words."""


_WH = r"(?=(?:which|what|who|whom|whose|how|when|where|why)\b)"

REQUEST_FRAMES: tuple[re.Pattern[str], ...] = tuple(
    re.compile(r"^\s*" + pattern, re.IGNORECASE)
    for pattern in (
        r"(?:hi|hello|hey)\b[\s,!.]*",
        r"please\s+",
        r"(?:can|could|would|will)\s+you\s+(?:please\s+)?",
        r"(?:i(?:'d|\s+would)?|we(?:'d|\s+would)?)\s+(?:(?:really\s+)?(?:like|love|want|need|wish))"
        r"\s+to\s+(?:know|see|find\s+out|learn|understand|check|get)\b\s*[:,]?\s*",
        r"(?:i|we)\s+need\s+you\s+to\s+",
        r"(?:i(?:'m|\s+am)\s+)?(?:wondering|curious)\s*(?:about)?[:,]?\s*" + _WH,
        r"(?:i\s+)?wonder\s*[:,]?\s*" + _WH,
        r"(?:do\s+you\s+know|any\s+idea)\s*[:,]?\s*" + _WH,
        r"tell\s+me\s*[:,]?\s*" + _WH,
        r"(?:let\s+me\s+know|find\s+out)\s*[:,]?\s*" + _WH,
    )
)
"""Ways of asking that wrap a question without adding to it ("Can you tell me which ...",
"I'd like to know how many ...", "I need you to list ..."), taken off its start in turn."""


_FRONTED_BREAKDOWN = re.compile(
    r"^\s*(by|per)\s+(?!(?:how|what|which|when|the\s+end)\b)([^,?\d]{2,40}?)\s*,\s*(.+?)([?.!]*)\s*$",
    re.IGNORECASE,
)
"""A breakdown said first ("By plan tier, what's our MRR?"); not a date ("By 2024, ...")."""


def move_fronted_breakdown(question: str) -> str:
    """ "By region, how many accounts?" -> "how many accounts by region?": the breakdown where
    the engine reads it, after what is broken down."""
    match = _FRONTED_BREAKDOWN.match(question)
    if match is None:
        return question
    lead, groups, rest, end = match.groups()
    return f"{rest} {lead.lower()} {groups}{end}"


_TRAILING_AVERAGE = re.compile(
    r"^(.+?)[\s,;]+on\s+average\s*([?.!]*)\s*$", re.IGNORECASE | re.DOTALL
)
"""An average said last ("How satisfied are customers with support, on average?")."""


_AVERAGED_ALREADY = re.compile(r"(?i)\b(?:average|mean|avg|how\s+many|number\s+of|count)\b")
"""An average already said, or a count it would average per row of something ("how many
tickets does an account open, on average" is an average of counts, read elsewhere)."""


def move_trailing_average(question: str) -> str:
    """ "..., on average?" -> "On average, ...?": the aggregate before what it averages, where
    the engine reads it (as "On average, how satisfied ..." already is)."""
    match = _TRAILING_AVERAGE.match(question)
    if match is None or re.search(_AVERAGED_ALREADY, match.group(1)):
        return question
    return f"On average, {match.group(1)}{match.group(2)}"


_COUNTED_CHOICE = re.compile(
    r"\b(?:which|what|the)\s+(\d{1,2}|two|three|four|five|six|seven|eight|nine|ten|twelve|"
    r"fifteen|twenty)\s+(?=[a-z])",
    re.IGNORECASE,
)
_RANKING_WORD = re.compile(
    r"(?i)\bthe\s+(?:most|fewest|least)\s+(?!(?:of|than|in|on|at|for|to|by|with|from|during|"
    r"over|overall|often|recently|times|money|and|or|so\s+far|ever)\b)[a-z]"
)
"""A ranking by how many ("the most accounts", "the fewest visits"): a superlative of an
adjective ("the highest price", "the biggest book") already takes the number itself."""


def counted_choice_as_top(question: str) -> str:
    """ "Which 3 industries have the most accounts?" -> "top 3 industries have the most
    accounts?": a number of rows chosen by how many they have is a top N, as "Top 3 industries
    with the most accounts" says it (only where such a ranking follows)."""
    match = _COUNTED_CHOICE.search(question)
    if match is None or not _RANKING_WORD.search(question, match.end()):
        return question
    return f"{question[: match.start()]}top {match.group(1)} {question[match.end() :]}"


def strip_request_frame(question: str) -> str:
    """The question without the polite frame around it ("Could you tell me which plans ..."
    -> "which plans ..."); a question that is only a frame stays as it was."""
    changed = True
    while changed:
        changed = False
        for pattern in REQUEST_FRAMES:
            stripped = pattern.sub("", question, count=1)
            if stripped != question and stripped.strip(" ?.!"):
                question, changed = stripped, True
    return question


def rewrite_idioms(question: str) -> str:
    """The question with its idioms in plain words (unchanged when it has none)."""
    question = move_trailing_average(move_fronted_breakdown(strip_request_frame(question)))
    question = counted_choice_as_top(question)
    for pattern, replacement in IDIOMS:
        question = pattern.sub(replacement, question)
    return question
