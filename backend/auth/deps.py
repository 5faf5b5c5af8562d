"""Who is calling: the bearer JWT or the `X-API-Key`, resolved to a principal with scopes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from backend.auth.api_keys import find_api_key_or_none, record_api_key_use
from backend.auth.errors import SessionRequired
from backend.auth.models import ApiKey, User, UserSession
from backend.auth.scopes import ROLE_SCOPES, Scope
from backend.auth.tokens import ACCESS_TOKEN_TYPE
from backend.core.config import Settings
from backend.core.db import SessionDep, utcnow
from backend.core.errors import AppError, Forbidden, Unauthorized
from backend.core.logs import annotate_log
from backend.core.security import TokenError, decode_jwt

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AdminUser",
    "AppSettings",
    "Credentials",
    "CurrentPrincipal",
    "CurrentUser",
    "DEFERRED_CREDENTIALS_OPENAPI",
    "Principal",
    "ReleasedPrincipal",
    "SessionPrincipal",
    "ensure_scopes",
    "get_principal",
    "access_token_claims",
    "principal_from_api_key",
    "principal_from_claims",
    "principal_from_jwt",
    "principal_of_session_row",
    "require_scopes",
    "require_scopes_deferred",
    "require_scopes_released",
    "credentials_refusal",
]

_CallT = TypeVar("_CallT", bound=Callable[..., Any])
_AUTHENTICATES = "_nlsql_authenticates"
_NEEDS_CREDENTIALS = "_nlsql_needs_credentials"

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False)


@dataclass(slots=True)
class Principal:
    """The authenticated caller: a user, and the API key used if any."""

    user: User
    scopes: frozenset[Scope]
    api_key: ApiKey | None = None
    allowed_connection_ids: frozenset[str] | None = None
    """Connections an API key is restricted to; None means all of the owner's."""
    user_session_id: str | None = None
    token_claims: dict[str, object] = field(default_factory=dict)

    def has_scope(self, scope: Scope) -> bool:
        return scope in self.scopes

    def require_connection(self, connection_id: str) -> None:
        """Raise `Forbidden` when an API key is not allowed to touch this connection."""
        if (
            self.allowed_connection_ids is not None
            and connection_id not in self.allowed_connection_ids
        ):
            raise Forbidden(
                "This API key may not use this connection.",
                details={"connection_id": connection_id},
            )


def _issued_before(claims: dict[str, object], instant: datetime | None) -> bool:
    if instant is None:
        return False
    iat = claims.get("iat")
    return isinstance(iat, int | float) and iat < int(instant.timestamp())


def access_token_claims(app: FastAPI, token: str) -> dict[str, object]:
    """The claims of a bearer access token whose signature, issuer, type and expiry hold
    (no database needed); raises `Unauthorized` otherwise."""
    settings = app.state.settings
    try:
        claims: dict[str, object] = decode_jwt(
            token,
            secret=settings.jwt_secret_value,
            issuer=settings.jwt_issuer,
            token_type=ACCESS_TOKEN_TYPE,
        )
    except TokenError as exc:
        raise Unauthorized("Invalid or expired access token.") from exc
    return claims


def principal_from_jwt(app: FastAPI, session: Session, token: str) -> Principal:
    """The caller of a bearer access token; raises `Unauthorized` when it is not valid now."""
    return principal_from_claims(session, access_token_claims(app, token))


def principal_from_claims(session: Session, claims: dict[str, object]) -> Principal:
    """The caller of an access token whose claims `access_token_claims` checked, as the
    database has it now: raises `Unauthorized` for an ended session, an inactive user or a
    token older than the last password change."""
    # Every access token belongs to a user session; logout, logout-all, a password change and
    # deactivation end sessions, which ends their access tokens on the very next request.
    # One query loads the user and checks the session.
    sid = claims.get("sid")
    row = (
        session.execute(
            select(User, UserSession.is_active)
            .join(UserSession, UserSession.user_id == User.id)
            .where(User.id == str(claims["sub"]), UserSession.id == str(sid))
        ).first()
        if isinstance(sid, str)
        else None
    )
    if row is None:
        raise Unauthorized("Invalid or expired access token.")
    return principal_of_session_row(claims, row[0], row[1])


def principal_of_session_row(
    claims: dict[str, object], user: User | None, session_is_active: bool | None
) -> Principal:
    """`principal_from_claims`' checks on what the database holds now, read by the caller (an
    ask reads them with the rest of what it needs in one statement): the token's user (None:
    no such user) and whether its session (`claims["sid"]`) is active (None: no such session
    of that user)."""
    sid = claims.get("sid")
    if user is None or session_is_active is None or not isinstance(sid, str):
        raise Unauthorized("Invalid or expired access token.")
    if user.id != str(claims["sub"]) or not user.is_active:
        raise Unauthorized("Invalid or expired access token.")
    if not session_is_active:
        raise Unauthorized("This session has ended; sign in again.")
    if _issued_before(claims, user.password_changed_at):
        raise Unauthorized("This access token was revoked; sign in again.")
    return Principal(
        user=user,
        scopes=ROLE_SCOPES.get(user.role, frozenset()),
        user_session_id=sid,
        token_claims=claims,
    )


