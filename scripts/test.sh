#!/usr/bin/env bash
# The README's test command: installs what is needed, then runs every test
# (unit + integration against the real Redis and Docker daemon) and ends with
# one plain summary line "tests: N passed, N failed, N skipped".
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
echo "[test] npm run lint" >&2
npm run --silent lint
export REDIS_URL_TEST=${REDIS_URL_TEST:-redis://127.0.0.1:${CLAUDE_BOTTLE_REDIS_PORT:-6379}}
report=$(mktemp -t vitest-report.XXXXXX.json)
trap 'rm -f "$report"' EXIT
set +e
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' "$report" || echo "tests: 0 passed, 1 failed"
exit $status
