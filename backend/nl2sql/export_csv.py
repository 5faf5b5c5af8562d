"""The body of a query export as CSV bytes, a batch of rows at a time, formatted by Arrow's C++
compute kernels instead of Python's csv module.

The bytes are exactly those `CsvChunks.write_many(rows, export_cell)` writes (Python's csv module,
minimal quoting, `\\r\\n` line ends, `backend.core.csv_writer`): values made JSON-safe as an
answer shows them (`executor.json_safe`), then formula-like text neutralised (`csv_cell`), then
quoted where they hold a comma, a quote or a line break; `None`, NaN and infinities as empty
cells; floats as Python's `repr`; a row of one empty cell as `""`. Columns whose values are all
integers, all floats or all text (each with `None`) take the fast path; any other column (bools,
decimals, dates, bytes, a mix of types) is formatted value by value as before, then quoted by
Arrow. The equivalence is tested against the Python writer (`tests/nl2sql/test_export_csv.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from backend.connections.executor import json_safe
from backend.core.csv_writer import FORMULA_START, csv_cell

_NONE = type(None)
_INTEGERS = frozenset({int, _NONE})
_FLOATS = frozenset({float, _NONE})
_TEXTS = frozenset({str, _NONE})

_FORMULA_LIKE = "^[" + "".join("\\" + c if c in "-^]\\" else c for c in FORMULA_START) + "]"
"""Text a spreadsheet would run as a formula (RE2 syntax): gets a leading `'`."""
_NEEDS_QUOTES = '[,"\r\n]'
"""What makes Python's csv writer quote a value: the delimiter, the quote, a line-end char."""

_PYTHON_FIXED_LOW = 1e-4
_PYTHON_FIXED_HIGH = 1e16
"""`repr` of a float writes it without an exponent in [1e-4, 1e16), with `.0` when integral."""

_TEXT = pa.large_string()
_NULL_FLOAT = pa.scalar(None, pa.float64())
_EMPTY = pa.scalar("", _TEXT)
_QUOTE = pa.scalar('"', _TEXT)
_APOSTROPHE = pa.scalar("'", _TEXT)
_POINT_ZERO = pa.scalar(".0", _TEXT)
_LINE_END = pa.scalar("\r\n", _TEXT)
_QUOTED_EMPTY = pa.scalar('""', _TEXT)


def export_cell(value: Any) -> Any:
    """A driver's value as the CSV shows it: JSON-safe (as an answer shows it), then a cell."""
    return csv_cell(json_safe(value))


def _cell_text(cell: Any) -> str:
    """The text Python's csv writer makes of a cell (`repr` for floats, `str` otherwise)."""
    if type(cell) is str:
        return cell
    return repr(cell) if isinstance(cell, float) else str(cell)


def _any(mask: Any) -> bool:
    return bool(pc.any(mask).as_py())


def _neutralised(text: Any) -> Any:
    formula = pc.match_substring_regex(text, _FORMULA_LIKE)
    if not _any(formula):
        return text
    return pc.if_else(formula, pc.binary_join_element_wise(_APOSTROPHE, text, _EMPTY), text)


def _quoted(text: Any) -> Any:
    needs = pc.match_substring_regex(text, _NEEDS_QUOTES)
    if not _any(needs):
        return text
    escaped = pc.binary_join_element_wise(
        _QUOTE, pc.replace_substring(text, '"', '""'), _QUOTE, _EMPTY
    )
    return pc.if_else(needs, escaped, text)


def _float_text(values: Sequence[Any]) -> Any:
    """Floats as `repr` writes them (NaN and infinities as nulls): Arrow's shortest round-trip
    digits where both write them the same way, `repr` itself for the few others."""
    numbers = pa.array(values, pa.float64())
    numbers = pc.if_else(pc.is_finite(numbers), numbers, _NULL_FLOAT)
    text = pc.cast(numbers, _TEXT)
    size = pc.abs(numbers)
    by_python = pc.fill_null(
        pc.or_(
            pc.match_substring(text, "e"),
            pc.or_(
                pc.greater_equal(size, _PYTHON_FIXED_HIGH),
                pc.and_(pc.less(size, _PYTHON_FIXED_LOW), pc.not_equal(size, 0.0)),
            ),
        ),
        False,
    )
    integral = pc.invert(pc.match_substring(text, "."))
    text = pc.if_else(integral, pc.binary_join_element_wise(text, _POINT_ZERO, _EMPTY), text)
    if _any(by_python):
        rows = pc.indices_nonzero(by_python).to_pylist()
        text = pc.replace_with_mask(
            text, by_python, pa.array([repr(values[i]) for i in rows], _TEXT)
        )
    return text


def _column_text(values: Sequence[Any]) -> Any:
    """One column's cells as an Arrow text array, quoted as the csv writer quotes them."""
    kinds = set(map(type, values))
    if kinds <= _INTEGERS:
        try:
            return pc.cast(pa.array(values, pa.int64()), _TEXT)
        except OverflowError:  # beyond 64 bits: written value by value below
            pass
    elif kinds <= _FLOATS:
        return _float_text(values)
    elif kinds <= _TEXTS:
        return _quoted(_neutralised(pa.array(values, _TEXT)))
    return _quoted(pa.array([_cell_text(export_cell(v)) for v in values], _TEXT))


def csv_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """The CSV lines of `rows` (no header), UTF-8, each ended by `\\r\\n`."""
    if not rows:
        return b""
    columns = [pc.fill_null(_column_text(values), _EMPTY) for values in zip(*rows, strict=True)]
    if len(columns) == 1:
        # The csv module quotes the one empty cell of a row, so the line is not blank.
        only = columns[0]
        lines = pc.if_else(pc.equal(only, _EMPTY), _QUOTED_EMPTY, only)
    else:
        lines = pc.binary_join_element_wise(*columns, pa.scalar(",", _TEXT))
    lines = pc.binary_join_element_wise(lines, _LINE_END, _EMPTY)
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("q")
    start, end = bounds[lines.offset], bounds[lines.offset + len(lines)]
    return bytes(data[start:end].to_pybytes())
