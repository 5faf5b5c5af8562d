"""The repair loop: SQL that fails the guard or the database goes back to the model.

The caller passes `check`, which takes the SQL through whatever must accept it (the guard, then
the executor) and returns the result, or raises. A failure of one of the `repairable` kinds is
sent back to a generator that `supports_repair`, with its message, at most `max_repairs` times.
Tokens of every attempt are summed, so a failed ask still records what it cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from backend.nl2sql.engines.base import Generation, GenerationRequest, SqlGenerator

T = TypeVar("T")

DEFAULT_MAX_REPAIRS = 2
MAX_ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class FailedAttempt:
    sql: str
    error: str


@dataclass(slots=True)
class RepairOutcome(Generic[T]):
    generation: Generation
    """The last generation, with the token counts of all attempts."""
    result: T | None = None
    """What `check` returned for the accepted SQL; None when every attempt failed."""
    error: Exception | None = None
    """The last failure when every attempt failed (the caller records it, then raises it)."""
    failures: list[FailedAttempt] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.error is None


def describe_error(error: Exception) -> str:
    """The text a model needs to fix its SQL: the message and the database's own reason."""
    message = str(error)
    details = getattr(error, "details", None)
    if isinstance(details, dict):
        for key in ("reason", "problems", "errors"):
            if details.get(key):
                message = f"{message} ({details[key]})"
                break
    return message[:MAX_ERROR_CHARS]


class _RepairLoop(Generic[T]):
    """The bookkeeping of one repair loop: the request to send next, the tokens so far."""

    def __init__(
        self, generator: SqlGenerator, request: GenerationRequest, max_repairs: int
    ) -> None:
        self.request = request
        self.current = request
        self.attempts_left = max_repairs if generator.supports_repair else 0
        self.prompt_tokens = self.completion_tokens = 0
        self.failures: list[FailedAttempt] = []

    def generated(self, generation: Generation) -> Generation:
        """The generation with the tokens of every attempt so far."""
        self.prompt_tokens += generation.prompt_tokens
        self.completion_tokens += generation.completion_tokens
        return dataclasses.replace(
            generation, prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens
        )

    def failed(self, total: Generation, exc: Exception) -> RepairOutcome[T] | None:
        """The outcome when no attempt is left; otherwise None, and `current` is the repair."""
        self.failures.append(FailedAttempt(total.sql, describe_error(exc)))
        if self.attempts_left == 0:
            return RepairOutcome(generation=total, error=exc, failures=self.failures)
        self.attempts_left -= 1
        self.current = dataclasses.replace(
            self.request, repair_of=total.sql, repair_error=self.failures[-1].error
        )
        return None


def generate_with_repair(
    generator: SqlGenerator,
    request: GenerationRequest,
    check: Callable[[str], T],
    *,
    repairable: tuple[type[Exception], ...],
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    on_generated: Callable[[Generation], None] | None = None,
) -> RepairOutcome[T]:
    """Generate, check, and repair up to `max_repairs` times; `on_generated` hears of every
    generation before it is checked.

    Generator errors (`GenerationError`, e.g. `LlmTimeout`) propagate at once; errors of `check`
    outside `repairable` do too. A generator that does not support repair gets one attempt.
    """
    loop: _RepairLoop[T] = _RepairLoop(generator, request, max_repairs)
    while True:
        total = loop.generated(generator.generate(loop.current))
        if on_generated is not None:
            on_generated(total)
        try:
            result = check(total.sql)
        except repairable as exc:
            outcome = loop.failed(total, exc)
            if outcome is not None:
                return outcome
            continue
        return RepairOutcome(generation=total, result=result, failures=loop.failures)


async def generate_with_repair_async(
    generator: SqlGenerator,
    request: GenerationRequest,
    check: Callable[[str], Awaitable[T]],
    *,
    repairable: tuple[type[Exception], ...],
    max_repairs: int = DEFAULT_MAX_REPAIRS,
    on_generated: Callable[[Generation], Awaitable[None]] | None = None,
) -> RepairOutcome[T]:
    """`generate_with_repair` on an event loop: awaits `generator.generate_async` and `check`;
    `on_generated` hears of every generation before it is checked."""
    loop: _RepairLoop[T] = _RepairLoop(generator, request, max_repairs)
    while True:
        total = loop.generated(await generator.generate_async(loop.current))
        if on_generated is not None:
            await on_generated(total)
        try:
            result = await check(total.sql)
        except repairable as exc:
            outcome = loop.failed(total, exc)
            if outcome is not None:
                return outcome
            continue
        return RepairOutcome(generation=total, result=result, failures=loop.failures)
