"""Fiscal periods of the semantic layer: "this fiscal year", "last financial year", "the
previous fiscal quarter" are the year (or quarter) that starts in the layer's
`fiscal_year_start_month`, counted from the layer's `today` (else the clock).

The periods are whole: "last fiscal year" is the fiscal year before the current one, from its
first day to the first day of the current one (exclusive). Numbered fiscal years ("FY2024")
are left alone: which calendar year they start in is a convention the layer does not state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from backend.nl2sql.engines.builtin.lexicon import Token

_LEADS = {"this": 0, "current": 0, "last": -1, "previous": -1, "prior": -1}
_FISCAL = frozenset({"fiscal", "financial"})
_UNITS = {"year": 12, "quarter": 3}


@dataclass(frozen=True, slots=True)
class FiscalPeriod:
    start: int
    """Index of the period's first token ("this", "last")."""
    stop: int
    """Index after its last token (the unit)."""
    first_day: date
    end_day: date
    """The day after the period (exclusive)."""

    @property
    def payload(self) -> str:
        return f"{self.first_day.isoformat()}|{self.end_day.isoformat()}"


def fiscal_periods(tokens: list[Token], today: date, start_month: int) -> list[FiscalPeriod]:
    """The fiscal periods the question names, in token order."""
    out: list[FiscalPeriod] = []
    for i in range(len(tokens) - 2):
        lead, fiscal, unit = (t.lemma for t in tokens[i : i + 3])
        if lead not in _LEADS or fiscal not in _FISCAL or unit not in _UNITS:
            continue
        months = _UNITS[unit]
        first = _period_start(today, start_month, months)
        first = _add_months(first, months * _LEADS[lead])
        out.append(FiscalPeriod(i, i + 3, first, _add_months(first, months)))
    return out


def _period_start(today: date, start_month: int, months: int) -> date:
    """The first day of the fiscal year (12) or quarter (3) `today` falls in."""
    into = (today.month - start_month) % months
    return _add_months(date(today.year, today.month, 1), -into)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
