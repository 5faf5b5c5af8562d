"""FastAPI dependencies of the connections domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from backend.auth.deps import Principal, require_scopes
from backend.auth.scopes import Scope
from backend.core.config import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ConnectionsReader = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_READ))]
ConnectionsWriter = Annotated[Principal, Depends(require_scopes(Scope.CONNECTIONS_WRITE))]
