"""The repair loop: SQL that fails the guard or the database goes back to the model.

The caller passes `check`, which takes the SQL through whatever must accept it (the guard, then
the executor) and returns the result, or raises. A failure of one of the `repairable` kinds is
sent back to a generator that `supports_repair`, with its message, at most `max_repairs` times.
Tokens of every attempt are summed, so a failed ask still records what it cost.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
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


def generate_with_repair(
    generator: SqlGenerator,
    request: GenerationRequest,
    check: Callable[[str], T],
    *,
    repairable: tuple[type[Exception], ...],
    max_repairs: int = DEFAULT_MAX_REPAIRS,
) -> RepairOutcome[T]:
    """Generate, check, and repair up to `max_repairs` times.

    Generator errors (`GenerationError`, e.g. `LlmTimeout`) propagate at once; errors of `check`
    outside `repairable` do too. A generator that does not support repair gets one attempt.
    """
    attempts_left = max_repairs if generator.supports_repair else 0
    prompt_tokens = completion_tokens = 0
    failures: list[FailedAttempt] = []
    current = request
    while True:
        generation = generator.generate(current)
        prompt_tokens += generation.prompt_tokens
        completion_tokens += generation.completion_tokens
        total = dataclasses.replace(
            generation, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        try:
            result = check(generation.sql)
        except repairable as exc:
            failures.append(FailedAttempt(generation.sql, describe_error(exc)))
            if attempts_left == 0:
                return RepairOutcome(generation=total, error=exc, failures=failures)
            attempts_left -= 1
            current = dataclasses.replace(
                request, repair_of=generation.sql, repair_error=failures[-1].error
            )
            continue
        return RepairOutcome(generation=total, result=result, failures=failures)
