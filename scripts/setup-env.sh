#!/usr/bin/env bash
# Makes a fresh Debian 12 machine (as root) ready for claude-bottle, and is a
# no-op when it already is: Debian packages, runsc registered with dockerd,
# dockerd and redis-server running, the local debian:bookworm-slim base image.
# Nothing is pulled from a container registry (none is reachable here).
set -euo pipefail

say()  { printf '[setup-env] %s\n' "$*" >&2; }
fail() { printf '[setup-env] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || fail "must run as root (it installs Debian packages and starts dockerd)"
[ -r /etc/debian_version ] || fail "this script supports Debian 12 only (no /etc/debian_version)"
case "$(cat /etc/debian_version)" in
  12*|bookworm*) ;;
  *) fail "this script supports Debian 12 only (found Debian $(cat /etc/debian_version))" ;;
esac
avail_kb=$(df -Pk /var/lib | awk 'NR==2 {print $4}')
[ "${avail_kb:-0}" -ge 3000000 ] || fail "less than 3 GB free under /var/lib; free some disk and retry"

STATE_DIR=${CLAUDE_BOTTLE_ENV_DIR:-/var/lib/claude-bottle-env}
mkdir -p "$STATE_DIR"

# --- Debian packages -------------------------------------------------------
need_pkgs=()
# tmux and openssl are used by the test suite (a real pseudo-terminal; throwaway TLS certificates);
# gcc and libc6-dev build the static wait-for-proxy that runs first in every agent container;
# docker-compose brings up docker-compose.yml (Redis and a worker) and runs its test.
for pkg in docker.io docker-compose redis-server runsc debootstrap iptables iproute2 ca-certificates tmux openssl gcc libc6-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_pkgs+=("$pkg")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  say "installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || fail "apt-get update failed; check the Debian mirror is reachable"
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null \
    || fail "apt-get install ${need_pkgs[*]} failed"
else
  say "Debian packages present"
fi
# The distro's redis/docker services may have been auto-started under systemd-less
# init scripts; we manage our own instances below, so nothing else is required.

# --- runsc registered with dockerd ---------------------------------------
DAEMON_JSON=/etc/docker/daemon.json
RUNSC_PATH=$(command -v runsc || echo /usr/bin/runsc)
mkdir -p /etc/docker
want_json=$(cat <<JSON
{
  "runtimes": {
    "runsc": { "path": "$RUNSC_PATH", "runtimeArgs": ["--network=host"] }
  }
}
JSON
)
daemon_json_changed=0
if [ ! -f "$DAEMON_JSON" ] || ! grep -q '"runsc"' "$DAEMON_JSON"; then
  if [ -f "$DAEMON_JSON" ] && [ -s "$DAEMON_JSON" ]; then
    # Merge into an existing config rather than clobbering it.
    node -e '
      const fs=require("fs"); const p=process.argv[1];
      const cur=JSON.parse(fs.readFileSync(p,"utf8")||"{}");
      cur.runtimes=Object.assign({},cur.runtimes,{runsc:{path:process.argv[2],runtimeArgs:["--network=host"]}});
      fs.writeFileSync(p, JSON.stringify(cur,null,2)+"\n");' "$DAEMON_JSON" "$RUNSC_PATH"
  else
    printf '%s\n' "$want_json" > "$DAEMON_JSON"
  fi
  say "registered runsc in $DAEMON_JSON"
  daemon_json_changed=1
fi

# --- dockerd ----------------------------------------------------------------
docker_ok() { timeout 5 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if docker_ok && [ "$daemon_json_changed" = 1 ]; then
  pid=$(cat /var/run/docker.pid 2>/dev/null || true)
  if [ -n "$pid" ]; then
    say "reloading dockerd (pid $pid) so it sees runsc"
    kill -HUP "$pid" || true
    sleep 1
  fi
fi
if ! docker_ok; then
  say "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # containerd is started by dockerd itself when not already running. Its own session: a caller's
  # process group being signalled (a `timeout` around the test command) must not take the daemon down.
  setsid nohup dockerd >>"$STATE_DIR/dockerd.log" 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker_ok && break; sleep 1; done
  docker_ok || fail "dockerd did not answer within 60 s; see $STATE_DIR/dockerd.log"
fi
say "dockerd answers (server $(docker version --format '{{.Server.Version}}'))"
if ! docker info --format '{{json .Runtimes}}' | grep -q runsc; then
  fail "dockerd is running but has no runsc runtime; restart dockerd so it reads $DAEMON_JSON"
fi

# --- redis-server (append-only) ----------------------------------------------
REDIS_PORT=${CLAUDE_BOTTLE_REDIS_PORT:-6379}
redis_ok() { timeout 3 redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
if ! redis_ok; then
  say "starting redis-server on 127.0.0.1:$REDIS_PORT with appendonly (dir $STATE_DIR/redis)"
  mkdir -p "$STATE_DIR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --appendonly yes --appendfsync everysec \
    --dir "$STATE_DIR/redis" --daemonize yes --logfile "$STATE_DIR/redis/redis.log" \
    --pidfile "$STATE_DIR/redis/redis.pid" >/dev/null
  for _ in $(seq 1 30); do redis_ok && break; sleep 0.5; done
  redis_ok || fail "redis-server did not answer; see $STATE_DIR/redis/redis.log"
fi
if [ "$(redis-cli -p "$REDIS_PORT" config get appendonly | tail -1)" != yes ]; then
  say "turning on appendonly for the running redis-server"
  redis-cli -p "$REDIS_PORT" config set appendonly yes >/dev/null
fi
say "redis-server answers on 127.0.0.1:$REDIS_PORT (appendonly yes)"

# --- local base image ------------------------------------------------------------
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
  say "building debian:bookworm-slim locally with debootstrap (about 30-60 s)"
  root=$(mktemp -d /var/tmp/bookworm-root.XXXXXX)
  trap 'rm -rf "$root"' EXIT
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$STATE_DIR/debootstrap.log" 2>&1 \
    || fail "debootstrap failed; see $STATE_DIR/debootstrap.log"
  # Match the slim image: no apt lists or caches baked in.
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  tar -C "$root" -c . | docker import - debian:bookworm-slim >/dev/null \
    || fail "docker import of the bootstrapped root failed"
  rm -rf "$root"; trap - EXIT
fi
say "base image debian:bookworm-slim present"
say "ready"
