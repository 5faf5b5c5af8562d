"""Related words: a question word that is no schema name, matched to one by meaning.

"performer" for an `artist` table, "directed" for a `director` column, "taught" for
`teaches`: when a content word of the question links to nothing by spelling, abbreviation,
synonym list or the semantic layer, its static word embedding is compared with the words of
every table and column name. A clear best match (similar enough, and ahead of the runner-up by
a margin) becomes a weak link, which the confidence counts as such.

The embeddings are WordLlama's (the `wordllama` package ships them, 16 MB, in its wheel): they
are loaded once per process from the installed package, never downloaded, run on the CPU and
give the same answer every time. Without the package the engine links by spelling alone.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from backend.nl2sql.engines.builtin.linking import ColumnRef, SchemaIndex, TableRef

logger = logging.getLogger(__name__)

MIN_SIMILARITY = 0.45
"""Cosine similarity a name needs to stand for the word."""
MIN_MARGIN = 0.08
"""How far ahead of the next name the best one must be (no guess between two)."""
MIN_WORD_LENGTH = 4

_LOCK = threading.Lock()
_MODEL: Any = None
_UNAVAILABLE = False


def _model() -> Any:
    """The WordLlama model from the installed package's own files, or None."""
    global _MODEL, _UNAVAILABLE
    if _MODEL is not None or _UNAVAILABLE:
        return _MODEL
    with _LOCK:
        if _MODEL is None and not _UNAVAILABLE:
            try:
                import wordllama

                _MODEL = wordllama.WordLlama.load(
                    cache_dir=Path(wordllama.__file__).parent, disable_download=True
                )
            except Exception:  # noqa: BLE001 - no package or no shipped files: spelling only
                logger.warning("word embeddings unavailable; linking by spelling only")
                _UNAVAILABLE = True
    return _MODEL


@dataclass(slots=True)
class NameVectors:
    """The embedded words of a schema's table and column names (one matrix per index)."""

    refs: list[tuple[TableRef | None, ColumnRef | None]]
    vectors: Any


def name_vectors(index: SchemaIndex) -> NameVectors | None:
    model = _model()
    if model is None:
        return None
    names: list[str] = []
    refs: list[tuple[TableRef | None, ColumnRef | None]] = []
    for table in index.tables.values():
        names.append(" ".join(table.words))
        refs.append((table, None))
    for col in index.columns:
        if col.is_primary_key or not col.words or col.words[-1] == "id":
            continue
        names.append(" ".join(col.words))
        refs.append((None, col))
    if not names:
        return None
    return NameVectors(refs, model.embed(names, norm=True))


def related_name(
    index: SchemaIndex, word: str
) -> tuple[TableRef | None, ColumnRef | None, float] | None:
    """The one table or column `word` most plausibly stands for, with its similarity."""
    if len(word) < MIN_WORD_LENGTH or not word.isalpha():
        return None
    names = index.name_vectors()
    if names is None:
        return None
    model = _model()
    sims = names.vectors @ model.embed([word], norm=True)[0]
    order = sims.argsort()[::-1]
    best = float(sims[order[0]])
    runner_up = float(sims[order[1]]) if len(order) > 1 else 0.0
    if best < MIN_SIMILARITY or best - runner_up < MIN_MARGIN:
        return None
    table, col = names.refs[int(order[0])]
    return table, col, best
