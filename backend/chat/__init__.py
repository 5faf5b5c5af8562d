"""Chat sessions and their messages: the conversation around questions."""
