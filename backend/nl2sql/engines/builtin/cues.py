"""Intent words ("how many", "top", "more than", "per") and the scan that finds them."""

from __future__ import annotations

from dataclasses import dataclass

from backend.nl2sql.engines.builtin.dates import read_period
from backend.nl2sql.engines.builtin.lexicon import (
    ACRONYMS,
    EVENT_WORDS,
    STOP_WORDS,
    Token,
    lemmatise,
)
from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex

REFINEMENT_WORDS = frozenset(
    {"and", "now", "only", "just", "but", "also", "then", "instead", "excluding", "exclude",
     "same", "ok"}
)  # fmt: skip
"""First words of a follow-up that changes the previous question ("and only for 2023?")."""


def is_superlative(word: str) -> bool:
    """ "heaviest", "busiest", "longest": a ranking the reading must not drop silently."""
    return (
        len(word) > 6
        and word.endswith("iest")
        or (len(word) > 5 and word.endswith("est") and word[-4] == word[-5])
        or word
        in (
            "highest",
            "lowest",
            "largest",
            "smallest",
            "fastest",
            "slowest",
            "oldest",
            "newest",
            "youngest",
            "cheapest",
            "longest",
            "shortest",
            "heaviest",
        )
    )


QUANTITY_NOUNS = frozenset({"number", "numbers", "count", "amount", "quantity", "total"})
"""Words after a superlative that make it a count ("the largest number of ...")."""

FREQUENCY_SUPERLATIVES = frozenset(
    {"most", "least", "fewest", "latest", "earliest", "best", "worst"}
)
"""Superlatives that may rank by how many rows ("the most tracks", "the fewest songs") or by
a time, not by the size of one value."""

NON_ADDITIVE_WORDS = frozenset(
    """
    age year years rating rate ratio percent percentage pct score stars star level rank grade
    latitude longitude
    """.split()  # noqa: SIM905 - a word list reads better as prose
)
"""Last words of a column name whose values do not add up: a total of ages, years or rates
answers nothing anyone asks."""

YES_NO_VALUES = frozenset({"y", "n", "yes", "no", "t", "f", "true", "false", "0", "1"})
"""What a yes/no column stored as text holds."""

EXTREME_PREFIXES = frozenset({"min", "max", "minimum", "maximum"})
"""First words of a column that already holds an extreme (`min_salary`). (A total of a mean
per row is left alone: one row per group makes it the mean itself, as a daily log does.)"""


@dataclass(slots=True)
class Cue:
    kind: str
    start: int
    end: int
    payload: str = ""


