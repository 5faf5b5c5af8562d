"""A stream of the driver's own rows ends cleanly whatever the number of rows: a server-side
cursor that runs dry while its buffer still holds rows closes itself, and the next fetch must
not reach for the closed cursor (an export of a one-row PostgreSQL result used to fail
mid-body with `'NoneType' object has no attribute 'fetchmany'`)."""

from __future__ import annotations

import pytest

from backend.connections.executor import stream_on_connection
from backend.connections.models import DatabaseConnection
from backend.core.config import Settings


@pytest.mark.parametrize("rows", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("raw_values", [True, False])
def test_every_row_arrives_and_the_stream_ends(
    target_connection: DatabaseConnection, plain_settings: Settings, rows: int, raw_values: bool
) -> None:
    sql = (
        "SELECT id FROM (SELECT 1 AS id UNION ALL SELECT 2 UNION ALL SELECT 3 "
        f"UNION ALL SELECT 4 UNION ALL SELECT 5) AS n WHERE id <= {rows} ORDER BY id"
    )
    chunks = list(
        stream_on_connection(
            target_connection,
            sql,
            settings=plain_settings,
            timeout_seconds=10,
            chunk_size=2,
            raw_values=raw_values,
        )
    )
    assert [row[0] for chunk in chunks for row in chunk.rows] == list(range(1, rows + 1))
    assert all(0 < len(chunk.rows) <= 2 for chunk in chunks)
