"""Errors of the connections domain, including failures of users' databases."""

from backend.core.errors import (
    Conflict,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
    ValidationFailed,
)


class ConnectionNotFound(NotFound):
    code = "connection_not_found"
    message = "Connection not found."


class ConnectionPathNotAllowed(ValidationFailed):
    code = "connection_path_not_allowed"
    message = "This database file is outside the directories connections may use."


class ConnectionRefusedByPolicy(ValidationFailed):
    """The network policy does not let connections reach this host or port."""

    code = "connection_refused_by_policy"
    message = "Connections may not reach this server (see the network policy in the settings)."


class QueryResultTooLarge(ValidationFailed):
    """A single value of the result is larger than a whole result may be."""

    code = "result_too_large"
    message = "A value of the result is larger than a result may be; select less of it."


class TargetDatabaseError(UpstreamError):
    """The user's database refused the query or could not be reached."""

    code = "target_database_error"
    message = "The database returned an error."


class TargetDatabaseTimeout(UpstreamTimeout):
    code = "target_database_timeout"
    message = "The database did not answer within the time limit."


class UnknownDatabaseType(ValidationFailed):
    code = "unknown_database_type"
    message = "Unknown database type; use sqlite, postgresql, mysql or duckdb."


class InvalidConnectionSettings(ValidationFailed):
    code = "invalid_connection_settings"
    message = "These connection settings are not valid for this database type."


class ConnectionNameTaken(Conflict):
    code = "connection_name_taken"
    message = "You already have a connection with this name."


class ConnectionSecretUnreadable(Conflict):
    """The stored password cannot be decrypted with the configured keys."""

    code = "connection_secret_unreadable"
    message = "The stored password of this connection cannot be decrypted; set it again."
