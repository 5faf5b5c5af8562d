"""Periods the semantic layer's calendar decides: "this fiscal year", "last financial quarter",
"FY2024", "Q3 FY2024", and, once a layer is given, "last quarter" / "previous month".

How the words are read (the layer's `today`, else the clock, is the day counted from):

* "this / last / previous fiscal year (quarter)" is the whole fiscal period that starts in the
  layer's `fiscal_year_start_month`: "last fiscal year" runs from the first day of the fiscal
  year before the current one to the first day of the current one (exclusive).
* A numbered fiscal year ("FY2024", "FY24", "FY 2024", "fiscal 2024", "fiscal year 2024") is
  the calendar year when the fiscal year starts in January. Otherwise it is read by the layer's
  `fiscal_year_named_by`: "end" (the year it ends in: FY2024 = April 2023 to March 2024 for an
  April start) or "start"; a layer that says neither leaves it unread (`FiscalYearUnnamed`),
  as the two conventions are both common. "FY2024-25" names the year it starts in.
  "Q3 FY2024" / "FY2024 Q3" is the third quarter of that fiscal year.
* "last / previous / prior quarter (month, year)", said without a number and not after "the",
  is the whole previous period, not a window of that length back from today: the previous
  calendar month, the previous calendar year, and the previous quarter of the fiscal year
  (the company's quarters; with a January start they are the calendar quarters). "This
  quarter" is the current fiscal quarter, from its first day. Rolling windows stay rolling:
  "the last 3 months", "the past quarter", "in the last year".
* "year to date" / "YTD" runs from the first day of the calendar year to `today` inclusive;
  "fiscal year to date" / "FYTD" from the fiscal year's first day, "quarter to date" / "QTD"
  from the fiscal quarter's, "month to date" / "MTD" from the month's.

`previous_period` is the one function other readings call for a whole period before (or at)
today, so a calendar reading without a layer and the layer's fiscal reading agree."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from backend.nl2sql.engines.builtin.lexicon import Token

_LEADS = {"this": 0, "current": 0, "last": -1, "previous": -1, "prior": -1}
_FISCAL = frozenset({"fiscal", "financial"})
_UNITS = {"year": 12, "quarter": 3}
_PLAIN_UNITS = {"month": 1, "quarter": 3, "year": 12}
_PLAIN_LEADS = {"last": -1, "previous": -1, "prior": -1, "this": 0, "current": 0}
_NOT_BEFORE = frozenset({"the", "a", "past", "recent"})
"""Words before "last quarter" that make it a window back from today ("in the last quarter")."""
_FY = re.compile(r"^fy(\d{2}|\d{4})(?:-(\d{2}|\d{4}))?$")
_QUARTER = re.compile(r"^q([1-4])$")


class PeriodNotRead(Exception):
    """A period the layer's calendar names, said in a way this reading does not take."""


class FiscalYearUnnamed(PeriodNotRead):
    """A numbered fiscal year, with a fiscal year that does not start in January and a layer
    that does not say which calendar year names it."""


_BOUNDARIES = frozenset(
    {"since", "before", "after", "until", "till", "than", "versus", "vs", "against", "compared"}
)
"""Words before a period that make it a bound or the other side of a comparison ("since last
year", "compared with last quarter"), not the time the question is about."""


@dataclass(frozen=True, slots=True)
class FiscalPeriod:
    start: int
    """Index of the period's first token ("this", "last", "FY2024")."""
    stop: int
    """Index after its last token (the unit or the year)."""
    first_day: date
    end_day: date
    """The day after the period (exclusive)."""
    fiscal: bool = True
    """Whether the words named the fiscal calendar ("fiscal", "FY"), not a plain period."""

    @property
    def payload(self) -> str:
        return f"{self.first_day.isoformat()}|{self.end_day.isoformat()}"


def fiscal_periods(
    tokens: list[Token], today: date, start_month: int, named_by: str | None = None
) -> list[FiscalPeriod]:
    """The periods the question names that the layer's calendar decides, in token order."""
    out: list[FiscalPeriod] = []
    taken: set[int] = set()

    def add(period: FiscalPeriod) -> None:
        span = set(range(period.start, period.stop))
        if not span & taken:
            taken.update(span)
            out.append(period)

    for period in _numbered(tokens, start_month, named_by):
        add(period)
    for period in _to_date(tokens, today, start_month):
        add(period)
    for i in range(len(tokens) - 2):
        lead, fiscal, unit = (t.lemma for t in tokens[i : i + 3])
        if lead not in _LEADS or fiscal not in _FISCAL or unit not in _UNITS:
            continue
        months = _UNITS[unit]
        first = previous_period(today, months, start_month, _LEADS[lead])
        add(FiscalPeriod(i, i + 3, first, _add_months(first, months)))
    for i in range(len(tokens) - 1):
        lead, unit = tokens[i].lemma, tokens[i + 1].lemma
        if (
            lead not in _PLAIN_LEADS
            or unit not in _PLAIN_UNITS
            or tokens[i + 1].text.lower() != unit
        ):
            continue  # ("last quarters", "last 3 months": not one whole period)
        if i > 0 and tokens[i - 1].lemma in _NOT_BEFORE:
            continue  # "in the last quarter": a window back from today
        months = _PLAIN_UNITS[unit]
        if _PLAIN_LEADS[lead] == 0 and unit != "quarter":
            continue  # "this month", "this year": the engine's own reading, the same periods
        align = start_month if unit == "quarter" else 1
        first = previous_period(today, months, align, _PLAIN_LEADS[lead])
        add(FiscalPeriod(i, i + 2, first, _add_months(first, months), fiscal=False))
    for period in out:
        before = {t.lemma for t in tokens[max(0, period.start - 2) : period.start]}
        if before & _BOUNDARIES:
            said = " ".join(t.text for t in tokens[period.start : period.stop])
            raise PeriodNotRead(
                f"'{said}' is a bound or a comparison here; only the time a question is about "
                "is read from the semantic layer's calendar"
            )
    return sorted(out, key=lambda p: p.start)


