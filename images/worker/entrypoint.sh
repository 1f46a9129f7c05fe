#!/bin/sh
# Serves this Docker host as CLAUDE_BOTTLE_HOST_ID, by default the hostname (the host's own with
# host networking, as docker-compose.yml runs it). exec: SIGTERM from `docker-compose stop` reaches
# the worker, which hands running effects back to the queue before it exits.
set -eu
# The compose Redis's password, from the state folder (docker-compose.yml), put into REDIS_URL here so
# it is in no container setting `docker inspect` shows.
if [ -n "${CLAUDE_BOTTLE_REDIS_PASSWORD_FILE:-}" ]; then
  password="$(cat "$CLAUDE_BOTTLE_REDIS_PASSWORD_FILE")"
  REDIS_URL="${REDIS_URL%%://*}://:${password}@${REDIS_URL#*://}"
  export REDIS_URL
fi
exec node /opt/claude-bottle/bin/bottle.js worker --host "${CLAUDE_BOTTLE_HOST_ID:-$(hostname)}" "$@"