_CUE_PHRASES: list[tuple[tuple[str, ...], str, str]] = [
    (("what", "percentage", "of"), "share", ""),
    (("what", "percent", "of"), "share", ""),
    (("what", "share", "of"), "share", ""),
    (("what", "proportion", "of"), "share", ""),
    (("what", "fraction", "of"), "share", ""),
    (("percentage", "of"), "share", ""),
    (("share", "of"), "share", ""),
    (("proportion", "of"), "share", ""),
    (("fraction", "of"), "share", ""),
    (("how", "many"), "count", ""),
    (("total", "number", "of"), "count", ""),
    (("number", "of"), "count", ""),
    (("count", "of"), "count", ""),
    (("count",), "count", ""),
    (("average",), "agg", "AVG"),
    (("mean",), "agg", "AVG"),
    (("avg",), "agg", "AVG"),
    (("sum", "of"), "agg", "SUM"),
    (("sum",), "agg", "SUM"),
    (("total",), "agg", "SUM"),
    (("maximum",), "agg", "MAX"),
    (("max",), "agg", "MAX"),
    (("minimum",), "agg", "MIN"),
    (("min",), "agg", "MIN"),
    (("most", "recent"), "super", "date_desc"),
    (("most", "recently"), "super", "date_desc"),
    (("most", "expensive"), "super", "price_desc"),
    (("least", "expensive"), "super", "price_asc"),
    (("most", "common"), "super", "count_desc"),
    (("most", "popular"), "super", "count_desc"),
    (("most", "frequent"), "super", "count_desc"),
    (("least", "common"), "super", "count_asc"),
    (("least", "popular"), "super", "count_asc"),
    (("most", "number", "of"), "super", "n_desc"),
    (("greatest", "number", "of"), "super", "n_desc"),
    (("biggest", "number", "of"), "super", "n_desc"),
    (("highest", "number", "of"), "super", "n_desc"),
    (("largest", "number", "of"), "super", "n_desc"),
    (("least", "number", "of"), "super", "n_asc"),
    (("lowest", "number", "of"), "super", "n_asc"),
    (("fewest", "number", "of"), "super", "n_asc"),
    (("smallest", "number", "of"), "super", "n_asc"),
    (("highest",), "super", "desc"),
    (("most",), "super", "desc"),
    (("largest",), "super", "desc"),
    (("biggest",), "super", "desc"),
    (("greatest",), "super", "desc"),
    (("best",), "super", "desc"),
    (("lowest",), "super", "asc"),
    (("least",), "super", "asc"),
    (("smallest",), "super", "asc"),
    (("fewest",), "super", "asc"),
    (("worst",), "super", "asc"),
    (("latest",), "super", "date_desc"),
    (("newest",), "super", "date_desc"),
    (("earliest",), "super", "date_asc"),
    (("oldest",), "super", "oldest"),
    (("youngest",), "super", "youngest"),
    (("longest",), "super", "length_desc"),
    (("shortest",), "super", "length_asc"),
    (("cheapest",), "super", "price_asc"),
    (("top",), "top", ""),
    (("order", "the", "result", "by"), "order", ""),
    (("sort", "the", "result", "by"), "order", ""),
    (("order", "them", "by"), "order", ""),
    (("sort", "them", "by"), "order", ""),
    (("sorted", "by"), "order", ""),
    (("ordered", "by"), "order", ""),
    (("order", "by"), "order", ""),
    (("sort", "by"), "order", ""),
    (("ranked", "by"), "order", ""),
    (("sorted", "in"), "order", ""),
    (("ordered", "in"), "order", ""),
    (("in", "order", "of"), "order", ""),
    (("in", "the", "order", "of"), "order", ""),
    (("sorted",), "order", ""),
    (("from", "large", "to", "small"), "dir", "desc"),
    (("from", "largest", "to", "smallest"), "dir", "desc"),
    (("from", "high", "to", "low"), "dir", "desc"),
    (("from", "highest", "to", "lowest"), "dir", "desc"),
    (("from", "most", "to", "least"), "dir", "desc"),
    (("from", "small", "to", "large"), "dir", "asc"),
    (("from", "smallest", "to", "largest"), "dir", "asc"),
    (("from", "low", "to", "high"), "dir", "asc"),
    (("from", "lowest", "to", "highest"), "dir", "asc"),
    (("from", "least", "to", "most"), "dir", "asc"),
    (("in", "reverse", "alphabetical", "order"), "dir", "desc"),
    (("reverse", "alphabetical", "order"), "dir", "desc"),
    (("reverse", "alphabetical"), "dir", "desc"),
    (("according", "to"), "order", ""),
    (("in", "alphabetical", "order"), "dir", "asc"),
    (("in", "alphabetic", "order"), "dir", "asc"),
    (("in", "descending", "order"), "dir", "desc"),
    (("in", "ascending", "order"), "dir", "asc"),
    (("alphabetical", "order"), "dir", "asc"),
    (("alphabetic", "order"), "dir", "asc"),
    (("descending", "order"), "dir", "desc"),
    (("ascending", "order"), "dir", "asc"),
    (("decreasing", "order"), "dir", "desc"),
    (("increasing", "order"), "dir", "asc"),
    (("alphabetic",), "dir", "asc"),
    (("descending",), "dir", "desc"),
    (("decreasing",), "dir", "desc"),
    (("ascending",), "dir", "asc"),
    (("increasing",), "dir", "asc"),
    (("alphabetical",), "dir", "asc"),
    (("alphabetically",), "dir", "asc"),
    (("grouped", "by"), "group", ""),
    (("broken", "down", "by"), "group", ""),
    (("for", "each"), "group", ""),
    (("for", "every"), "group", ""),
    (("in", "each"), "group", ""),
    (("of", "each"), "group", ""),
    (("by", "each"), "group", ""),
    (("per",), "group", ""),
    (("each",), "group", ""),
    (("by",), "by", ""),
    (("monthly",), "bucket", "month"),
    (("quarterly",), "bucket", "quarter"),
    (("yearly",), "bucket", "year"),
    (("annual",), "bucket", "year"),
    (("annually",), "bucket", "year"),
    (("weekly",), "bucket", "week"),
    (("daily",), "bucket", "day"),
    (("more", "than"), "cmp", ">"),
    (("greater", "than"), "cmp", ">"),
    (("larger", "than"), "cmp", ">"),
    (("bigger", "than"), "cmp", ">"),
    (("higher", "than"), "cmp", ">"),
    (("longer", "than"), "cmp", ">"),
    (("over",), "cmp", ">"),
    (("above",), "cmp", ">"),
    (("exceed",), "cmp", ">"),
    (("exceeding",), "cmp", ">"),
    (("at", "least"), "cmp", ">="),
    (("no", "less", "than"), "cmp", ">="),
    (("not", "less", "than"), "cmp", ">="),
    (("or", "more"), "postcmp", ">="),
    (("or", "greater"), "postcmp", ">="),
    (("or", "above"), "postcmp", ">="),
    (("less", "than"), "cmp", "<"),
    (("fewer", "than"), "cmp", "<"),
    (("smaller", "than"), "cmp", "<"),
    (("lower", "than"), "cmp", "<"),
    (("shorter", "than"), "cmp", "<"),
    (("below",), "cmp", "<"),
    (("under",), "cmp", "<"),
    (("at", "most"), "cmp", "<="),
    (("no", "more", "than"), "cmp", "<="),
    (("not", "more", "than"), "cmp", "<="),
    (("up", "to"), "cmp", "<="),
    (("or", "less"), "postcmp", "<="),
    (("or", "fewer"), "postcmp", "<="),
    (("or", "below"), "postcmp", "<="),
    (("between",), "cmp", "between"),
    (("equal", "to"), "cmp", "="),
    (("cheaper", "than"), "cmp", "cheaper"),
    (("costlier", "than"), "cmp", "pricier"),
    (("pricier", "than"), "cmp", "pricier"),
    (("older", "than"), "cmp", "older"),
    (("younger", "than"), "cmp", "younger"),
    (("before",), "cmp", "before"),
    (("prior", "to"), "cmp", "before"),
    (("earlier", "than"), "cmp", "before"),
    (("after",), "cmp", "after"),
    (("later", "than"), "cmp", "after"),
    (("since",), "cmp", "since"),
    (("never",), "neg", ""),
    (("not",), "neg", ""),
    (("no",), "neg", ""),
    (("without",), "neg", ""),
    (("missing",), "neg", ""),
    (("lacking",), "neg", ""),
    (("lack",), "neg", ""),
    (("unlimited",), "neg", ""),
    (("uncapped",), "neg", ""),
    (("outside",), "neg", ""),
    (("exclude",), "neg", ""),
    (("excluding",), "neg", ""),
    (("other", "than"), "neg", ""),
    (("leaving", "out"), "neg", ""),
    (("leave", "out"), "neg", ""),
    (("not", "counting"), "neg", ""),
    (("except",), "neg", ""),
    (("apart", "from"), "neg", ""),
    (("aside", "from"), "neg", ""),
    (("none",), "neg", ""),
    (("different",), "distinct", ""),
    (("distinct",), "distinct", ""),
    (("unique",), "distinct", ""),
    (("contain",), "like", "contains"),
    (("containing",), "like", "contains"),
    (("include",), "like", "contains"),
    (("including",), "like", "contains"),
    (("start", "with"), "like", "starts"),
    (("starting", "with"), "like", "starts"),
    (("begin", "with"), "like", "starts"),
    (("beginning", "with"), "like", "starts"),
    (("end", "with"), "like", "ends"),
    (("ending", "with"), "like", "ends"),
    (("the", "word"), "skip", ""),
    (("word",), "skip", ""),
    (("the", "letter"), "like", "contains"),
    (("letter",), "like", "contains"),
    (("string",), "skip", ""),
    (("substring",), "like", "contains"),
    (("named",), "named", ""),
    (("called",), "named", ""),
    (("whose", "name", "is"), "named", ""),
    (("as", "a", "percentage"), "pctform", ""),
    (("as", "a", "percent"), "pctform", ""),
    (("as", "percentage"), "pctform", ""),
    (("as", "percentages"), "pctform", ""),
    (("in", "percent"), "pctform", ""),
    (("as", "the", "percent", "of"), "share", ""),
    (("as", "the", "percentage", "of"), "share", ""),
    (("percentage",), "unsupported", "percentage"),
    (("percent",), "unsupported", "percentage"),
    (("proportion",), "unsupported", "proportion"),
    (("ratio",), "unsupported", "ratio"),
    (("median",), "unsupported", "median"),
    (("difference",), "unsupported", "difference"),
    (("but", "not", "both"), "xor", ""),
    (("not", "both"), "xor", ""),
    (("at", "the", "same", "time"), "both", ""),
    (("both",), "both", ""),
    (("also",), "unsupported", "also"),
    (("either",), "unsupported", "either"),
    (("except",), "unsupported", "except"),
    (("respectively",), "unsupported", "respectively"),
    (("same",), "unsupported", "same"),
    (("more", "than", "once"), "unsupported", "repeat"),
]
_CUE_PHRASES.sort(key=lambda p: -len(p[0]))
_CUES_BY_FIRST_WORD: dict[str, list[tuple[tuple[str, ...], str, str]]] = {}
for _phrase in _CUE_PHRASES:
    _CUES_BY_FIRST_WORD.setdefault(_phrase[0][0], []).append(_phrase)
