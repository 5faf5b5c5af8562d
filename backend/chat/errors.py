"""Errors of the chat domain."""

from backend.core.errors import NotFound, ValidationFailed


class ChatSessionNotFound(NotFound):
    code = "chat_session_not_found"
    message = "Chat session not found."


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"
    message = "The cursor is not valid for this list."
