"""Print a `.env` for compose.yaml with fresh random secrets: the PostgreSQL password, the JWT
secret and a Fernet key. Keep the file (and a backup of it) private: losing NLSQL_FERNET_KEYS
makes every stored connection password unreadable.

    python scripts/compose_env.py > .env
"""

from __future__ import annotations

import secrets

from cryptography.fernet import Fernet


def main() -> None:
    print(f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}")
    print(f"NLSQL_JWT_SECRET={secrets.token_urlsafe(48)}")
    print(f"NLSQL_FERNET_KEYS={Fernet.generate_key().decode()}")


if __name__ == "__main__":
    main()
