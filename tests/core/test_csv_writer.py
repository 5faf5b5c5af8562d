"""The one CSV writer of every export: formula-like text neutralised, values written plainly."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

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
