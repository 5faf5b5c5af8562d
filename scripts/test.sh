#!/usr/bin/env bash
# Run the test suite: creates .venv and installs the project with its dev extra when needed.
# Database tests run on SQLite and on a PostgreSQL server that the tests start themselves
# (or the one named by NLSQL_TEST_POSTGRES_URL, as .ci/run does).
#
# Tests run in parallel on one pytest-xdist worker per CPU (NLSQL_TEST_WORKERS overrides:
# a number, `auto` or `logical`); each worker makes databases of its own. Pass `-n 0` to run
# in this one process (e.g. with `--pdb`). Tests marked `xdist_group` share one worker.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
exec python -m pytest -n "${NLSQL_TEST_WORKERS:-auto}" --dist loadgroup "$@"