TIME_UNITS = {"day": "day", "week": "week", "month": "month", "quarter": "quarter", "year": "year"}
_BUCKET_LEADS = ("per", "by", "each", "every", "for", "of", "in")
_COMPARATIVE_LEADS = {
    "more": ">", "higher": ">", "greater": ">", "larger": ">", "bigger": ">",
    "less": "<", "lower": "<", "smaller": "<", "fewer": "<",
}  # fmt: skip
LENGTH_WORDS = (
    "length", "duration", "distance", "count", "minute", "second", "millisecond", "time", "size",
)  # fmt: skip
"""Column words that "longest"/"shortest" rank by when no column is named."""
_PARTICIPLES = frozenset(
    """made written taught sold held paid bought built done given run owned played sung
    directed produced published created managed led won hosted drawn driven taken seen chosen
    known shown grown thrown kept sent spent found brought caught told begun broken spoken
    stolen ridden flown hidden undertaken overseen withdrawn dealt meant understood""".split()  # noqa: SIM905
)
PLACE_WORDS = frozenset({"country", "city", "state", "location", "region", "nation", "town"})
ORDER_VERBS = frozenset(
    {"sort", "sorted", "order", "ordered", "rank", "ranked", "arrange", "arranged"}
)
SUBJECT_WORDS = frozenset({"name", "title", "id", "who", "which", "whose"})
_RELATIVE_LEADS = {"last": "last", "past": "last", "previous": "last", "this": "this"}


