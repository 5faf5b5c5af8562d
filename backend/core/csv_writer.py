"""The one CSV writer of every export (query results, analytics, audit logs, events).

Cells that a spreadsheet would run as a formula (text starting with `=`, `+`, `-`, `@`, a tab
or a carriage return) get a leading `'`, so they open as text; `None` is an empty cell,
datetimes are ISO 8601 in UTC, JSON values are compact JSON with sorted keys. Text is buffered
and handed out in chunks, so an export streams whatever its size.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from itertools import repeat
from typing import Any

FORMULA_START = frozenset("=+-@\t\r")


def csv_cell(value: Any) -> Any:
    """A value as the CSV writer should see it (formula-like text neutralised)."""
    if type(value) is str:  # the common case first: exports are mostly text and numbers
        return "'" + value if value and value[0] in FORMULA_START else value
    if value is None:
        return ""
    if isinstance(value, str):
        return "'" + value if value and value[0] in FORMULA_START else str(value)
    if isinstance(value, datetime):
        instant = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return instant.astimezone(UTC).isoformat()
    if isinstance(value, dict | list):
        return csv_cell(json.dumps(value, sort_keys=True))
    return value


_FORMULA_PREFIXES = tuple(FORMULA_START)
_PLAIN_NUMBERS = frozenset({int, float, bool, type(None)})
_TEXT = frozenset({str, type(None)})


def _column(values: tuple[Any, ...], cell: Callable[[Any], Any]) -> Sequence[Any]:
    """One column's values as the writer should see them (see `CsvChunks.write_many`)."""
    kinds = set(map(type, values))
    present = filter(None, values)  # drops None, "" and zeros: all written as they are
    if kinds <= _PLAIN_NUMBERS:
        if float not in kinds:
            return values
        try:
            # fsum is nan or infinite when a value is; an overflow or both infinities (which
            # fsum refuses) take the slow path too.
            if math.isfinite(math.fsum(present)):
                return values
        except (OverflowError, ValueError):  # ValueError: inf + -inf
            pass
    elif kinds <= _TEXT and not any(map(str.startswith, present, repeat(_FORMULA_PREFIXES))):
        return values
    return list(map(cell, values))


class CsvChunks:
    """Rows go in with `write`/`write_many`; `take()` hands out the text written since the last."""

    __slots__ = ("_buffer", "_writer")

    def __init__(self, header: Sequence[str] | None = None) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")
        if header is not None:
            self.write(header)

    def write(self, row: Iterable[Any]) -> None:
        self._writer.writerow(map(csv_cell, row))

    def write_many(
        self, rows: Iterable[Sequence[Any]], cell: Callable[[Any], Any] = csv_cell
    ) -> None:
        """Write `rows`, each value as `cell` makes it (`csv_cell` unless given).

        Column by column: a column whose values `cell` would hand back unchanged (integers,
        finite floats, `None`, text that starts no formula) goes to the writer as it is, found
        by checks that run in C; only the other columns call `cell` per value. The text is the
        same as calling `cell` on every value, at a fraction of the cost."""
        batch = rows if isinstance(rows, list) else list(rows)
        if not batch:
            return
        columns = [_column(values, cell) for values in zip(*batch, strict=True)]
        self._writer.writerows(zip(*columns, strict=True))

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
