"""The export's CSV writer (`backend/nl2sql/export_csv.py`, Arrow's kernels) writes exactly the
bytes of Python's csv module writing `export_cell` of every value: the same quoting, the same
neutralised formulas, the same floats, empty cells for NULL, NaN and infinities."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import random
import struct
import uuid
from collections.abc import Sequence
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from backend.nl2sql.export_csv import csv_rows, export_cell


def reference(rows: Sequence[Sequence[Any]]) -> bytes:
    """What the export wrote before: the csv module, one `export_cell` per value."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows([export_cell(v) for v in row] for row in rows)
    return buffer.getvalue().encode("utf-8")


def assert_same(rows: Sequence[Sequence[Any]]) -> None:
    assert csv_rows(rows) == reference(rows)


TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list("=+-@\t\r\n,\"' ;\x00aé€𝄞0.e")), st.characters(codec="utf-8")
    ),
    max_size=12,
)
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e-3, max_value=1e-3),
    st.sampled_from([0.0, -0.0, 1e-4, 9.999999999999999e-05, 1e10, 1e16, 9999999999999998.0]),
)
INTEGERS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers())
OTHERS = st.one_of(
    st.booleans(),
    st.decimals(allow_nan=False, places=3, max_value=10**9, min_value=-(10**9)),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.times(),
    st.binary(max_size=6),
    st.uuids(),
    st.timedeltas(),
)
# A column of one kind (the fast paths) or of any mix (the value-by-value path).
COLUMN_VALUES = st.sampled_from(
    [INTEGERS, FLOATS, TEXT, OTHERS, st.one_of(INTEGERS, FLOATS, TEXT, OTHERS)]
)


@st.composite
def tables(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    width = draw(st.integers(1, 4))
    kinds = [draw(COLUMN_VALUES) for _ in range(width)]
    height = draw(st.integers(1, 12))
    nulls = st.none()
    return [
        tuple(draw(st.one_of(nulls, kind) if draw(st.booleans()) else kind) for kind in kinds)
        for _ in range(height)
    ]


@settings(deadline=None, max_examples=300)  # a loaded machine must not make it flaky
@given(tables())
def test_any_rows_are_written_as_the_csv_module_writes_them(rows: list[tuple[Any, ...]]) -> None:
    assert_same(rows)


def test_a_row_of_one_empty_cell_is_quoted_so_the_line_is_not_blank() -> None:
    rows: list[tuple[Any, ...]] = [(None,), ("",), ("x",), (float("nan"),), (1.5,)]
    assert csv_rows(rows) == b'""\r\n""\r\nx\r\n""\r\n1.5\r\n'
    assert_same(rows)
    assert csv_rows([(None, None)]) == b",\r\n"


def test_floats_are_written_as_repr_writes_them() -> None:
    edges = [0.0, -0.0, 1.0, -2.5, 0.1 + 0.2, 1 / 3, 1e-4, 9.999999999999999e-05, 1e-5, 1e-7]
    edges += [1e9, 1e10, 12345678901.5, 1e15, 9999999999999998.0, 1e16, 1.7976931348623157e308]
    edges += [5e-324, 2.2250738585072014e-308, float("inf"), float("-inf"), float("nan")]
    assert csv_rows([(v,) for v in edges]).split(b"\r\n")[:4] == [b"0.0", b"-0.0", b"1.0", b"-2.5"]
    assert_same([(v,) for v in edges])
    draw = random.Random(15)
    values = [struct.unpack("d", draw.randbytes(8))[0] for _ in range(50_000)]
    values += [draw.uniform(-1e17, 1e17) for _ in range(20_000)]
    values += [draw.uniform(-1e-3, 1e-3) for _ in range(20_000)]
    values += [round(draw.uniform(-1e6, 1e6), draw.randint(0, 6)) for _ in range(20_000)]
    values += [float(draw.randint(-(10**17), 10**17)) for _ in range(20_000)]
    assert_same([(v,) for v in values])


def test_a_float_column_with_an_integer_keeps_the_integer_as_written() -> None:
    rows = [(1.5, 0), (2, 0), (None, 0), (3.0, 0)]
    assert csv_rows(rows) == b"1.5,0\r\n2,0\r\n,0\r\n3.0,0\r\n"
    assert_same(rows)


def test_text_is_neutralised_then_quoted() -> None:
    rows = [("=1+2",), ("+x",), ("-y",), ("@z",), ("\tt",), ("\rr",), ('a, "b"',), ("l\nm",)]
    assert csv_rows(rows) == (
        b'\'=1+2\r\n\'+x\r\n\'-y\r\n\'@z\r\n\'\tt\r\n"\'\rr"\r\n"a, ""b"""\r\n"l\nm"\r\n'
    )
    assert_same(rows)


def test_values_of_other_types_are_written_as_an_answer_shows_them() -> None:
    rows = [
        (
            True,
            decimal.Decimal("1.50"),
            decimal.Decimal("7"),
            dt.date(2024, 2, 29),
            dt.datetime(2024, 1, 1, 12, 0, tzinfo=dt.UTC),
            b"\xf8",
            uuid.UUID(int=1),
            2**70,
            {"k": [1]},
        )
    ]
    assert csv_rows(rows) == (
        b"True,1.5,7,2024-02-29,2024-01-01T12:00:00+00:00,'+A==,"
        b'00000000-0000-0000-0000-000000000001,1180591620717411303424,"{""k"": [1]}"\r\n'
    )
    assert_same(rows)


def test_columns_of_nothing_but_nulls_and_no_rows() -> None:
    assert csv_rows([]) == b""
    assert_same([(None, 1, None), (None, 2, None)])


def test_a_batch_of_many_rows_matches() -> None:
    rows = [
        (i, f"event-{i}", i * 0.25, None if i % 7 == 0 else f'note, "q" {i % 97}', -i)
        for i in range(1, 20_001)
    ]
    assert_same(rows)