def scan_cues(tokens: list[Token], index: SchemaIndex) -> tuple[list[Cue], set[int]]:
    cues: list[Cue] = []
    skip: set[int] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "punct" and tok.text in "<>=":
            op = tok.text
            if i + 1 < len(tokens) and tokens[i + 1].text == "=" and op in "<>":
                op += "="
            cues.append(Cue("cmp", i, i + len(op), op))
            skip.update(range(i, i + len(op)))
            i += len(op)
            continue
        if tok.kind != "word":
            i += 1
            continue
        if (
            tok.lemma == "exactly"
            and i + 1 < len(tokens)
            and tokens[i + 1].kind == "number"
            and not (i + 2 < len(tokens) and tokens[i + 2].lemma in (*TIME_UNITS, "of"))
        ):
            # "exactly two airports", "exactly 12.5": the number is compared as equal ("exactly
            # 3 years old" is left to the readings of an age or a span, "exactly one of A and
            # B" to those of either-but-not-both)
            cues.append(Cue("cmp", i, i + 1, "="))
            skip.add(i)
            i += 1
            continue
        period = read_period(tokens, i)
        if period is not None:
            cues.append(Cue("day" if period.on_day else "period", i, period.stop, period.payload))
            skip.update(range(i, period.stop))
            i = period.stop
            continue
        # "per month", "by year", "each day": a time bucket unless the schema has such a column.
        if (
            tok.lemma in _BUCKET_LEADS
            and i + 1 < len(tokens)
            and tokens[i + 1].lemma in TIME_UNITS
            and not any(c.words == (tokens[i + 1].lemma,) for c in index.columns)
            and not (tok.lemma == "in" and tokens[i + 1].text.lower().endswith("s"))
        ):
            cues.append(Cue("bucket", i, i + 2, TIME_UNITS[tokens[i + 1].lemma]))
            skip.update((i, i + 1))
            i += 2
            continue
        unit_at = _event_bucket(tokens, i, index)
        if unit_at is not None:
            # "for each sign-up year", "by hire month": the bucket of the date of the event
            # named between (its words left to the links, which say whose date it is)
            event_at = i + 1 + (tokens[i + 1].lemma in ("each", "every"))
            cues.append(Cue("skip", i, event_at, ""))
            cues.append(Cue("bucket", unit_at, unit_at + 1, TIME_UNITS[tokens[unit_at].lemma]))
            skip.update({*range(i, event_at), unit_at})
            i = unit_at + 1
            continue
        if (
            tok.lemma in ("which", "what")
            and i + 2 < len(tokens)
            and tokens[i + 1].lemma in TIME_UNITS
            and tokens[i + 1].text.lower() == tokens[i + 1].lemma
            and not any(c.words == (tokens[i + 1].lemma,) for c in index.columns)
        ):
            # "which month had the most sign-ups": the answer is a time bucket
            cues.append(Cue("bucket", i + 1, i + 2, TIME_UNITS[tokens[i + 1].lemma]))
            skip.add(i + 1)
            i += 2
            continue
        if tok.lemma in _RELATIVE_LEADS:
            pos = i + 1
            if pos < len(tokens) and tokens[pos].kind == "number" and tok.lemma != "this":
                pos += 1
            if pos < len(tokens) and tokens[pos].lemma in TIME_UNITS:
                calendar = (
                    tok.lemma in ("last", "previous")
                    and pos == i + 1
                    and not (i > 0 and tokens[i - 1].lemma in ("the", "this"))
                )  # "last quarter": the calendar quarter before this one; "the last month",
                # "the last 3 months": a span counted back from today
                cues.append(
                    Cue(_RELATIVE_LEADS[tok.lemma], i, pos + 1, "calendar" if calendar else "")
                )
                skip.update(range(i, pos + 1))
                i = pos + 1
                continue
        if (
            tok.lemma in _COMPARATIVE_LEADS
            and i + 2 < len(tokens)
            and tokens[i + 1].kind == "word"
            and tokens[i + 2].lemma == "than"
            and tokens[i + 1].lemma not in STOP_WORDS
        ):
            cues.append(Cue("cmp", i, i + 3, _COMPARATIVE_LEADS[tok.lemma]))
            skip.update((i, i + 2))
            i += 3
            continue
        if _leading_order_verb(tokens, i):
            # "Sort the apartments by ...": the imperative, the ordering is said after it
            cues.append(Cue("skip", i, i + 1, ""))
            skip.add(i)
            i += 1
            continue
        if _inside_column_name(tokens, i, index) or (
            tok.lemma == "number"
            and i > 0
            and (
                (tokens[i - 1].lemma,) in index.column_phrases
                or any(c.words[-1:] == (tokens[i - 1].lemma,) for c in index.columns)
            )
        ):  # "phone number" where the column is `stu_phone`: one name, not two columns
            i += 1
            continue
        if (
            tok.lemma == "by"
            and i > 0
            and tokens[i - 1].kind == "word"
            and (tokens[i - 1].lemma in _PARTICIPLES or tokens[i - 1].lemma.endswith("ed"))
        ):
            # "loans made by members", "songs sung by X": an agent, not a grouping
            i += 1
            continue
        if (
            tok.lemma in ("no", "yes")
            and i > 0
            and tokens[i - 1].lemma in ("is", "was", "are", "be")
        ):
            i += 1
            continue
        if tok.lemma in _SHARE_WORDS or (
            tok.lemma == "what" and i + 1 < len(tokens) and tokens[i + 1].lemma in _SHARE_WORDS
        ):
            word = tok.lemma if tok.lemma in _SHARE_WORDS else tokens[i + 1].lemma
            if _names_a_share_column(tokens, word, index):
                i += 1  # a column named `share` or `percentage`: its name, not a share
                continue
        if (
            tok.lemma in SHOWN_WORDS
            and tok.lemma != "alongside"
            and i > 1
            and tokens[i - 1].kind == "word"
            and tokens[i - 1].lemma not in STOP_WORDS
            and (i + 1 == len(tokens) or tokens[i + 1].kind == "punct")
        ):  # "with the price shown": the column is asked for, the word adds nothing
            cues.append(Cue("skip", i, i + 1, ""))
            skip.add(i)
            i += 1
            continue
        if (
            tok.lemma in AGGREGATE_ADJECTIVES
            and i + 1 < len(tokens)
            and tokens[i + 1].kind == "word"
            and tokens[i + 1].lemma not in STOP_WORDS
            and not _inside_column_name(tokens, i, index)
        ):  # "our typical CSAT score", "the combined MRR": an average, a total
            cues.append(Cue("agg", i, i + 1, AGGREGATE_ADJECTIVES[tok.lemma]))
            skip.add(i)
            i += 1
            continue
        following = {t.lemma for t in tokens[i + 1 : i + 4]}
        if tok.lemma in _BUCKET_ADJECTIVES and (
            any(
                tok.lemma in c.words and (len(c.words) == 1 or following & set(c.words))
                for c in index.columns
            )
            or _spells_out_a_column(tokens, i, index)
        ):
            i += 1  # "monthly price" where a column is `monthly_price`: a name, not a bucket
            continue
        if tok.lemma in _BUCKET_ADJECTIVES and cadence_values(tokens, i, index):
            i += 1  # "billed annually" where a column holds 'annual': a value, not a bucket
            continue
        matched = False
        for phrase, kind, payload in _CUES_BY_FIRST_WORD.get(tok.lemma, []):
            n = len(phrase)
            if phrase[0] in ("order", "sort") and tok.text.lower() in ("orders", "sorts"):
                continue  # "orders by status": the noun, not the verb
            window = tokens[i : i + n]
            if len(window) == n and all(
                t.kind == "word" and t.lemma == w for t, w in zip(window, phrase, strict=True)
            ):
                if (
                    kind == "like"
                    and phrase[-1] == "letter"
                    and cues
                    and cues[-1].kind == "like"
                    and cues[-1].end == i
                ):
                    payload = cues[-1].payload  # "ending with the letter m": at the end
                cues.append(Cue(kind, i, i + n, payload))
                skip.update(range(i, i + n))
                i += n
                matched = True
                break
        if not matched:
            i += 1
    return _percent_forms(cues), skip


