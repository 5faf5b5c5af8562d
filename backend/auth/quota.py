"""LLM token quota: `users.token_usage` against the per-role limit in `quota.tokens_per_role`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from backend.admin.config_keys import get_config_value
from backend.auth.errors import TokenQuotaExceeded
from backend.auth.models import User


def token_quota_for(session: Session, role: str) -> int | None:
    """The role's token quota; None means unlimited (also for a missing or non-integer entry)."""
    quotas: Any = get_config_value(session, "quota.tokens_per_role")
    if not isinstance(quotas, dict):
        return None
    limit = quotas.get(role)
    if isinstance(limit, bool) or not isinstance(limit, int):
        return None
    return max(0, limit)


def ensure_token_quota(session: Session, user: User) -> None:
    """Raise `TokenQuotaExceeded` (429) when the user has used up their role's token quota."""
    limit = token_quota_for(session, user.role)
    if limit is not None and user.token_usage >= limit:
        raise TokenQuotaExceeded(
            f"You have used {user.token_usage:,} of your {limit:,} LLM tokens; "
            "ask an administrator to raise your quota.",
            details={"token_usage": user.token_usage, "token_quota": limit, "role": user.role},
        )


def add_token_usage(session: Session, user_id: str, tokens: int) -> None:
    """Add `tokens` to the user's usage atomically (safe across workers). Flushes."""
    if tokens <= 0:
        return
    session.execute(
        update(User)
        .where(User.id == user_id)
        .values(token_usage=User.token_usage + tokens)
        .execution_options(synchronize_session=False)
    )
    user = session.identity_map.get(identity_key(User, user_id))
    if isinstance(user, User):
        session.expire(user, ["token_usage"])
