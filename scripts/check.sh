#!/usr/bin/env bash
# Every check CI runs, in CI's order: format, lint, types, then the tests (scripts/test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
ruff format --check backend tests scripts alembic
ruff check backend tests scripts alembic
mypy
exec scripts/test.sh "$@"
