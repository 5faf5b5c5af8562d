#!/usr/bin/env bash
# The main job on the embedded default: SQLite app_data.db in this folder, the bundled demo
# database, the offline engine. Creates .venv when needed, then `nlsql demo` (migrate, demo
# account and connection, serve on http://127.0.0.1:8000). Extra arguments go to `nlsql demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec nlsql demo "$@"