_CADENCES = {
    "annually": ("annual", "annually", "yearly"),
    "annual": ("annual", "annually", "yearly"),
    "yearly": ("yearly", "annual", "annually"),
    "monthly": ("monthly",),
    "quarterly": ("quarterly",),
    "weekly": ("weekly",),
    "daily": ("daily",),
}
"""Adverbs of how often something happens -> the values a column recording it may hold."""


def cadence_values(tokens: list[Token], i: int, index: SchemaIndex) -> list[tuple[ColumnRef, str]]:
    """ "subscriptions billed annually", "members who pay monthly": the values ('annual',
    'monthly') of the one column that records how often, when the adverb follows a verb."""
    if i == 0 or tokens[i].lemma not in _CADENCES or tokens[i - 1].kind != "word":
        return []
    verb = tokens[i - 1].text.lower()
    if not (verb.endswith("ed") or verb in ("pay", "pays", "bill", "bills", "renew", "renews")):
        return []
    hits: list[tuple[ColumnRef, str]] = []
    for word in _CADENCES[tokens[i].lemma]:
        for col, stored in index.values.get((word,), []):
            if (col, stored) not in hits:
                hits.append((col, stored))
    return hits if len({c for c, _ in hits}) == 1 else []


def _event_bucket(tokens: list[Token], i: int, index: SchemaIndex) -> int | None:
    """Where the time unit is in "each sign-up year", "per hire month", "by order quarter":
    a bucket lead, the word of an event, then the unit (when no column is named so)."""
    if tokens[i].lemma not in _BUCKET_LEADS:
        return None
    pos = i + 1
    if pos < len(tokens) and tokens[pos].lemma in ("each", "every"):
        pos += 1
    if pos >= len(tokens) or tokens[pos].kind != "word" or tokens[pos].lemma not in EVENT_WORDS:
        return None
    pos += 1
    if pos < len(tokens) and tokens[pos].lemma == "up":
        pos += 1  # "sign up year"
    if pos >= len(tokens) or tokens[pos].lemma not in TIME_UNITS:
        return None
    said = tuple(t.lemma for t in tokens[i + 1 : pos + 1] if t.lemma not in ("each", "every"))
    if said in index.column_phrases or any(c.words == said for c in index.columns):
        return None  # a column named so (`hire_year`): its name
    if any(said[:n] in index.column_phrases for n in range(1, len(said))):
        return None  # "order" of an `order_total`: a column's name
    return pos


