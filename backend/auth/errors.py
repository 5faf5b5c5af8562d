"""Errors of the auth domain."""

from backend.core.errors import (
    Conflict,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)


class UserNotFound(NotFound):
    code = "user_not_found"
    message = "User not found."


class EmailAlreadyRegistered(Conflict):
    code = "email_already_registered"
    message = "An account with this email already exists."


class RegistrationClosed(Forbidden):
    code = "registration_closed"
    message = "Registration is closed; ask an administrator for an account."


class WeakPassword(ValidationFailed):
    code = "weak_password"
    message = "The password does not meet the password policy."


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    message = "Incorrect email or password."


class AccountDeactivated(Unauthorized):
    code = "account_deactivated"
    message = "This account is deactivated."


class LoginThrottled(RateLimited):
    code = "login_throttled"
    message = "Too many failed sign-in attempts; try again later."


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "Invalid, expired or revoked refresh token; sign in again."


class RefreshTokenReused(Unauthorized):
    code = "refresh_token_reused"
    message = "This refresh token was already used; every session of its login was ended."


class SessionRequired(Forbidden):
    code = "session_required"
    message = "This needs a signed-in session (a bearer token), not an API key."


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    message = "API key not found."


class ScopesExceedRole(Forbidden):
    code = "scopes_exceed_role"
    message = "An API key cannot hold scopes its owner's role does not have."


class UnknownConnections(ValidationFailed):
    code = "unknown_connections"
    message = "Some connection ids are not connections of yours."


class ExpiryInPast(ValidationFailed):
    """A rule of time the schema cannot state: an expiry that is already over."""

    code = "expiry_in_past"
    message = "The expiry must be in the future."


class CannotChangeOwnAccess(Conflict):
    code = "cannot_change_own_access"
    message = "Admins cannot change their own role or deactivate themselves."


class TokenQuotaExceeded(RateLimited):
    code = "token_quota_exceeded"
    message = "You have used your LLM token quota."


class WrongCurrentPassword(Forbidden):
    code = "wrong_current_password"
    message = "The current password is incorrect."
