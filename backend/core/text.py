"""Text the platform can store: no NUL (PostgreSQL's text types cannot hold it), no lone
UTF-16 surrogate (it cannot be encoded), and a bounded length where a column needs one.

Pure functions, imported by the request guard (`core.hygiene`), the platform engine
(`core.db`, which cleans every statement's parameters) and the LLM engines.
"""

from __future__ import annotations

import json
import re
from typing import Any

REPLACEMENT = "\ufffd"
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str) -> str | None:
    """Why `value` cannot be accepted as text (`nul_character`, `lone_surrogate`), or None."""
    match = _UNSTORABLE.search(value)
    if match is None:
        return None
    return "nul_character" if match.group(0) == "\x00" else "lone_surrogate"


def clean_text(value: str, max_length: int | None = None) -> str:
    """`value` made storable: NUL and lone surrogates become U+FFFD, and it is cut to
    `max_length` characters (with an ellipsis) when given."""
    if _UNSTORABLE.search(value) is not None:
        value = _UNSTORABLE.sub(REPLACEMENT, value)
    if max_length is not None and len(value) > max_length:
        value = value[: max(0, max_length - 1)] + "…"
    return value


def clean_value(value: Any) -> Any:
    """`value` (JSON-like: dicts, lists, strings, scalars) with every string cleaned, keys too.
    Returns the same object when nothing needed cleaning."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        cleaned = {clean_value(k): clean_value(v) for k, v in value.items()}
        return value if _same_items(value, cleaned) else cleaned
    if isinstance(value, (list, tuple)):
        items = [clean_value(v) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, tuple) else items
    return value


def _same_items(before: dict[Any, Any], after: dict[Any, Any]) -> bool:
    return len(before) == len(after) and all(
        k in before and before[k] is v for k, v in after.items()
    )


def dumps_clean(value: Any) -> str:
    """The JSON serializer of the platform engine: text that any JSON column can store."""
    text = json.dumps(value)
    # Cheap test first: an escaped NUL or surrogate is the only way they reach the text.
    if "\\u0000" in text or "\\ud" in text:
        text = json.dumps(clean_value(value))
    return text
