"""One plain-language sentence about a result, computed from its rows (any generator).

A time or category column with a measure gets its highest and lowest value (and the trend from
first to last over time); a single value is stated; a list gets its length and first entries.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from typing import Any

from backend.nl2sql.charts import classify_column

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")
_YEAR = re.compile(r"^\d{4}$")
MAX_LISTED = 3


def format_number(value: float | int) -> str:
    """Thousands separated; whole numbers from 1,000 up, at most two decimals below."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return f"{round(value):,}"
    if abs(value) >= 1000:
        return f"{round(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def format_value(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return format_number(value)
    text = str(value)
    month = _MONTH.match(text)
    if month and 1 <= int(month.group(2)) <= 12:
        return f"{calendar.month_name[int(month.group(2))]} {month.group(1)}"
    day = _DAY.match(text)
    if day and 1 <= int(day.group(2)) <= 12:
        return f"{int(day.group(3))} {calendar.month_name[int(day.group(2))]} {day.group(1)}"
    return text


def _label(name: str) -> str:
    return name.replace("_", " ").strip() or "value"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _period_word(values: Sequence[Any], name: str) -> str:
    texts = [str(v) for v in values if v is not None]
    if texts and all(_MONTH.match(t) for t in texts):
        return "month"
    if texts and all(_YEAR.match(t) for t in texts):
        return "year"
    if texts and all(_DAY.match(t) for t in texts):
        return "day"
    return _label(name)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plural(word: str, count: int) -> str:
    if count == 1:
        return word
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    return word + "s"


def _extremes(measure: str, pairs: list[tuple[Any, float]], word: str, *, over_time: bool) -> str:
    high = max(pairs, key=lambda p: p[1])
    low = min(pairs, key=lambda p: p[1])
    if high[1] == low[1]:
        return f"{_sentence(_label(measure))} is {format_number(high[1])} for every {word}."
    if over_time:
        return (
            f"{_sentence(_label(measure))} peaked in {format_value(high[0])} at "
            f"{format_number(high[1])}; the lowest {word} was {format_value(low[0])} "
            f"({format_number(low[1])})."
        )
    return (
        f"{_sentence(_label(measure))} is highest for {format_value(high[0])} "
        f"({format_number(high[1])}) and lowest for {format_value(low[0])} "
        f"({format_number(low[1])}), across {len(pairs):,} {_plural(word, len(pairs))}."
    )


def _trend(pairs: list[tuple[Any, float]]) -> str:
    first, last = pairs[0], pairs[-1]
    if first[1] == 0 or len(pairs) < 3:
        return ""
    change = (last[1] - first[1]) / abs(first[1]) * 100
    if abs(change) < 1:
        return f" It was flat from {format_value(first[0])} to {format_value(last[0])}."
    direction = "up" if change > 0 else "down"
    return (
        f" Overall {direction} {format_number(abs(round(change)))}% from "
        f"{format_value(first[0])} to {format_value(last[0])}."
    )


def summarize_result(
    columns: Sequence[tuple[str, str | None]],
    rows: Sequence[Sequence[Any]],
    *,
    truncated: bool = False,
) -> str | None:
    """A short sentence or two about the rows; None when there are no columns."""
    if not columns:
        return None
    if not rows:
        return "No rows matched."
    kinds = [
        classify_column(name, declared, [row[i] for row in rows if i < len(row)])
        for i, (name, declared) in enumerate(columns)
    ]
    names = [name for name, _ in columns]
    tail = f" Only the first {len(rows):,} rows are shown." if truncated else ""

    if len(rows) == 1:
        row = rows[0]
        if len(columns) == 1:
            return f"{_sentence(_label(names[0]))}: {format_value(row[0])}."
        parts = [f"{_label(n)} {format_value(v)}" for n, v in zip(names, row, strict=False)]
        return "One row: " + ", ".join(parts[:4]) + "."

    measures = [i for i, k in enumerate(kinds) if k == "quantitative"]
    times = [i for i, k in enumerate(kinds) if k == "temporal"]
    categories = [i for i, k in enumerate(kinds) if k == "nominal"]
    dimensions = times or categories
    if measures and dimensions:
        m, d = measures[0], dimensions[0]
        pairs = [(row[d], float(row[m])) for row in rows if _is_number(row[m])]
        if len(pairs) >= 2:
            values = [row[d] for row in rows]
            word = _period_word(values, names[d])
            is_time = d in times or word in ("month", "year", "day")
            text = _extremes(names[m], pairs, word, over_time=is_time)
            if is_time:
                text += _trend(sorted(pairs, key=lambda p: str(p[0])))
            return text + tail

    first = categories[0] if categories else 0
    listed = ", ".join(format_value(row[first]) for row in rows[:MAX_LISTED])
    more = f" and {len(rows) - MAX_LISTED:,} more" if len(rows) > MAX_LISTED else ""
    return f"{len(rows):,} rows: {listed}{more}." + tail
