#!/usr/bin/env bash
# Run the test suite: creates .venv and installs the project with its dev extra when needed.
# Database tests run on SQLite and on a PostgreSQL server that the tests start themselves
# (or the one named by NLSQL_TEST_POSTGRES_URL, as .ci/run does).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec python -m pytest "$@"
