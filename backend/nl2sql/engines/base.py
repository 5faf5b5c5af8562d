"""The generator interface every SQL engine implements: question in, SQL out.

Engines import neither FastAPI nor the database session: inputs in, result out.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio.to_thread

from backend.connections.snapshot import SchemaSnapshot
from backend.semantic.layer import SemanticLayer

if TYPE_CHECKING:
    from backend.nl2sql.guard import ParsedSql


@dataclass(frozen=True, slots=True)
class Turn:
    """An earlier exchange of the same chat session, oldest first."""

    question: str
    sql: str | None
    """The SQL that answered it, or None when it failed or the engine declined."""


@dataclass(frozen=True, slots=True)
class Example:
    """A question known to be answered by `sql` (a query template or an earlier success)."""

    question: str
    sql: str
    verified: bool = False


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    question: str
    schema: SchemaSnapshot
    history: list[Turn] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    dialect: str = "sqlite"
    """sqlglot dialect name of the target database."""
    row_cap: int = 1000
    model: str | None = None
    repair_of: str | None = None
    """SQL that failed before (guard or database), for engines that repair."""
    repair_error: str | None = None
    semantic: SemanticLayer | None = None
    """The connection's semantic layer (hidden tables and columns already removed from
    `schema`), or None when the connection has none."""


@dataclass(frozen=True, slots=True)
class Generation:
    sql: str
    explanation: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str | None = None
    recognised: dict[str, object] = field(default_factory=dict)
    """What the engine understood (tables, columns, values, intents), for explanations."""
    confidence: float | None = None
    """How sure the engine is of its reading, 0-1 (None: the engine does not say)."""
    parsed: ParsedSql | None = field(default=None, compare=False, repr=False)
    """`guard.parse_sql` of `sql` when the engine parsed it anyway: the guard takes that tree
    instead of parsing the same text again."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A reading the engine offers instead of answering: a choice a client can show."""

    text: str
    """The interpretation in words, or a question the user could ask instead."""
    sql: str | None = None
    """The SQL that reading would run, when the engine could build it."""
    confidence: float | None = None

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"text": self.text}
        if self.sql is not None:
            out["sql"] = self.sql
        if self.confidence is not None:
            out["confidence"] = round(self.confidence, 3)
        return out


class GenerationError(Exception):
    """Base of generator failures (the pipeline maps them to API errors)."""


class QuestionNotUnderstood(GenerationError):
    """The engine declined rather than guess; `recognised` says what it did understand."""

    def __init__(
        self,
        message: str,
        *,
        recognised: dict[str, object] | None = None,
        suggestions: list[Suggestion] | None = None,
        confidence: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.recognised = recognised or {}
        self.suggestions = suggestions or []
        """Closest readings, best first; a client may offer them as choices."""
        self.confidence = confidence
        """The confidence of the best reading when it was too weak to answer with."""


class SqlGenerator(ABC):
    name: str = "base"
    """Registry name: `builtin`, `openai`, `anthropic`."""
    supports_repair: bool = False
    """Whether the pipeline may hand a failing SQL back for another attempt."""
    waits_on_network: bool = False
    """Whether generating waits on a remote service (an LLM): the pipeline then awaits
    `generate_async` with nothing held, instead of running `generate` on a worker thread."""
    uses_examples: bool = True
    """Whether `GenerationRequest.examples` is read (the pipeline skips looking them up if not)."""

    @abstractmethod
    def generate(self, request: GenerationRequest) -> Generation:
        """Return SQL for the question, or raise `QuestionNotUnderstood` / `GenerationError`."""

    async def generate_async(self, request: GenerationRequest) -> Generation:
        """`generate` for callers on an event loop; generators that wait on the network override
        it so that waiting holds no thread."""
        return await anyio.to_thread.run_sync(self.generate, request)
