"""A CSV export streams the driver's own rows (`stream_on_connection(raw_values=True)`) on every
kind of target: all rows arrive in bounded chunks (none lost to a driver's buffered first row),
and they write the same CSV as the values an answer shows."""

from __future__ import annotations

from backend.connections.executor import run_on_connection, stream_on_connection
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings
from backend.nl2sql.export_csv import csv_rows

SQL = (
    "SELECT o.id, c.name, o.amount, o.status, c.country FROM orders o "
    "JOIN customers c ON c.id = o.customer_id ORDER BY o.id"
)


def test_raw_rows_stream_in_bounded_chunks_on_every_target(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    chunks = list(
        stream_on_connection(
            target_connection,
            SQL,
            settings=plain_settings,
            timeout_seconds=10,
            chunk_size=2,
            raw_values=True,
        )
    )

    assert [len(c.rows) for c in chunks] == [2, 1]
    rows = [row for chunk in chunks for row in chunk.rows]
    assert not any(hasattr(row, "_mapping") for row in rows)  # no SQLAlchemy Row
    answer = run_on_connection(
        target_connection, SQL, settings=plain_settings, row_cap=10, timeout_seconds=10
    )
    # The answer's JSON-safe values and the driver's own write the same CSV.
    assert csv_rows(rows) == csv_rows(answer.rows)
    assert csv_rows(rows).splitlines()[0] == b"1,Ann,10.5,open,France"


def test_raw_rows_respect_max_rows(
    target_connection: DatabaseConnection, plain_settings: Settings
) -> None:
    chunks = list(
        stream_on_connection(
            target_connection,
            SQL,
            settings=plain_settings,
            timeout_seconds=10,
            chunk_size=2,
            max_rows=2,
            raw_values=True,
        )
    )
    assert [len(c.rows) for c in chunks] == [2]