def _percent_forms(cues: list[Cue]) -> list[Cue]:
    """ "..., as a percentage", "give it as a percentage": only the form of a share the
    question asks for elsewhere; without one, a percentage is still not understood."""
    shared = any(c.kind == "share" for c in cues)
    return [
        c
        if c.kind != "pctform"
        else Cue(
            "skip" if shared else "unsupported", c.start, c.end, "" if shared else "percentage"
        )
        for c in cues
    ]


_SHARE_WORDS = frozenset({"percentage", "percent", "share", "proportion", "fraction"})
AGGREGATE_ADJECTIVES = {"typical": "AVG", "combined": "SUM", "cumulative": "SUM"}
"""Adjectives before an amount that ask for an aggregate of it ("the typical order value")."""
SHOWN_WORDS = frozenset({"shown", "displayed", "visible", "listed", "alongside"})
"""Words after a column that ask for it to be shown ("..., with the price shown")."""
_BUCKET_ADJECTIVES = frozenset(
    {"monthly", "quarterly", "yearly", "annual", "annually", "weekly", "daily"}
)


def _names_a_share_column(tokens: list[Token], word: str, index: SchemaIndex) -> bool:
    """ "percentage" where a column is `percentage`, or "vote percent" where one is
    `vote_pct`: the share word is (part of) a column the question names. A column that only
    has the word among others the question never says (`discount_pct` for "what percent of
    revenue ...") does not make "what percent of" a name."""
    said = {t.lemma for t in tokens if t.kind == "word"}
    return any(
        word in c.words and all(w in said for w in c.words if w != word) for c in index.columns
    )


