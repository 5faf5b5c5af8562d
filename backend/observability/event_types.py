"""The one list of event names and audit actions; no domain invents its own strings."""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    SIGNED_UP = "signed_up"
    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    TOKEN_REFRESHED = "token_refreshed"
    ASKED = "asked"
    SQL_RAN = "sql_ran"
    TEMPLATE_RAN = "template_ran"
    EXPORTED = "exported"
    CONNECTION_CREATED = "connection_created"
    SCHEMA_REFRESHED = "schema_refreshed"
    JOB_SUBMITTED = "job_submitted"
    JOB_FINISHED = "job_finished"


class AuditAction(StrEnum):
    LOGIN_SUCCEEDED = "auth.login"
    LOGIN_FAILED = "auth.login_failed"
    LOGIN_THROTTLED = "auth.login_throttled"
    LOGOUT = "auth.logout"
    LOGOUT_ALL = "auth.logout_all"
    REGISTERED = "auth.register"
    REFRESH_TOKEN_REUSED = "auth.refresh_token_reused"
    PASSWORD_CHANGED = "auth.password_change"
    PROFILE_UPDATED = "auth.profile_update"
    API_KEY_CREATED = "api_key.create"
    API_KEY_REVOKED = "api_key.revoke"
    CONNECTION_CREATED = "connection.create"
    CONNECTION_UPDATED = "connection.update"
    CONNECTION_DELETED = "connection.delete"
    CONNECTION_TESTED = "connection.test"
    SCHEMA_REFRESHED = "connection.refresh_schema"
    SECRETS_ROTATED = "connection.rotate_keys"
    TEMPLATE_CREATED = "template.create"
    TEMPLATE_UPDATED = "template.update"
    TEMPLATE_DELETED = "template.delete"
    USER_UPDATED_BY_ADMIN = "admin.user_update"
    CONFIG_CHANGED = "admin.config_set"
    CONFIG_DELETED = "admin.config_delete"
    EXPORTED = "query.export"
    DATA_PRUNED = "maintenance.prune"
