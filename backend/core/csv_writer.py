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
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
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

    def write_many(self, rows: Iterable[Iterable[Any]]) -> None:
        cell = csv_cell
        self._writer.writerows(map(cell, row) for row in rows)

    def take(self) -> str:
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