_TO_DATE = {"ytd": ("year", False), "fytd": ("year", True), "qtd": ("quarter", True),
            "mtd": ("month", False)}  # fmt: skip


def _to_date(tokens: list[Token], today: date, start_month: int) -> list[FiscalPeriod]:
    """ "year to date" / "YTD" (the calendar year), "fiscal year to date" / "FYTD", "quarter
    to date" / "QTD" (the fiscal quarter), "month to date" / "MTD": from the period's first
    day to `today`, inclusive."""
    out: list[FiscalPeriod] = []
    after = today + timedelta(days=1)
    for i, tok in enumerate(tokens):
        if tok.lemma in _TO_DATE:
            unit, fiscal = _TO_DATE[tok.lemma]
            start, stop = i, i + 1
        elif tok.lemma in _PLAIN_UNITS and [t.lemma for t in tokens[i + 1 : i + 3]] == [
            "to",
            "date",
        ]:
            unit, start, stop = tok.lemma, i, i + 3
            fiscal = unit == "quarter" or (i > 0 and tokens[i - 1].lemma in _FISCAL)
            if i > 0 and tokens[i - 1].lemma in _FISCAL:
                start = i - 1
        else:
            continue
        months = _PLAIN_UNITS[unit]
        first = previous_period(today, months, start_month if fiscal else 1, 0)
        out.append(FiscalPeriod(start, stop, first, after, fiscal=fiscal))
    return out


def previous_period(today: date, months: int, start_month: int, offset: int) -> date:
    """The first day of the whole period of `months` months (1, 3 or 12), aligned to years
    starting in `start_month`, that is `offset` periods from the one `today` falls in
    (0: that one, -1: the one before)."""
    into = (today.month - start_month) % months
    first = _add_months(date(today.year, today.month, 1), -into)
    return _add_months(first, months * offset)


def _numbered(tokens: list[Token], start_month: int, named_by: str | None) -> list[FiscalPeriod]:
    """ "FY2024", "FY 2024", "fiscal (year) 2024", "FY2024-25", each with an optional quarter
    ("Q3 FY2024", "FY2024 Q3", "Q3 of FY2024")."""
    out: list[FiscalPeriod] = []
    i = 0
    while i < len(tokens):
        found = _fiscal_year_at(tokens, i)
        if found is None:
            i += 1
            continue
        stop, year, explicit_start = found
        first_year = year if explicit_start else _first_year(year, start_month, named_by)
        first = date(first_year, start_month, 1)
        start, months = i, 12
        quarter = _quarter_next_to(tokens, i, stop)
        if quarter is not None:
            number, start, stop = quarter
            first, months = _add_months(first, 3 * (number - 1)), 3
        out.append(FiscalPeriod(start, stop, first, _add_months(first, months)))
        i = stop
    return out


def _fiscal_year_at(tokens: list[Token], i: int) -> tuple[int, int, bool] | None:
    """(index after it, the year written, whether it names the year the fiscal year starts in)
    of a numbered fiscal year written at `i`."""
    match = _FY.match(tokens[i].lemma)
    if match is not None:
        year = _full_year(match.group(1))
        second = match.group(2)
        if second is not None and _full_year(second, year) != year + 1:
            return None
        return i + 1, year, second is not None
    words = [t.lemma for t in tokens[i : i + 3]]
    if words[:1] == ["fy"] or (words[:1] and words[0] in _FISCAL):
        k = i + 1
        if words[:1] != ["fy"] and words[1:2] == ["year"]:
            k += 1
        if (
            k < len(tokens)
            and tokens[k].kind == "number"
            and re.fullmatch(r"\d{4}", tokens[k].lemma)
        ):
            return k + 1, int(tokens[k].lemma), False
    return None


def _quarter_next_to(tokens: list[Token], start: int, stop: int) -> tuple[int, int, int] | None:
    """(quarter number, new start, new stop) of "Q3" right before ("Q3 FY2024", "Q3 of
    FY2024") or right after ("FY2024 Q3") a numbered fiscal year."""
    if stop < len(tokens):
        match = _QUARTER.match(tokens[stop].lemma)
        if match is not None:
            return int(match.group(1)), start, stop + 1
    for back in (1, 2):
        at = start - back
        if at < 0 or (back == 2 and tokens[start - 1].lemma not in ("of", "in")):
            continue
        match = _QUARTER.match(tokens[at].lemma)
        if match is not None:
            return int(match.group(1)), at, stop
    return None


def _full_year(text: str, near: int | None = None) -> int:
    if len(text) == 4:
        return int(text)
    century = (near // 100) * 100 if near is not None else 2000
    return century + int(text)


def _first_year(year: int, start_month: int, named_by: str | None) -> int:
    """The calendar year fiscal year `year` starts in."""
    if start_month == 1:
        return year
    if named_by == "start":
        return year
    if named_by == "end":
        return year - 1
    raise FiscalYearUnnamed(
        f"FY{year} could start in {year - 1} or in {year}: the semantic layer does not say "
        "whether a fiscal year is named by the calendar year it starts or ends in"
    )


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
