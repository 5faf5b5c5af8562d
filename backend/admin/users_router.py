"""Admin endpoints over users: list them, change a role or the active flag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from backend.auth import service as auth_service
from backend.auth.deps import AdminUser
from backend.auth.schemas import AdminUserUpdate, UserRead
from backend.core.context import ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import ErrorResponse
from backend.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorParam
from backend.core.schemas import Page

router = APIRouter(prefix="/admin/users", tags=["admin"])


@router.get(
    "",
    summary="List users, newest first",
    responses={code: {"model": ErrorResponse} for code in (400, 401, 403)},
)
def list_users(
    admin: AdminUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
    role: Annotated[str | None, Query(pattern="^(viewer|admin)$")] = None,
    is_active: bool | None = None,
) -> Page[UserRead]:
    """Every account, newest first (admins only). Page with `limit` and `cursor`."""
    users, next_cursor = auth_service.list_users(
        session, limit=limit, cursor=cursor, role=role, is_active=is_active
    )
    return Page(items=[UserRead.model_validate(u) for u in users], next_cursor=next_cursor)


@router.patch(
    "/{user_id}",
    summary="Change a user's role or active flag (effective on their next request)",
    responses={code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 422)},
)
def update_user(
    user_id: str,
    data: AdminUserUpdate,
    admin: AdminUser,
    session: SessionDep,
    context: ClientContextDep,
) -> UserRead:
    """Changes a user's role (viewer/admin) or deactivates them (admins only). Refused with 409 when
    it would leave no active admin.
    """
    user = auth_service.update_user_by_admin(
        session, admin=admin, user_id=user_id, data=data, context=context
    )
    return UserRead.model_validate(user)
