"""HTTP endpoints of auth (/auth/...) and API keys (/api-keys)."""

from __future__ import annotations

import asyncio
import weakref
from functools import partial
from typing import Annotated

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request, Response

from backend.auth import api_keys as api_keys_service
from backend.auth import service as auth_service
from backend.auth.deps import (
    AppSettings,
    ReleasedPrincipal,
    SessionPrincipal,
    get_session_principal,
)
from backend.auth.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyRead,
    ChangePasswordRequest,
    LoginRequest,
    LogoutRequest,
    PasswordForm,
    RefreshRequest,
    RegisterRequest,
    TokenPair,
    UserRead,
    UserUpdate,
)
from backend.auth.tokens import IssuedTokens, rotate_refresh_token
from backend.core.context import ClientContext, ClientContextDep
from backend.core.db import SessionDep
from backend.core.errors import error_responses
from backend.core.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, CursorParam
from backend.core.schemas import Page

router = APIRouter(prefix="/auth", tags=["auth"])
api_keys_router = APIRouter(prefix="/api-keys", tags=["api-keys"])


def _token_pair(issued: IssuedTokens) -> TokenPair:
    return TokenPair(
        access_token=issued.access_token,
        refresh_token=issued.refresh_token,
        expires_in=issued.expires_in,
    )


@router.post(
    "/register",
    status_code=201,
    summary="Create an account (when registration is open)",
    responses=error_responses(403, 409, 422),
)
async def register(data: RegisterRequest, request: Request, context: ClientContextDep) -> UserRead:
    """Creates a viewer account with an email, a password and a name. Refused with 403 when the
    admin closed registration (config key `auth.registration_open`) and 409 when the email is
    taken. Sign in afterwards with `POST /auth/login`.
    """
    # One thread hop, on the sign-ins' allowance (it hashes a password as they do).
    user = await anyio.to_thread.run_sync(
        partial(
            auth_service.register_user,
            request.app.state.session_factory,
            data=data,
            context=context,
        ),
        limiter=_sign_in_threads(),
    )
    return UserRead.model_validate(user)


SIGN_IN_THREADS = 8
"""Sign-ins one process runs at once, on a thread allowance of their own: a burst of sign-ins
neither takes the default thread pool from other endpoints nor queues behind asks, and at most
this many password hashes (19 MiB each) are in memory at once."""
_sign_in_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = (
    weakref.WeakKeyDictionary()
)


def _sign_in_threads() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _sign_in_limiters.get(loop)
    if limiter is None:
        limiter = _sign_in_limiters[loop] = anyio.CapacityLimiter(SIGN_IN_THREADS)
    return limiter


async def _sign_in(
    request: Request, *, email: str, password: str, context: ClientContext
) -> TokenPair:
    """One thread hop for the whole sign-in (read, hash with nothing held, one short write)."""
    issued = await anyio.to_thread.run_sync(
        partial(
            auth_service.login,
            request.app.state.session_factory,
            request.app.state.settings,
            email=email,
            password=password,
            context=context,
        ),
        limiter=_sign_in_threads(),
    )
    return _token_pair(issued)


@router.post(
    "/login",
    summary="Sign in with email and password",
    responses=error_responses(401, 422, 429),
)
async def login(data: LoginRequest, request: Request, context: ClientContextDep) -> TokenPair:
    """Checks the email and password and starts a user session: the answer holds a short-lived
    access token (send it as `Authorization: Bearer <token>`) and a refresh token. Repeated
    failures are throttled per account and per client (429 with `Retry-After`).
    """
    return await _sign_in(request, email=data.email, password=data.password, context=context)


@router.post(
    "/token",
    summary="Sign in with the OAuth2 password form (the docs page's Authorize button)",
    responses=error_responses(401, 422, 429),
)
async def token(
    form: Annotated[PasswordForm, Depends()], request: Request, context: ClientContextDep
) -> TokenPair:
    """The same sign-in as `POST /auth/login`, with the OAuth2 password form fields (`username` is
    the email). Used by the interactive docs' Authorize button.
    """
    return await _sign_in(request, email=form.username, password=form.password, context=context)


@router.post(
    "/refresh",
    summary="Exchange a refresh token for a new pair (the old one is revoked)",
    responses=error_responses(401, 422),
)
def refresh(
    data: RefreshRequest, session: SessionDep, settings: AppSettings, context: ClientContextDep
) -> TokenPair:
    """Rotates a refresh token: the presented token is revoked and a new access/refresh pair is
    returned. Presenting an already-used refresh token revokes its whole family (replay detection)
    and answers 401.
    """
    issued = rotate_refresh_token(session, settings, raw_token=data.refresh_token, context=context)
    return _token_pair(issued)


