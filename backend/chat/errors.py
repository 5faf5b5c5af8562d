"""Errors of the chat domain."""

from backend.core.errors import NotFound


class ChatSessionNotFound(NotFound):
    code = "chat_session_not_found"
    message = "Chat session not found."
