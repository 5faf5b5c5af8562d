"""Errors of the admin domain."""

from backend.core.errors import NotFound, ValidationFailed


class ConfigKeyNotFound(NotFound):
    code = "unknown_config_key"
    message = "There is no such config key."


class InvalidConfigValue(ValidationFailed):
    code = "invalid_config_value"
    message = "The value does not fit this config key."
