"""Bearer headers for a benchmark's user, from a real user session and token pair (as a login)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.auth.tokens import issue_token_pair, start_user_session
from backend.core.config import Settings
from backend.core.context import ClientContext
from backend.core.db import create_app_engine, create_session_factory

BENCH_CONTEXT = ClientContext(ip_address="127.0.0.1", user_agent="nlsql-bench")


def bearer_headers(settings: Settings, user_id: str) -> dict[str, str]:
    engine = create_app_engine(str(settings.database_url))
    try:
        session: Session = create_session_factory(engine)()
        with session:
            user = session.get(User, user_id)
            assert user is not None, user_id  # noqa: S101 - a benchmark's own setup
            user_session = start_user_session(session, user=user, context=BENCH_CONTEXT)
            issued = issue_token_pair(
                session, settings, user=user, user_session=user_session, context=BENCH_CONTEXT
            )
            session.commit()
            return {"Authorization": f"Bearer {issued.access_token}"}
    finally:
        engine.dispose()
