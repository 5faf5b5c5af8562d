"""API scopes and what each role may hold."""

from __future__ import annotations

from enum import StrEnum

from backend.auth.models import ROLE_ADMIN, ROLE_VIEWER


class Scope(StrEnum):
    CHAT_READ = "chat:read"
    CHAT_WRITE = "chat:write"
    CONNECTIONS_READ = "connections:read"
    CONNECTIONS_WRITE = "connections:write"
    QUERY_SQL = "query:sql"
    TEMPLATES_READ = "templates:read"
    TEMPLATES_WRITE = "templates:write"
    ANALYTICS_READ = "analytics:read"
    ADMIN = "admin"


ALL_SCOPES = frozenset(Scope)
ROLE_SCOPES: dict[str, frozenset[Scope]] = {
    ROLE_VIEWER: frozenset(s for s in Scope if s is not Scope.ADMIN),
    ROLE_ADMIN: ALL_SCOPES,
}
