"""Errors of the auth domain."""

from backend.core.errors import Conflict, NotFound


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "User not found."


class EmailAlreadyRegistered(Conflict):
    code = "email_already_registered"
    message = "An account with this email already exists."
