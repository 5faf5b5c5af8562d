"""Errors of the chat domain."""

from backend.core.errors import Conflict, NotFound


class ChatSessionNotFound(NotFound):
    code = "chat_session_not_found"
    message = "Chat session not found."


class ChatMessageNotFound(NotFound):
    code = "message_not_found"
    message = "Chat message not found."


class MessageNotADraft(Conflict):
    code = "message_not_a_draft"
    message = "This message is not a draft answer (`execute: false`) waiting to be run."
