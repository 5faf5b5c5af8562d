"""LLM token quota: `users.token_usage` against the per-role limit in `quota.tokens_per_role`.

Usage counts per period (`quota.period`: a UTC calendar `day` or `month`, or `never` for a
lifetime allowance): the first use in a new period starts the count again, and a 429 says in
`Retry-After` when the period ends. Only LLM generators spend tokens; the offline engine and
answers from query templates are never refused by the quota.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import String, Table, Update, bindparam, case, or_, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from backend.admin.config_keys import get_config_value
from backend.auth.errors import TokenQuotaExceeded
from backend.auth.models import User
from backend.core.db import UTCDateTime, utcnow


def token_quota_for(session: Session, role: str) -> int | None:
    """The role's token quota; None means unlimited (also for a missing or non-integer entry)."""
    quotas: Any = get_config_value(session, "quota.tokens_per_role")
    if not isinstance(quotas, dict):
        return None
    limit = quotas.get(role)
    if isinstance(limit, bool) or not isinstance(limit, int):
        return None
    return max(0, limit)


def quota_period(session: Session) -> str:
    return str(get_config_value(session, "quota.period"))


def period_bounds(period: str, now: datetime) -> tuple[datetime | None, datetime | None]:
    """The start and end of the quota period holding `now` (None, None for `never`)."""
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
        return start, end
    return None, None


def usage_in_period(user: User, period_start: datetime | None) -> int:
    """The user's usage counted in the period that began at `period_start`."""
    if period_start is None:
        return user.token_usage
    started = user.token_period_start
    return user.token_usage if started is not None and started >= period_start else 0


def ensure_token_quota(session: Session, user: User, *, now: datetime | None = None) -> None:
    """Raise `TokenQuotaExceeded` (429 with `Retry-After` until the period ends) when the user
    has used up their role's token quota for this period."""
    limit = token_quota_for(session, user.role)
    if limit is None:
        return
    now = now or utcnow()
    period = quota_period(session)
    start, end = period_bounds(period, now)
    used = usage_in_period(user, start)
    if used < limit:
        return
    details: dict[str, Any] = {
        "token_usage": used,
        "token_quota": limit,
        "role": user.role,
        "period": period,
    }
    retry_after = None
    if end is not None:
        details["period_ends_at"] = end.isoformat()
        retry_after = int((end - now).total_seconds()) + 1
    raise TokenQuotaExceeded(
        f"You have used {used:,} of your {limit:,} LLM tokens"
        + (f" this {period}" if end is not None else "")
        + "; ask an administrator to raise your quota.",
        details=details,
        retry_after_seconds=retry_after,
    )


def _usage_statement(*, periodic: bool) -> Update:
    """Adds `:usage_tokens` to user `:usage_user_id`'s usage; `periodic`: the count starts
    again when the user's period began before `:usage_start`. Built once per shape
    (`_ADD_USAGE`); its parameter names are its own, so it can go into another statement."""
    users = cast("Table", User.__table__)
    tokens = bindparam("usage_tokens", type_=users.c.token_usage.type)
    if periodic:
        start = bindparam("usage_start", type_=UTCDateTime())
        stale = or_(users.c.token_period_start.is_(None), users.c.token_period_start < start)
        values: dict[str, Any] = {
            "token_usage": case((stale, tokens), else_=users.c.token_usage + tokens),
            "token_period_start": case((stale, start), else_=users.c.token_period_start),
        }
    else:
        values = {"token_usage": users.c.token_usage + tokens}
    return (
        update(users).where(users.c.id == bindparam("usage_user_id", type_=String())).values(values)
    )


# Built once: a statement reused skips its construction and cache key on every LLM ask.
_ADD_USAGE = {periodic: _usage_statement(periodic=periodic) for periodic in (False, True)}


def token_usage_write(
    session: Session, user_id: str, tokens: int, *, now: datetime | None = None
) -> tuple[Update, dict[str, Any]] | None:
    """The statement (built once) and parameters that add `tokens` to the user's usage in the
    current period, atomically (safe across workers; the first use in a new period starts the
    count again); None when there is nothing to add. For a caller that writes it inside a
    statement of its own (`chat.service.append_messages`); else `add_token_usage`."""
    if tokens <= 0:
        return None
    start, _end = period_bounds(quota_period(session), now or utcnow())
    parameters = {"usage_user_id": user_id, "usage_tokens": tokens, "usage_start": start}
    return _ADD_USAGE[start is not None], parameters


def add_token_usage(
    session: Session, user_id: str, tokens: int, *, now: datetime | None = None
) -> None:
    """Add `tokens` to the user's usage in the current period (`token_usage_write`), now."""
    write = token_usage_write(session, user_id, tokens, now=now)
    if write is None:
        return
    session.connection().execute(*write)
    user = session.identity_map.get(identity_key(User, user_id))
    if isinstance(user, User):
        session.expire(user, ["token_usage", "token_period_start"])