def principal_from_api_key(app: FastAPI, session: Session, raw_key: str) -> Principal:
    """The owner of an API key, with the key's scopes and connections; raises `Unauthorized`."""
    key = find_api_key_or_none(session, raw_key)
    now = utcnow()
    if key is None or not key.is_active or key.revoked_at is not None:
        raise Unauthorized("Invalid or revoked API key.")
    if key.expires_at is not None and key.expires_at <= now:
        raise Unauthorized("This API key has expired.")
    owner = session.get(User, key.user_id)
    if owner is None or not owner.is_active:
        raise Unauthorized("Invalid or revoked API key.")
    permissions = key.permissions or {}
    requested = {s for s in permissions.get("scopes", []) if s in Scope.__members__.values()}
    # A key never grants more than its owner's role holds today.
    scopes = frozenset(Scope(s) for s in requested) & ROLE_SCOPES.get(owner.role, frozenset())
    connection_ids = permissions.get("connection_ids")
    # One atomic increment in the shared database: exact across processes and hosts, and
    # committed in a transaction of its own, so a crash or a failing request loses nothing.
    record_api_key_use(app.state.engine, key.id, now)
    return Principal(
        user=owner,
        scopes=scopes,
        api_key=key,
        allowed_connection_ids=frozenset(connection_ids) if connection_ids is not None else None,
    )


def _resolve_principal(
    request: Request, session: Session, token: str | None, api_key: str | None
) -> Principal:
    if api_key:
        principal = principal_from_api_key(request.app, session, api_key)
    elif token:
        principal = principal_from_jwt(request.app, session, token)
    else:
        raise Unauthorized("Sign in with a bearer token or send an X-API-Key header.")
    request.state.principal = principal
    annotate_log(user_id=principal.user.id)
    return principal


def _authenticates(call: _CallT) -> _CallT:
    """Mark a dependency that refuses callers without valid credentials: a route that depends
    on one checks credentials before its body (`credentials_refusal`)."""
    call.__dict__[_AUTHENTICATES] = True
    return call


def _needs_credentials(dependant: Dependant) -> bool:
    return any(
        getattr(d.call, _AUTHENTICATES, False) or _needs_credentials(d)
        for d in dependant.dependencies
    )


def route_needs_credentials(route: object) -> bool:
    """Whether a route refuses callers without valid credentials (looked up once per route)."""
    if route is None:
        return False
    known = getattr(route, _NEEDS_CREDENTIALS, None)
    if known is None:
        dependant = getattr(route, "dependant", None)
        known = isinstance(dependant, Dependant) and _needs_credentials(dependant)
        setattr(route, _NEEDS_CREDENTIALS, known)
    return bool(known)


async def credentials_refusal(request: Request) -> AppError | None:
    """The 401 a request's credentials earn, checked before its body is validated: an invalid
    body from a caller who is refused anyway is answered 401, not 422 (a caller learns nothing
    about an endpoint's input without valid credentials). None when the route is open to
    anyone or the credentials hold. A bearer token is checked without the database; an API
    key or a token's session is read in a short session of its own, as `get_principal` does
    (this path is taken only for a request already refused for its body)."""
    if not route_needs_credentials(request.scope.get("route")):
        return None
    token = await oauth2_scheme(request)
    api_key = await api_key_scheme(request)
    try:
        if not api_key:
            if not token:
                raise Unauthorized("Sign in with a bearer token or send an X-API-Key header.")
            access_token_claims(request.app, token)
        await run_in_threadpool(_resolve_in_own_session, request, token, api_key)
    except Unauthorized as exc:
        return exc
    except SQLAlchemyError:
        # The platform database cannot say now: the body's own 422 stands (never a 500 here).
        return None
    return None


