"""Dependencies of the templates routes: who may read and who may write templates."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from backend.auth.deps import Principal, require_scopes, require_scopes_released
from backend.auth.scopes import Scope

TemplatesReader = Annotated[Principal, Depends(require_scopes(Scope.TEMPLATES_READ))]
TemplatesWriter = Annotated[Principal, Depends(require_scopes(Scope.TEMPLATES_WRITE))]
ReleasedTemplatesReader = Annotated[
    Principal, Depends(require_scopes_released(Scope.TEMPLATES_READ))
]
"""A reader resolved in a short session closed before the endpoint runs (template runs)."""
