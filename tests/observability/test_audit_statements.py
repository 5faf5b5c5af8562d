"""An audit row is one statement (PostgreSQL: after the chain's lock), and the chain stays
one unbroken line with two writers appending at once.

The row is inserted with its id, its predecessor's hash and its own hash worked out inside
the INSERT ... SELECT (it was three: insert, read the predecessor, update the hashes).
"""

from __future__ import annotations

import threading
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Connection, event, select

from backend.observability import recorder
from backend.observability.models import AuditLog
from backend.observability.service import verify_audit_chain

AUDIT_STATEMENTS = {"postgresql": ["SELECT", "INSERT"], "sqlite": ["INSERT"]}
"""PostgreSQL: the advisory lock, then the row; SQLite: the row (its write lock is the
chain's lock)."""


def _statements_of_this_thread(app: FastAPI) -> tuple[list[str], Any]:
    seen: list[str] = []
    me = threading.get_ident()

    def heard(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.get_ident() == me:
            seen.append(statement.lstrip().split(None, 1)[0].upper())

    event.listen(app.state.engine, "before_cursor_execute", heard)
    return seen, heard


def test_an_audit_row_is_one_statement(app: FastAPI) -> None:
    factory = app.state.session_factory
    with factory() as s:
        recorder.audit(s, action="test.first", user_id=None)
        s.commit()
    seen, heard = _statements_of_this_thread(app)
    try:
        with factory() as s:
            s.connection()  # BEGIN and the connection's set-up are not the audit's
            seen.clear()
            row = recorder.audit(
                s,
                action="test.second",
                user_id=None,
                new_values={"password": "x", "n": 1, "name": "Zoë — 東京"},
            )
            written = list(seen)
            s.commit()
    finally:
        event.remove(app.state.engine, "before_cursor_execute", heard)
    assert written == AUDIT_STATEMENTS[app.state.engine.dialect.name]
    with factory() as s:
        stored = s.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        report = verify_audit_chain(s)
    assert [r.action for r in stored] == ["test.first", "test.second"]
    # What audit() answers is the row as written.
    assert (row.id, row.prev_hash, row.row_hash) == (
        stored[1].id,
        stored[0].row_hash,
        stored[1].row_hash,
    )
    assert stored[1].new_values == {"password": "***", "n": 1, "name": "Zoë — 東京"}
    assert report.intact and report.checked_rows == 2


def test_two_writers_keep_one_unbroken_chain(app: FastAPI) -> None:
    """Two writers, each appending in transactions that did other work first, interleaved as
    tightly as a barrier makes them: every row has its own predecessor, the ids follow the
    chain, and the chain verifies."""
    factory = app.state.session_factory
    per_writer = 15
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def append(writer: int) -> None:
        try:
            for n in range(per_writer):
                barrier.wait(30)
                with factory() as s:
                    s.execute(select(AuditLog.id).limit(1))
                    recorder.audit(s, action="test.two", user_id=None, resource_id=f"{writer}-{n}")
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=append, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with factory() as s:
        rows = s.scalars(select(AuditLog).order_by(AuditLog.id)).all()
        report = verify_audit_chain(s)
    assert len(rows) == 2 * per_writer
    assert rows[0].prev_hash is None
    assert all(
        later.prev_hash == earlier.row_hash for earlier, later in zip(rows, rows[1:], strict=False)
    )
    assert report.intact, report
    assert report.checked_rows == 2 * per_writer
