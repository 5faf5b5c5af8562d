"""Errors of the feedback domain."""

from backend.core.errors import Forbidden, NotFound, ValidationFailed


class MessageNotAnAnswer(ValidationFailed):
    code = "message_not_an_answer"
    message = "Only an answer with SQL can be rated; this message is a question or has no SQL."


class FeedbackNotFound(NotFound):
    code = "feedback_not_found"
    message = "You have not rated this answer."


class ConnectionGone(ValidationFailed):
    code = "connection_gone"
    message = "The connection this answer ran on no longer exists; its SQL cannot be checked."


class ExampleNotFound(NotFound):
    code = "example_not_found"
    message = "Verified example not found."


class NotConnectionOwner(Forbidden):
    code = "not_connection_owner"
    message = "Only the connection's owner may approve its examples."


class TemplateHasParameters(ValidationFailed):
    code = "template_has_parameters"
    message = "A template with parameters cannot be an example; add its question and SQL instead."
