"""Calendar dates written in words: "16 March 2024", "March 31, 2025", "the 1st of June",
and the periods built from them: "between 10 and 16 March 2024", "from May 1 to May 15, 2025",
"on 31 December 2023", "before 1 June 2025", "the first half of 2025", "Q3 2024".

A period is a half-open range of days `[start, end)`, either bound open, as ISO dates. Half-open
ranges compare the same on `DATE` columns and on timestamps stored as text or typed (a day's
afternoon is still before the next day), so "between 10 and 16 March" keeps tickets opened
during the 16th.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from backend.nl2sql.engines.builtin.lexicon import MONTHS, Token

_ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "last": 4}
_RANGE_JOINERS = {"between": ("and",), "from": ("to", "until", "till", "through", "thru", "-")}
_OPEN_BOUNDS = {"before": "before", "after": "after", "since": "since", "until": "until"}


@dataclass(frozen=True, slots=True)
class Period:
    """Days from `start` (inclusive) to `end` (exclusive); None: unbounded on that side."""

    start: date | None
    end: date | None
    first: int
    """Index of the period's first token."""
    stop: int
    """Index after the period's last token."""
    on_day: bool = False
    """A single day named with "on" ("on 31 December 2023"): a filter only when the question
    names the date column it applies to (an "active on" date means something else)."""

    @property
    def payload(self) -> str:
        lo = self.start.isoformat() if self.start else ""
        hi = self.end.isoformat() if self.end else ""
        return f"{lo}|{hi}"


@dataclass(frozen=True, slots=True)
class _Part:
    day: int | None
    month: int | None
    year: int | None
    stop: int


def _month(tok: Token) -> int | None:
    if tok.kind != "word" or tok.lemma not in MONTHS:
        return None
    if len(tok.lemma) <= 3 and not tok.text[:1].isupper():
        return None  # "may", "mar": a month only as a capitalised name
    return MONTHS[tok.lemma]


def _number(tok: Token, lo: int, hi: int) -> int | None:
    if tok.kind != "number":
        return None
    try:
        value = float(tok.lemma)
    except ValueError:
        return None
    return int(value) if value == int(value) and lo <= value <= hi else None


def _skip(tokens: list[Token], pos: int, words: tuple[str, ...]) -> int:
    while pos < len(tokens) and (
        tokens[pos].lemma in words or (tokens[pos].kind == "punct" and tokens[pos].text == ",")
    ):
        pos += 1
    return pos


def _read_part(tokens: list[Token], pos: int, *, bare_day: bool) -> _Part | None:
    """A date at `pos`: day month [year], month day [year], month year, or (with `bare_day`)
    a lone day number whose month and year come from the other end of a range."""
    n = len(tokens)
    pos = _skip(tokens, pos, ("the",))
    if pos >= n:
        return None
    day = _number(tokens[pos], 1, 31)
    if day is not None:
        after = pos + 1
        if after < n and tokens[after].lemma in _ORDINAL_SUFFIXES:
            after += 1
        mpos = _skip(tokens, after, ("of",))
        month = _month(tokens[mpos]) if mpos < n else None
        if month is None:
            return _Part(day, None, None, after) if bare_day else None
        return _with_year(tokens, day, month, mpos + 1)
    month = _month(tokens[pos])
    if month is None:
        return None
    after = pos + 1
    day = _number(tokens[after], 1, 31) if after < n else None
    if day is not None:
        after += 1
        if after < n and tokens[after].lemma in _ORDINAL_SUFFIXES:
            after += 1
        return _with_year(tokens, day, month, after)
    year_pos = _skip(tokens, after, ())
    year = _number(tokens[year_pos], 1800, 2200) if year_pos < n else None
    if year is not None:
        return _Part(None, month, year, year_pos + 1)
    return _Part(None, month, None, after)


