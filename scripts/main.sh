#!/usr/bin/env bash
# The README's main command: a real bottle from examples/claude-bottle.json on
# the embedded default (a local redis-server and worker under
# $CLAUDE_BOTTLE_HOME). With an Anthropic credential on the host it runs
# Claude Code; without one, the demo agent that shows the sandbox at work. The working folder is a new
# temporary one (or CLAUDE_BOTTLE_MAIN_CWD).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
unset REDIS_URL
manifest=examples/claude-bottle.json
if [ -n "${CLAUDE_BOTTLE_OAUTH_TOKEN:-}" ]; then
  agent=claude
elif [ -n "${ANTHROPIC_API_KEY:-}" ]; then
  agent=claude-api-key
else
  agent=demo
  echo "[main] no CLAUDE_BOTTLE_OAUTH_TOKEN or ANTHROPIC_API_KEY on this host: running the demo agent" >&2
fi
# The agent may write to its working folder, so it never gets this repository (which holds the manifest):
# a folder of its own, kept afterwards for a look at what it did.
work=${CLAUDE_BOTTLE_MAIN_CWD:-$(mktemp -d "${TMPDIR:-/tmp}/claude-bottle-main.XXXXXX")}
echo "[main] the bottle's working folder: $work" >&2
echo "[main] plan:" >&2
node bin/bottle.js --manifest "$manifest" start "$agent" --cwd "$work" --dry-run >&2
echo "[main] bottle start $agent" >&2
set +e
node bin/bottle.js --manifest "$manifest" start --yes --cwd "$work" "$agent" "$@"
code=$?
set -e
echo "[main] the agent exited with $code; the bottle's lifecycle: (bottle list --all, bottle events <identity>)" >&2
node bin/bottle.js list --all >&2 || true
exit $code