@router.post(
    "/logout",
    status_code=204,
    summary="End this session and revoke its refresh tokens",
    responses=error_responses(401, 403),
)
def logout(
    principal: SessionPrincipal,
    session: SessionDep,
    context: ClientContextDep,
    data: LogoutRequest | None = None,
) -> Response:
    """Ends the user session the access token belongs to and revokes its refresh tokens. Needs a
    signed-in user session (an API key is refused with 403).
    """
    assert principal.user_session_id is not None  # noqa: S101 - SessionPrincipal guarantees it
    auth_service.logout(
        session,
        user=principal.user,
        user_session_id=principal.user_session_id,
        refresh_token=data.refresh_token if data else None,
        context=context,
    )
    return Response(status_code=204)


@router.post(
    "/logout-all",
    status_code=204,
    summary="End every session of the user and revoke every refresh token",
    responses=error_responses(401, 403),
)
def logout_all(
    principal: SessionPrincipal, session: SessionDep, context: ClientContextDep
) -> Response:
    """Ends every user session of the caller and revokes all of their refresh tokens, everywhere."""
    auth_service.logout_all(session, user=principal.user, context=context)
    return Response(status_code=204)


@router.get("/me", summary="The signed-in user", responses=error_responses(401))
async def read_me(principal: ReleasedPrincipal) -> UserRead:
    """The profile of the caller (user session or API key owner): email, name, role, token usage,
    preferences.
    """
    # One thread hop for one read of the caller (user and session in one query), in a session
    # closed before the answer is built: nothing else of this request waits for a thread.
    return UserRead.model_validate(principal.user)


@router.patch(
    "/me", summary="Update name, company or preferences", responses=error_responses(401, 403, 422)
)
def update_me(
    data: UserUpdate, principal: SessionPrincipal, session: SessionDep, context: ClientContextDep
) -> UserRead:
    """Changes the caller's own name, company or preferences; fields left out stay as they are.
    Needs a user session.
    """
    user = auth_service.update_profile(session, user=principal.user, data=data, context=context)
    return UserRead.model_validate(user)


@router.post(
    "/change-password",
    summary="Change the password; ends every session and starts a new one",
    responses=error_responses(401, 403, 422),
)
async def change_password(
    data: ChangePasswordRequest,
    principal: ReleasedPrincipal,
    request: Request,
    settings: AppSettings,
    context: ClientContextDep,
) -> TokenPair:
    """Checks the current password, stores the new one, ends every session of the user (all refresh
    tokens are revoked) and returns a fresh token pair for this client.
    """
    # The caller is read in a session closed before the hashes (no connection held meanwhile).
    get_session_principal(principal)
    issued = await anyio.to_thread.run_sync(
        partial(
            auth_service.change_password,
            request.app.state.session_factory,
            settings,
            user=principal.user,
            current_password=data.current_password,
            new_password=data.new_password,
            context=context,
        ),
        limiter=_sign_in_threads(),
    )
    return _token_pair(issued)


@api_keys_router.post(
    "",
    status_code=201,
    summary="Create an API key (the secret is shown only in this answer)",
    responses=error_responses(401, 403, 422),
)
def create_api_key(
    data: ApiKeyCreate, principal: SessionPrincipal, session: SessionDep, context: ClientContextDep
) -> ApiKeyCreated:
    """Creates a key with the given scopes, optionally restricted to some connections and with an
    expiry. The secret (`key`) is returned only in this answer; send it as `X-API-Key`. Needs a user
    session.
    """
    key, secret = api_keys_service.create_api_key(
        session, owner=principal.user, data=data, context=context
    )
    return ApiKeyCreated(**api_keys_service.api_key_read(key).model_dump(), key=secret)


@api_keys_router.get("", summary="The caller's API keys", responses=error_responses(400, 401, 403))
def list_api_keys(
    principal: SessionPrincipal,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    cursor: CursorParam = None,
) -> Page[ApiKeyRead]:
    """The caller's API keys, newest first, without secrets. Page with `limit` and the `next_cursor`
    of the previous page.
    """
    keys, next_cursor = api_keys_service.list_api_keys(
        session, owner=principal.user, limit=limit, cursor=cursor
    )
    return Page(items=[api_keys_service.api_key_read(k) for k in keys], next_cursor=next_cursor)


@api_keys_router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key (401 from its next request on)",
    responses=error_responses(401, 403, 404),
)
def revoke_api_key(
    key_id: str, principal: SessionPrincipal, session: SessionDep, context: ClientContextDep
) -> Response:
    """Revokes one of the caller's API keys; requests made with it are refused with 401 from then
    on.
    """
    api_keys_service.revoke_api_key(session, owner=principal.user, key_id=key_id, context=context)
    return Response(status_code=204)
