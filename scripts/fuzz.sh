#!/usr/bin/env bash
# Fuzz the app from its contract (schemathesis) for longer than CI does, on SQLite and on a
# PostgreSQL platform database (started by the tests, or NLSQL_TEST_POSTGRES_URL).
#
#   scripts/fuzz.sh [EXAMPLES] [extra pytest args]
#
# EXAMPLES (default 100) is the number of drawn requests per operation, caller (bearer token,
# API key), aim (seeded ids, drawn ids) and mode (positive, negative). Also read:
# NLSQL_FUZZ_SEED (default 0; the run is derandomized, change it to draw other cases),
# NLSQL_FUZZ_MODES (default "positive,negative"), NLSQL_TEST_BACKENDS (default both).
# Prints one line per backend: operations, cases, failing operations, statuses seen.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
examples="${1:-100}"
shift || true
export NLSQL_FUZZ_EXAMPLES="$examples"
exec python -m pytest tests/contract/test_fuzz.py -p no:cacheprovider -s -q -o timeout=0 "$@"