def _with_year(tokens: list[Token], day: int, month: int, pos: int) -> _Part:
    year_pos = _skip(tokens, pos, ())
    year = _number(tokens[year_pos], 1800, 2200) if year_pos < len(tokens) else None
    if year is not None:
        return _Part(day, month, year, year_pos + 1)
    return _Part(day, month, None, pos)


def _first_day(part: _Part) -> date | None:
    if part.month is None or part.year is None:
        return None
    try:
        return date(part.year, part.month, part.day or 1)
    except ValueError:
        return None


def _day_after(part: _Part) -> date | None:
    """The first day after the part: the next day, or the next month's first day."""
    first = _first_day(part)
    if first is None or part.month is None or part.year is None:
        return None
    if part.day is not None:
        return first + timedelta(days=1)
    return date(part.year + part.month // 12, part.month % 12 + 1, 1)


def _range(tokens: list[Token], i: int) -> Period | None:
    joiners = _RANGE_JOINERS[tokens[i].lemma]
    a = _read_part(tokens, i + 1, bare_day=True)
    if a is None or a.stop >= len(tokens) or tokens[a.stop].lemma not in joiners:
        return None
    b = _read_part(tokens, a.stop + 1, bare_day=False)
    if b is None:
        return None
    if a.day is None and b.day is None and a.month is None:
        return None
    a = _Part(a.day, a.month or b.month, a.year or b.year, a.stop)
    b = _Part(b.day, b.month, b.year or a.year, b.stop)
    if a.day is None and a.month is not None and b.day is not None:
        return None  # "between March and May 5": mixed precision, too odd to guess
    start, end = _first_day(a), _day_after(b)
    if start is None or end is None or start >= end:
        return None
    return Period(start, end, i, b.stop)


def _half_or_quarter(tokens: list[Token], i: int) -> Period | None:
    """ "first half of 2025", "H2 2024", "Q3 2024", "the third quarter of 2024"."""
    tok = tokens[i]
    n = len(tokens)
    size = number = None
    pos = i + 1
    text = tok.lemma
    if len(text) == 2 and text[0] in "qh" and text[1] in "1234":
        size, number = (3 if text[0] == "q" else 6), int(text[1])
    elif tok.lemma in _ORDINALS and pos < n and tokens[pos].lemma in ("half", "quarter"):
        size = 6 if tokens[pos].lemma == "half" else 3
        number = _ORDINALS[tok.lemma] if tok.lemma != "last" else 12 // size
        pos += 1
    if size is None or number is None or number > 12 // size:
        return None
    pos = _skip(tokens, pos, ("of", "in", "the"))
    year = _number(tokens[pos], 1800, 2200) if pos < n else None
    if year is None:
        return None
    month = (number - 1) * size + 1
    end_month = month + size
    end = date(year + (end_month > 12), (end_month - 1) % 12 + 1, 1)
    return Period(date(year, month, 1), end, i, pos + 1)


def read_period(tokens: list[Token], i: int) -> Period | None:
    """The period starting at token `i`, if one does."""
    tok = tokens[i]
    if tok.lemma in _RANGE_JOINERS:
        return _range(tokens, i)
    if tok.lemma == "on":
        part = _read_part(tokens, i + 1, bare_day=False)
        if part is None or part.day is None:
            return None
        start, end = _first_day(part), _day_after(part)
        if start is None or end is None:
            return None
        return Period(start, end, i, part.stop, on_day=True)
    if tok.lemma in _OPEN_BOUNDS:
        part = _read_part(tokens, i + 1, bare_day=False)
        if part is None or part.day is None:
            return None  # "before 2020", "after May 2023": read as comparisons elsewhere
        day, next_day = _first_day(part), _day_after(part)
        if day is None or next_day is None:
            return None
        bound = _OPEN_BOUNDS[tok.lemma]
        if bound == "before":
            return Period(None, day, i, part.stop)
        if bound == "until":
            return Period(None, next_day, i, part.stop)
        return Period(next_day if bound == "after" else day, None, i, part.stop)
    return _half_or_quarter(tokens, i)
