#!/bin/sh
# Serves this Docker host as CLAUDE_BOTTLE_HOST_ID, by default the hostname (the host's own with
# host networking, as docker-compose.yml runs it). exec: SIGTERM from `docker-compose stop` reaches
# the worker, which hands running effects back to the queue before it exits.
set -eu
exec node /opt/claude-bottle/bin/bottle.js worker --host "${CLAUDE_BOTTLE_HOST_ID:-$(hostname)}" "$@"
