#!/usr/bin/env bash
# `npm run bench [event-log|roundtrip|replay|warm-start|scale|hosts ...]`: scripts, not timed tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh >&2
mkdir -p .bottle-test
npx esbuild bench/main.ts --bundle --platform=node --format=esm --packages=external --outfile=.bottle-test/bench.mjs --log-level=warning
node .bottle-test/bench.mjs "$@"