def _spells_out_a_column(tokens: list[Token], i: int, index: SchemaIndex) -> bool:
    """ "monthly recurring revenue" where a column is `mrr`: the words spell out the
    acronym a column is named by."""
    for acronym, expansion in ACRONYMS.items():
        words = tuple(lemmatise(w) for w in expansion.split())
        window = tuple(t.lemma for t in tokens[i : i + len(words)])
        if window == words and any(acronym in c.words for c in index.columns):
            return True
    return False


def _inside_column_name(tokens: list[Token], i: int, index: SchemaIndex) -> bool:
    """`phone number`, `room count`, `total credits`: cue words that are part of a column."""
    if tokens[i].lemma in STOP_WORDS:
        return False
    for length in (2, 3):
        for start in range(max(0, i - length + 1), i + 1):
            window = tokens[start : start + length]
            if (
                len(window) == length
                and all(t.kind == "word" for t in window)
                and tuple(t.lemma for t in window) in index.column_phrases
            ):
                return True
    return False


NEGATING_PREFIXES = ("un", "non", "in", "im", "dis")
"""Prefixes that turn a word into its opposite ("available" / "unavailable")."""


def opposite_by_prefix(said: list[str], column_words: tuple[str, ...]) -> bool:
    """Whether the words said and a column's name differ by a negating prefix on one side
    ("available rooms" linked to `unavailable`, "unpaid" linked to `is_paid`): the link
    names the flag's opposite, so the flag is read negated."""
    said_words = {w for w in said if len(w) >= 4}
    names = {w for w in column_words if len(w) >= 4}
    for p in NEGATING_PREFIXES:
        if any(n.startswith(p) and n[len(p) :] in said_words for n in names):
            return True
        if any(s.startswith(p) and s[len(p) :] in names for s in said_words):
            return True
    return False


def _leading_order_verb(tokens: list[Token], i: int) -> bool:
    """ "Sort ...", "Order ...", "Rank ..." opening the question: a command, not a column
    ("rank of each team" and "orders by status" are nouns)."""
    tok = tokens[i]
    if tok.text.lower() not in ("sort", "order", "rank", "arrange"):
        return False
    if any(t.kind == "word" for t in tokens[:i]):
        return False
    nxt = tokens[i + 1] if i + 1 < len(tokens) else None
    return nxt is not None and nxt.lemma not in ("of", "by", "is", "are", "was", "for")
