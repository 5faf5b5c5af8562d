"""Errors of the evaluations domain."""

from __future__ import annotations

from backend.core.errors import AppError, Conflict, NotFound, ValidationFailed


class GoldenQuestionNotFound(NotFound):
    code = "golden_question_not_found"
    message = "No golden question with that id on this connection."


class GoldenQuestionExists(Conflict):
    code = "golden_question_exists"
    message = "That question is already in the connection's golden set."


class EvaluationRunNotFound(NotFound):
    code = "evaluation_not_found"
    message = "No evaluation with that id on this connection."


class GoldenSetEmpty(ValidationFailed):
    code = "golden_set_empty"
    message = "The connection's golden set has no questions to evaluate."


class GoldenSqlRefused(ValidationFailed):
    code = "golden_sql_refused"
    message = "A gold SQL does not pass the guard on this connection."


class GoldenUploadInvalid(ValidationFailed):
    code = "golden_upload_invalid"
    message = "The uploaded golden set could not be read."


class GoldenUploadTooLarge(AppError):
    status_code = 413
    code = "golden_upload_too_large"
    message = "The uploaded golden set is too large."


class EvaluationNotCancellable(Conflict):
    code = "evaluation_not_cancellable"
    message = "The evaluation has already finished."
