"""The one CSV writer of every export: formula-like text neutralised, values written plainly."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.core.csv_writer import CsvChunks, csv_cell


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+2", "'+1+2"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain", "plain"),
        ("", ""),
        (None, ""),
        (-5, -5),
        (1.5, 1.5),
        ({"b": 1, "a": "=x"}, '{"a": "=x", "b": 1}'),
        (["=x"], '["=x"]'),
        (datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), "2024-01-02T03:04:05+00:00"),
    ],
)
def test_cells(value: object, written: object) -> None:
    assert csv_cell(value) == written


def test_chunks_stream_header_and_rows_and_empty_between() -> None:
    out = CsvChunks(header=["=a", "b"])
    out.write_many([["x, y", None], ["-1", 2]])
    first = out.take()
    assert out.take() == ""
    out.write(["@z", 'q"q'])
    rows = list(csv.reader(io.StringIO(first + out.take())))
    assert rows == [["'=a", "b"], ["x, y", ""], ["'-1", "2"], ["'@z", 'q"q']]


def _cell_by_cell(rows: list[list[object]]) -> str:
    """The reference: `csv_cell` on every value, as the writer did before it went by column."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows([map(csv_cell, row) for row in rows])
    return buffer.getvalue()


MIXED_COLUMNS: list[list[object]] = [
    [1, 2.5, "plain", None, True],
    [2, float("nan"), "=1+1", "", False],
    [None, float("inf"), "-3", "x", None],
    [4, 1e308, "@user", "\tcell", 0],
    [5, 1e308, "", datetime(2024, 1, 2, 3, 4, tzinfo=UTC), 1],
    [6, -0.0, None, {"b": 1, "a": [2]}, None],
]


@pytest.mark.parametrize("take", [1, 2, 3, len(MIXED_COLUMNS)])
def test_writing_by_column_gives_the_text_of_writing_cell_by_cell(take: int) -> None:
    rows = MIXED_COLUMNS[:take]
    out = CsvChunks()
    out.write_many(rows)
    assert out.take() == _cell_by_cell(rows)


@given(
    st.lists(
        st.tuples(
            st.none() | st.integers() | st.booleans(),
            st.none() | st.floats(allow_nan=True, allow_infinity=True),
            st.none() | st.text(max_size=6),
        ),
        max_size=8,
    )
)
def test_writing_by_column_matches_cell_by_cell_for_any_values(
    rows: list[tuple[object, object, object]],
) -> None:
    out = CsvChunks()
    out.write_many([list(row) for row in rows])
    assert out.take() == _cell_by_cell([list(row) for row in rows])
