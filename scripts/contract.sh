#!/usr/bin/env bash
# Regenerate the API contract in one go: openapi.json from the app, then the TypeScript types
# from it, then compile the typed client example. Commit what changed in frontend_contract/.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/env.sh
source scripts/env.sh
python -m backend.cli openapi
cd frontend_contract
if [ ! -x node_modules/.bin/openapi-typescript ] || [ ! -x node_modules/.bin/tsc ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent generate
npm run --silent typecheck
git status --short -- . || true
