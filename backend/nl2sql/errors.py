"""Errors of the question-to-SQL pipeline."""

from __future__ import annotations

from backend.core.errors import BadRequest, ValidationFailed


class GuardRefused(BadRequest):
    """The guard refused the SQL; `details["rule"]` names the rule that refused it."""

    code = "sql_refused"
    message = "The SQL was refused by the guard."


class SqlNotParseable(GuardRefused):
    """A refusal by the first rule: the SQL must parse in the connection's dialect."""

    code = "sql_not_parseable"
    message = "The SQL could not be parsed."


class QuestionNotUnderstoodError(ValidationFailed):
    """The generator declined; `details["recognised"]` says what it did understand."""

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
