"""The one list of English stop words the LLM prompt's relevance scoring and the few-shot
example ranking drop from a question (the offline engine's lexicon keeps its own, tuned with
its grammar).
"""

from __future__ import annotations

STOP_WORDS = frozenset(
    """
    a an and are as at be by can did do does find for from get give had has have how i in is it
    its list me much my of on or our per please show tell than that the their them there these
    this those to us was we were what when where which who whose why will with you your
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Function words and request verbs: they say nothing about what is asked."""

QUERY_WORDS = frozenset(
    """
    all count each every least many most number top total
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Words that say how to query (count, rank, total) and name no table or column. Scoring a
schema or a definition drops them too; comparing two questions keeps them ("top 5 ..." and
"total ..." ask for different SQL)."""