@_authenticates
def get_principal(
    request: Request,
    session: SessionDep,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """Raises `Unauthorized` for no, bad, expired or revoked credentials."""
    return _resolve_principal(request, session, token, api_key)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def _resolve_in_own_session(request: Request, token: str | None, api_key: str | None) -> Principal:
    factory: Callable[[], Session] = request.app.state.session_factory
    with factory() as session:
        return _resolve_principal(request, session, token, api_key)


@_authenticates
async def get_released_principal(
    request: Request,
    token: Annotated[str | None, Depends(oauth2_scheme)],
    api_key: Annotated[str | None, Depends(api_key_scheme)],
) -> Principal:
    """The caller, read in a short session of its own that is closed before the endpoint runs
    (endpoints that wait on an LLM or a user's database hold no platform connection). The
    principal's user is detached: read it, do not write through it."""
    return await run_in_threadpool(_resolve_in_own_session, request, token, api_key)


ReleasedPrincipal = Annotated[Principal, Depends(get_released_principal)]


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the caller sent, checked as far as it can be without the platform database (a
    bearer token's signature and expiry); `resolve` finishes the check, with the same answers
    as `get_principal`, inside a session the endpoint opens anyway."""

    request: Request
    scopes: tuple[Scope, ...]
    api_key: str | None = None
    claims: dict[str, object] | None = None

    def __call__(self, session: Session) -> Principal:
        return self.resolve(session)

    def resolve(self, session: Session) -> Principal:
        """The principal, read in `session`: 401 for a revoked key, an ended session or an
        inactive user (checked in the database on every request, no cache), 403 for a
        missing scope."""
        if self.api_key is not None:
            principal = principal_from_api_key(self.request.app, session, self.api_key)
        else:
            assert self.claims is not None  # noqa: S101 - set whenever api_key is not
            principal = principal_from_claims(session, self.claims)
        return self.accept(principal)

    def accept(self, principal: Principal) -> Principal:
        """Take `principal` as the caller (read by `resolve`, or from the row an ask reads with
        `principal_of_session_row`): 403 for a missing scope."""
        self.request.state.principal = principal
        annotate_log(user_id=principal.user.id)
        ensure_scopes(principal, *self.scopes)
        return principal


DEFERRED_CREDENTIALS_OPENAPI: dict[str, Any] = {
    "security": [{"OAuth2PasswordBearer": []}, {"APIKeyHeader": []}]
}
"""The `openapi_extra` of a route depending on `require_scopes_deferred`: the same security
requirements `oauth2_scheme` and `api_key_scheme` give a route as dependencies."""


def _bearer_token(request: Request) -> str | None:
    """The bearer token of the `Authorization` header, as `oauth2_scheme` reads it."""
    scheme, token = get_authorization_scheme_param(request.headers.get("Authorization"))
    return token if scheme.lower() == "bearer" and token else None


def require_scopes_deferred(*scopes: Scope) -> Callable[..., Awaitable[Credentials]]:
    """A dependency for endpoints that read the platform database in a short transaction of
    their own before slow work (an ask): it checks on the event loop what needs no database
    (credentials present, a bearer token's signature and expiry) and hands back `Credentials`,
    whose `resolve` reads the caller in that transaction. No thread hop and no session of its
    own: an ask reads its caller with the rest of what it needs."""

    @_authenticates
    async def _credentials(request: Request) -> Credentials:
        # The headers read here, not through `oauth2_scheme` and `api_key_scheme` as
        # sub-dependencies: FastAPI's solving of nested dependencies cost an offline ask more
        # CPU than checking the token. Routes using this declare the same security schemes
        # in their OpenAPI operation (`DEFERRED_CREDENTIALS_OPENAPI`).
        api_key = request.headers.get(api_key_scheme.model.name)
        token = _bearer_token(request)
        if api_key:
            return Credentials(request=request, scopes=scopes, api_key=api_key)
        if token:
            claims = access_token_claims(request.app, token)
            return Credentials(request=request, scopes=scopes, claims=claims)
        raise Unauthorized("Sign in with a bearer token or send an X-API-Key header.")

    return _credentials


def get_session_principal(principal: CurrentPrincipal) -> Principal:
    """The caller signed in with a bearer token; API keys get 403 (they cannot mint keys,
    change passwords or sign out sessions)."""
    if principal.api_key is not None or principal.user_session_id is None:
        raise SessionRequired()
    return principal


SessionPrincipal = Annotated[Principal, Depends(get_session_principal)]


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_app_settings)]


def get_current_user(principal: CurrentPrincipal) -> User:
    return principal.user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require_scopes(*scopes: Scope) -> Callable[[Principal], Principal]:
    """A dependency that answers 403 unless the caller holds every one of `scopes`."""

    def _check(principal: CurrentPrincipal) -> Principal:
        ensure_scopes(principal, *scopes)
        return principal

    return _check


def ensure_scopes(principal: Principal, *scopes: Scope) -> None:
    """Raise `Forbidden` unless the caller holds every one of `scopes`."""
    missing = [s.value for s in scopes if s not in principal.scopes]
    if missing:
        raise Forbidden(
            "Your credentials lack the scope this needs.", details={"missing_scopes": missing}
        )


def require_scopes_released(*scopes: Scope) -> Callable[[Principal], Awaitable[Principal]]:
    """`require_scopes` on `ReleasedPrincipal`: the caller's session is closed before the
    endpoint runs. The check itself runs on the event loop (no thread hop)."""

    async def _check(principal: ReleasedPrincipal) -> Principal:
        ensure_scopes(principal, *scopes)
        return principal

    return _check


def get_admin_user(
    principal: Annotated[Principal, Depends(require_scopes(Scope.ADMIN))],
) -> User:
    return principal.user


AdminUser = Annotated[User, Depends(get_admin_user)]
