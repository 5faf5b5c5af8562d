"""Pages of every list: one cursor format, one error, one keyset helper.

A cursor is the sort key of the last row of a page, as JSON in URL-safe base64. Every list
endpoint takes it as the `cursor` query parameter (`CursorParam`) and answers a cursor this API
did not hand out with 400 `invalid_cursor`, the same on every list.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Query
from sqlalchemy import ColumnElement, Select, and_, false, or_
from sqlalchemy.orm import InstrumentedAttribute, Session

from backend.core.errors import BadRequest

T = TypeVar("T")
KeyPart = str | int | datetime
KeyKind = type[str] | type[int] | type[datetime]

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_CURSOR_LENGTH = 512

CursorParam = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page; leave it out for the first page.",
    ),
]


class InvalidCursor(BadRequest):
    code = "invalid_cursor"
    message = "The cursor is not valid for this list; start again without one."


def encode_cursor(*parts: KeyPart) -> str:
    values = [p.isoformat() if isinstance(p, datetime) else p for p in parts]
    raw = json.dumps(values, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _part(value: object, kind: KeyKind) -> KeyPart:
    if kind is datetime:
        if not isinstance(value, str):
            raise ValueError(value)
        instant = datetime.fromisoformat(value)
        if instant.tzinfo is None:
            raise ValueError(value)
        return instant
    if kind is int:
        if type(value) is not int or not -(2**63) <= value < 2**63:
            raise ValueError(value)
        return value
    if not isinstance(value, str) or "\x00" in value:
        raise ValueError(value)
    return value


def decode_cursor(cursor: str, *kinds: KeyKind) -> tuple[KeyPart, ...]:
    """The key parts of a cursor, checked against `kinds`; `InvalidCursor` for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError(cursor)
        return tuple(_part(v, k) for v, k in zip(values, kinds, strict=True))
    except (ValueError, TypeError, binascii.Error, UnicodeError, RecursionError) as exc:
        raise InvalidCursor(details={"cursor": cursor[:64]}) from exc


def _after(keys: Sequence[Any], values: Sequence[KeyPart], descending: bool) -> Any:
    """Rows strictly after `values` in the (lexicographic) order of `keys`."""
    condition: Any = false()
    for i in reversed(range(len(keys))):
        beyond = keys[i] < values[i] if descending else keys[i] > values[i]
        condition = or_(beyond, and_(keys[i] == values[i], condition))
    return condition


def keyset_page(
    session: Session,
    statement: Select[T],
    *,
    keys: Sequence[ColumnElement[Any] | InstrumentedAttribute[Any]],
    kinds: Sequence[KeyKind],
    key_of: Callable[[T], Sequence[KeyPart]],
    limit: int,
    cursor: str | None,
    descending: bool = True,
) -> tuple[list[T], str | None]:
    """Rows of `statement` ordered by `keys` after `cursor`, and the cursor of the next page.

    `keys` must identify a row (end with its id); `key_of(row)` gives the same values in Python.
    """
    if cursor:
        statement = statement.where(_after(keys, decode_cursor(cursor, *kinds), descending))
    order = [k.desc() if descending else k.asc() for k in keys]
    rows = list(session.scalars(statement.order_by(*order).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode_cursor(*key_of(rows[-1]))


def offset_of(cursor: str | None) -> int:
    """The offset a cursor of an offset-paged list stands for (0 without one)."""
    if not cursor:
        return 0
    (offset,) = decode_cursor(cursor, int)
    if not isinstance(offset, int) or offset < 0:
        raise InvalidCursor(details={"cursor": cursor[:64]})
    return offset
