"""Errors of the nl2sql domain: guard refusals, declines, and failures of the LLM providers.

LLM failures are both API errors (status and code on the class) and `GenerationError`s, so the
pipeline catches every generator failure in one `except GenerationError` and the error handler
still renders the right status.
"""

from __future__ import annotations

from backend.connections.errors import TargetDatabaseError
from backend.core.errors import (
    AppError,
    BadRequest,
    Conflict,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)
from backend.nl2sql.engines.base import GenerationError

_REPAIRABLE_KINDS = (None, "query_failed", "out_of_resources")
"""Failures of a user's database that a rewritten query may avoid; unreachable servers, refused
passwords and timeouts are not the SQL's fault."""


class GuardRefused(BadRequest):
    """The guard refused the SQL; `details["rule"]` names the rule that refused it."""

    code = "sql_refused"
    message = "The SQL was refused by the guard."


class SqlReadsHidden(GuardRefused):
    """The SQL reads a table or column the connection's semantic layer hides."""

    code = "sql_reads_hidden"
    message = "The SQL reads a table or column the semantic layer hides."


class SqlNotParseable(GuardRefused):
    """A refusal by the first rule: the SQL must parse in the connection's dialect."""

    code = "sql_not_parseable"
    message = "The SQL could not be parsed."


class QuestionNotUnderstoodError(ValidationFailed):
    """The generator declined rather than guess.

    `details["recognised"]` says what it did understand; `details["suggestions"]` lists the
    closest readings, best first, as `{text, sql?, confidence?}` a client can offer as choices
    (empty when the engine has none); `details["confidence"]` is the best reading's score when
    it was too weak to answer with.
    """

    code = "question_not_understood"
    message = "The question was not understood."


class GenerationFailed(ValidationFailed):
    code = "generation_failed"
    message = "The generator could not produce SQL for this question."


class UnknownGenerator(ValidationFailed):
    code = "unknown_generator"
    message = "No generator of that name."


class NoConnectionChosen(ValidationFailed):
    code = "no_connection"
    message = "Choose a connection: the session has none and the request names none."


class LlmProviderError(UpstreamError, GenerationError):
    """The provider refused the request, failed, or kept failing after the retries."""

    code = "llm_provider_error"
    message = "The language model provider returned an error."


class LlmTimeout(UpstreamTimeout, GenerationError):
    code = "llm_timeout"
    message = "The language model provider did not answer in time."


class LlmReplyInvalid(UpstreamError, GenerationError):
    """The provider answered, but not with something that holds a SQL query."""

    code = "llm_reply_invalid"
    message = "The language model's reply did not contain a usable SQL query."


class LlmNotConfigured(BadRequest, GenerationError):
    """The chosen generator is unknown or lacks its settings (an API key)."""

    code = "llm_not_configured"
    message = "This generator is not configured on the server."


class QueryNotFound(NotFound):
    code = "query_not_found"
    message = "No recorded query with that id."


class ExportNotPossible(Conflict):
    """The recorded query cannot be re-run for an export (it failed, or lost its connection)."""

    code = "export_not_possible"
    message = "This query cannot be exported."


class AskCancelled(AppError):
    """The client went away before the answer was ready (a streamed ask whose connection
    closed); recorded, never sent."""

    status_code = 499
    code = "cancelled"
    message = "The client disconnected before the answer was ready; the work was stopped."


class DraftConnectionMismatch(ValidationFailed):
    code = "draft_connection_mismatch"
    message = "The draft was written for another connection; run it on the connection it names."


def is_repairable(exc: BaseException) -> bool:
    """Whether a model that wrote the SQL is given this failure to write it again."""
    if isinstance(exc, GuardRefused):
        return True
    return isinstance(exc, TargetDatabaseError) and exc.details.get("kind") in _REPAIRABLE_KINDS
