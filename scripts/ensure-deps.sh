#!/usr/bin/env bash
# Shared first step of the README's two commands: npm packages, the gateway's
# Node binary, then the machine (scripts/setup-env.sh), then the build. Idempotent: npm ci runs
# only when package-lock.json changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.claude-bottle-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[deps] npm ci" >&2
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
else
  echo "[deps] node_modules up to date" >&2
fi
bash scripts/fetch-gateway-node.sh
if [ "$(id -u)" = 0 ]; then
  bash scripts/setup-env.sh
else
  echo "[deps] not root: skipping scripts/setup-env.sh (run it once as root)" >&2
fi
echo "[deps] npm run build" >&2
npm run --silent build
