"""YAML from users, read within bounds: libyaml's safe loader where PyYAML has it, and a scan
of the event stream before anything is built, refusing anchors and aliases (a few lines can
expand into an enormous structure), too many events and nesting too deep.

The pure-Python parser takes seconds of CPU for a document at an upload's size limit
(`scripts/bench/bench_layer_import.py`); libyaml takes a tenth of that."""

from __future__ import annotations

from typing import Any

import yaml

SAFE_LOADER: type[yaml.SafeLoader] | type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""The safe loader (no tag builds an object), in C where PyYAML has libyaml."""


class YamlRefused(ValueError):
    """The document is well formed but outside the bounds a user's upload may have."""


def scan(
    text: str,
    *,
    max_events: int,
    max_depth: int,
    loader: type[yaml.SafeLoader] | type[Any] = SAFE_LOADER,
) -> None:
    """Refuse (`YamlRefused`) anchors, aliases, more than `max_events` events and nesting past
    `max_depth`; a malformed document raises PyYAML's own `yaml.YAMLError`."""
    depth = 0
    for count, event in enumerate(yaml.parse(text, Loader=loader)):
        if count > max_events:
            raise YamlRefused("the document has too many items")
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise YamlRefused("YAML anchors and aliases are not allowed")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                raise YamlRefused(f"the document nests deeper than {max_depth} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def load_bounded(text: str, *, max_events: int, max_depth: int) -> Any:
    """`scan`, then build the document with the safe loader."""
    scan(text, max_events=max_events, max_depth=max_depth)
    return yaml.load(text, Loader=SAFE_LOADER)  # noqa: S506 - the safe loader
