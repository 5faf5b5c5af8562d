"""Errors of the connections domain, including failures of users' databases."""

from backend.core.errors import NotFound, UpstreamError, UpstreamTimeout, ValidationFailed


class ConnectionNotFound(NotFound):
    code = "connection_not_found"
    message = "Connection not found."


class ConnectionPathNotAllowed(ValidationFailed):
    code = "connection_path_not_allowed"
    message = "This database file is outside the directories connections may use."


class TargetDatabaseError(UpstreamError):
    """The user's database refused the query or could not be reached."""

    code = "target_database_error"
    message = "The database returned an error."


class TargetDatabaseTimeout(UpstreamTimeout):
    code = "target_database_timeout"
    message = "The database did not answer within the time limit."
