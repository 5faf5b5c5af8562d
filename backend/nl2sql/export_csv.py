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
_FLOATS = frozenset({float, _NONE})

_NEEDS_QUOTES = '[,"\r\n]'
"""What makes Python's csv writer quote a value: the delimiter, the quote, a line-end char."""
_QUOTE_BYTES = (b",", b'"', b"\r", b"\n")

_FLOAT_BY_PYTHON = r"[ena]|^-?0\.0000"
"""Arrow's text of a float that `repr` writes otherwise: with an exponent (Arrow uses one from
1e10 on, `repr` from 1e16 on and under 1e-4), fixed but under 1e-4 (`0.00001`: `repr` writes
`1e-05`), `inf` and `nan` (empty cells). Wherever else both write the same shortest digits in
fixed notation, `repr` with `.0` when there is no decimal point."""

_TEXT = pa.large_string()
_EMPTY = pa.scalar("", _TEXT)
_QUOTE = pa.scalar('"', _TEXT)
_APOSTROPHE = pa.scalar("'", _TEXT)
_POINT_ZERO = pa.scalar(".0", _TEXT)
_LINE_END = pa.scalar("\r\n", _TEXT)
_COMMA = pa.scalar(",", _TEXT)
_QUOTED_EMPTY = pa.scalar('""', _TEXT)
_FORMULA_STARTS = pa.array(sorted(FORMULA_START), _TEXT)
"""First characters of text a spreadsheet would run as a formula: it gets a leading `'`."""


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
    formula = pc.is_in(pc.utf8_slice_codeunits(text, 0, 1), value_set=_FORMULA_STARTS)
    if not _any(formula):
        return text
    return pc.if_else(formula, pc.binary_join_element_wise(_APOSTROPHE, text, _EMPTY), text)


def _quoted(text: Any) -> Any:
    # A scan of the column's bytes first: most columns hold no character that needs quotes.
    data = text.buffers()[2]
    raw = b"" if data is None else data.to_pybytes()
    if not any(c in raw for c in _QUOTE_BYTES):
        return text
    needs = pc.match_substring_regex(text, _NEEDS_QUOTES)
    escaped = pc.binary_join_element_wise(
        _QUOTE, pc.replace_substring(text, '"', '""'), _QUOTE, _EMPTY
    )
    return pc.if_else(needs, escaped, text)


def _float_text(numbers: Any, values: Sequence[Any]) -> Any:
    """Floats as `repr` writes them: Arrow's shortest round-trip digits, with `.0` added to
    integral ones, wherever both write them without an exponent; the others (an exponent, a
    magnitude under 1e-4, NaN and infinities) as `export_cell` makes them, value by value."""
    text = pc.cast(numbers, _TEXT)
    integral = pc.invert(pc.match_substring(text, "."))
    text = pc.if_else(integral, pc.binary_join_element_wise(text, _POINT_ZERO, _EMPTY), text)
    odd = pc.match_substring_regex(text, _FLOAT_BY_PYTHON)
    if _any(odd):
        rows = pc.indices_nonzero(pc.fill_null(odd, False)).to_pylist()
        cells = [_cell_text(export_cell(values[i])) for i in rows]
        text = pc.replace_with_mask(text, pc.fill_null(odd, False), pa.array(cells, _TEXT))
    return text


def _column_text(values: Sequence[Any]) -> Any:
    """One column's cells as an Arrow text array, quoted as the csv writer quotes them.

    Arrow infers the column's type (in C++): integers, text and nulls go straight to Arrow;
    floats too once no integer hides among them (Arrow would make it a float); any other type
    or a mix of types is formatted value by value as `export_cell` does."""
    try:
        column = pa.array(values)
    except (pa.ArrowException, OverflowError, TypeError, ValueError):
        # A mix of types, an integer beyond 64 bits, a value Arrow cannot read as its column's
        # type (a NaN or infinite PostgreSQL numeric: TypeError): formatted value by value.
        column = None
    if isinstance(column, pa.Array):
        kind = column.type
        if pa.types.is_null(kind):
            return pa.nulls(len(values), _TEXT)
        if pa.types.is_int64(kind):
            return pc.cast(column, _TEXT)
        if pa.types.is_string(kind):
            return _quoted(_neutralised(pc.cast(column, _TEXT)))
        if pa.types.is_float64(kind) and set(map(type, values)) <= _FLOATS:
            return _float_text(column, values)
    return _quoted(pa.array([_cell_text(export_cell(v)) for v in values], _TEXT))


def csv_rows(rows: Sequence[Sequence[Any]]) -> bytes:
    """The CSV lines of `rows` (no header), UTF-8, each ended by `\\r\\n`."""
    if not rows:
        return b""
    columns = [_column_text(values) for values in zip(*rows, strict=True)]
    columns = [pc.fill_null(c, _EMPTY) if c.null_count else c for c in columns]
    if len(columns) == 1:
        # The csv module quotes the one empty cell of a row, so the line is not blank.
        columns[0] = pc.if_else(pc.equal(columns[0], _EMPTY), _QUOTED_EMPTY, columns[0])
    columns[-1] = pc.binary_join_element_wise(columns[-1], _LINE_END, _EMPTY)
    lines = columns[0] if len(columns) == 1 else pc.binary_join_element_wise(*columns, _COMMA)
    _, offsets, data = lines.buffers()
    bounds = memoryview(offsets).cast("q")
    start, end = bounds[lines.offset], bounds[lines.offset + len(lines)]
    return bytes(data[start:end].to_pybytes())
