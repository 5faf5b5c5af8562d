"""How much time the auth dependency adds to a request: JWT vs API key vs no auth.

Runs the real app in-process through TestClient on a fresh migrated platform database
(SQLite by default, or --database-url), with two extra routes that differ only in their
dependency: `/_bench/anonymous` (none), `/_bench/session` (only the per-request session,
which every real endpoint opens anyway) and `/_bench/principal` (`CurrentPrincipal`). The
rounds interleave the variants so drift in machine load hits them alike. Prints medians,
the median added over the anonymous route, and ratios.

    python scripts/bench/bench_auth.py [--rounds 1000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from backend.auth import service as auth_service  # noqa: E402
from backend.auth.api_keys import generate_api_key  # noqa: E402
from backend.auth.deps import CurrentPrincipal  # noqa: E402
from backend.auth.models import ApiKey  # noqa: E402
from backend.auth.scopes import ROLE_SCOPES  # noqa: E402
from backend.auth.tokens import issue_token_pair, start_user_session  # noqa: E402
from backend.core.config import Settings  # noqa: E402
from backend.core.context import ClientContext  # noqa: E402
from backend.core.db import SessionDep  # noqa: E402
from backend.core.migrations import upgrade_to_head  # noqa: E402
from backend.core.security import digest_token  # noqa: E402
from backend.main import create_app  # noqa: E402


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="nlsql-bench-"))
    try:
        run(data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def run(data_dir: Path) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--database-url", default=None, help="a migrated-or-empty database")
    args = parser.parse_args()

    database_url = args.database_url or f"sqlite:///{data_dir / 'app_data.db'}"
    upgrade_to_head(database_url)
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        jwt_secret=SecretStr("bench-secret-" + "x" * 40),
        fernet_keys=[SecretStr(Fernet.generate_key().decode())],
        run_migrations_on_start=False,
        _env_file=None,
    )
    app = create_app(settings)

    @app.get("/_bench/anonymous")
    def anonymous() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/_bench/session")
    def with_session(session: SessionDep) -> dict[str, bool]:
        return {"ok": True}

    @app.get("/_bench/principal")
    def principal(caller: CurrentPrincipal) -> dict[str, bool]:
        return {"ok": True}

    context = ClientContext(ip_address="testclient", user_agent="testclient")
    session = app.state.session_factory()
    user = auth_service.create_user(
        session,
        email="bench@example.com",
        password="Bench-password-1",  # noqa: S106 - a throwaway account in a temporary database
        full_name="Bench",
    )
    issued = issue_token_pair(
        session,
        settings,
        user=user,
        user_session=start_user_session(session, user=user, context=context),
        context=context,
    )
    secret, visible = generate_api_key()
    session.add(
        ApiKey(
            user_id=user.id,
            key_name="bench",
            key_hash=digest_token(secret),
            key_prefix=visible,
            permissions={"scopes": sorted(ROLE_SCOPES[user.role]), "connection_ids": None},
        )
    )
    session.commit()
    session.close()

    variants: dict[str, tuple[str, dict[str, str]]] = {
        "/healthz": ("/healthz", {}),
        "anonymous route": ("/_bench/anonymous", {}),
        "session only": ("/_bench/session", {}),
        "JWT": ("/_bench/principal", {"Authorization": f"Bearer {issued.access_token}"}),
        "API key": ("/_bench/principal", {"X-API-Key": secret}),
    }
    timings: dict[str, list[float]] = {name: [] for name in variants}
    with TestClient(app) as client:

        def timed(path: str, headers: dict[str, str]) -> float:
            start = time.perf_counter()
            response = client.get(path, headers=headers)
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise SystemExit(f"{path} answered {response.status_code}: {response.text}")
            return elapsed * 1000

        for _ in range(args.warmup):
            for path, headers in variants.values():
                timed(path, headers)
        for _ in range(args.rounds):
            for name, (path, headers) in variants.items():
                timings[name].append(timed(path, headers))
    app.state.engine.dispose()

    medians = {name: statistics.median(values) for name, values in timings.items()}
    base = medians["anonymous route"]
    backend = database_url.split(":", 1)[0]
    print(f"auth dependency cost, {args.rounds} interleaved rounds, platform DB: {backend}")
    print(f"{'variant':<16}{'median ms':>11}{'added ms':>10}{'ratio':>8}")
    for name, median in medians.items():
        print(f"{name:<16}{median:>11.3f}{median - base:>10.3f}{median / base:>8.2f}")


if __name__ == "__main__":
    main()
