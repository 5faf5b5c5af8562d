"""The layer as a file: YAML or JSON out, and a bounded, hostile-input-proof read back in.

Reading refuses, as 422 `semantic_layer_unreadable` or `semantic_layer_invalid`: more than
`MAX_IMPORT_BYTES`, text that is not UTF-8, YAML anchors and aliases (the "billion laughs"
expansion), nesting deeper than `MAX_DEPTH`, tags that build objects (only the safe loader
runs) and values JSON cannot hold (`!!binary`, `!!set`: their bytes would slip past the text
checks), NUL or lone surrogates in any text, and anything that is not a layer document.

YAML is read by libyaml (`CSafeLoader`) where PyYAML was built with it: the pure-Python parser
takes seconds of CPU for a document at the size limit (`scripts/bench/bench_layer_import.py`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import yaml
from pydantic import ValidationError

from backend.core import yaml_input
from backend.core.text import text_problem
from backend.semantic.errors import SemanticLayerInvalid, SemanticLayerUnreadable
from backend.semantic.layer import SemanticLayer

MAX_IMPORT_BYTES = 512 * 1024
MAX_DEPTH = 16
MAX_YAML_EVENTS = 200_000
YAML_LOADER: type[yaml.SafeLoader] | type[Any] = yaml_input.SAFE_LOADER
"""The safe loader, in C where PyYAML has libyaml (swapped by the import benchmark)."""
_SCALARS = (str, int, float, bool, type(None), dt.date)
"""What a layer document's leaves may be: JSON's scalars, and a YAML date (`today`)."""
FORMATS = ("yaml", "json")
MEDIA_TYPES = {"yaml": "application/yaml", "json": "application/json"}


def dump_layer(layer: SemanticLayer, fmt: str) -> str:
    """The document as the user keeps it: defaults left out, in the fields' order."""
    data = layer.model_dump(mode="json", exclude_defaults=True)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _unreadable(reason: str, **details: Any) -> SemanticLayerUnreadable:
    return SemanticLayerUnreadable(details={"reason": reason, **details})


def _check_yaml_events(text: str) -> None:
    try:
        yaml_input.scan(text, max_events=MAX_YAML_EVENTS, max_depth=MAX_DEPTH, loader=YAML_LOADER)
    except yaml_input.YamlRefused as exc:
        raise _unreadable(str(exc)) from exc
    except yaml.YAMLError as exc:
        raise _unreadable(f"not valid YAML: {str(exc).splitlines()[0][:200]}") from exc


def _check_values(value: Any) -> None:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _unreadable(f"the document nests deeper than {MAX_DEPTH} levels")
        if isinstance(item, str):
            problem = text_problem(item)
            if problem is not None:
                raise _unreadable(f"text must not contain {problem.replace('_', ' ')}s")
        elif isinstance(item, dict):
            for key, child in item.items():
                stack.append((key, depth + 1))
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        elif not isinstance(item, _SCALARS):
            raise _unreadable(
                f"values of YAML type {_yaml_kind(item)} are not allowed (text, numbers, "
                "true/false, dates, lists and mappings only)"
            )
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**63:
            raise _unreadable("integers must fit in 64 bits")
        elif isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            raise _unreadable("numbers must be finite")


def _yaml_kind(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return "!!binary"
    if isinstance(value, set | frozenset):
        return "!!set"
    return type(value).__name__


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "document"


def layer_from_data(data: Any) -> SemanticLayer:
    """Validate parsed data as a layer document; field errors name their path."""
    if not isinstance(data, dict):
        raise _unreadable("the document must be a mapping of the layer's fields")
    try:
        return SemanticLayer.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": _field_path(tuple(e["loc"])), "message": e["msg"]} for e in exc.errors()[:100]
        ]
        raise SemanticLayerInvalid.naming(errors) from None


def read_layer(raw: bytes, *, fmt: str | None = None) -> SemanticLayer:
    """Parse an uploaded YAML or JSON document (JSON when it starts with `{`, else YAML)."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise _unreadable(f"the file is larger than {MAX_IMPORT_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _unreadable("the file is not UTF-8 text") from exc
    if fmt is None:
        fmt = "json" if text.lstrip().startswith("{") else "yaml"
    try:
        if fmt == "json":
            data = json.loads(text, parse_constant=lambda name: _reject_constant(name))
        else:
            _check_yaml_events(text)
            data = yaml.load(text, Loader=YAML_LOADER)  # noqa: S506 - the safe loader
    except SemanticLayerUnreadable:
        raise
    except RecursionError as exc:
        raise _unreadable(f"the document nests deeper than {MAX_DEPTH} levels") from exc
    except (ValueError, OverflowError) as exc:
        # YAML's constructors raise ValueError too: a date like 2024-13-45.
        name = "JSON" if fmt == "json" else "YAML"
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise _unreadable(f"not valid {name}: {first}") from exc
    except yaml.YAMLError as exc:
        raise _unreadable(f"not valid YAML: {str(exc).splitlines()[0][:200]}") from exc
    _check_values(data)
    return layer_from_data(data)


def _reject_constant(name: str) -> Any:
    raise _unreadable(f"{name} is not a valid JSON number")
