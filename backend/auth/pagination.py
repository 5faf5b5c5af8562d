"""Keyset pages over (created_at, id), newest first, with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from backend.core.errors import BadRequest

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def encode_cursor(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id]).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """Raises `BadRequest` for a cursor this API did not hand out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created_at, row_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        return datetime.fromisoformat(str(created_at)), str(row_id)
    except (ValueError, TypeError, binascii.Error, UnicodeError) as exc:
        raise BadRequest("The cursor is not valid.", details={"cursor": cursor}) from exc


def fetch_page(
    session: Session,
    statement: Select[Any],
    *,
    created_at: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    limit: int,
    cursor: str | None,
) -> tuple[list[Any], str | None]:
    """Rows of `statement` newest first, after `cursor`; and the cursor of the next page."""
    if cursor:
        after_created, after_id = decode_cursor(cursor)
        statement = statement.where(
            or_(created_at < after_created, and_(created_at == after_created, row_id < after_id))
        )
    rows = list(
        session.scalars(statement.order_by(created_at.desc(), row_id.desc()).limit(limit + 1))
    )
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(getattr(last, created_at.key), str(getattr(last, row_id.key)))
    return rows, next_cursor
