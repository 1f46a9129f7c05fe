#!/usr/bin/env bash
# Fetches the Node binary the gateway image runs: the official Linux x64 build
# from the npm package pinned in package.json ("claudeBottle"."gatewayNode"),
# checked against its pinned integrity, into vendor/<package>-<version>/node (in a checkout) or the
# folder given as the first argument (an installed package: the tool's cache under CLAUDE_BOTTLE_HOME,
# since the package's own folder may be read-only).
# Containers cannot reach the npm registry; the host can, so the binary is
# fetched here and copied into the gateway's build context (like the Claude
# Code binary for the agent image). Idempotent: nothing happens when present.
# Not an npm dependency: the package declares a `node` bin, which would shadow
# the host's node in every npm script.
set -euo pipefail
cd "$(dirname "$0")/.."
read -r pkg version integrity < <(node -p 'const n = require("./package.json").claudeBottle.gatewayNode; [n.package, n.version, n.integrity].join(" ")')
dest="${1:-vendor/$pkg-$version}"
if [ -x "$dest/node" ]; then
  echo "[gateway-node] $pkg $version present" >&2
  exit 0
fi
echo "[gateway-node] fetching $pkg@$version from the npm registry" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
npm pack "$pkg@$version" --pack-destination "$work" --json --silent >"$work/pack.json" \
  || { echo "[gateway-node] error: npm pack $pkg@$version failed; check that the npm registry is reachable" >&2; exit 1; }
got=$(node -e 'const [p] = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(p.integrity + " " + p.filename)' "$work/pack.json")
read -r got_integrity filename <<<"$got"
if [ "$got_integrity" != "$integrity" ]; then
  echo "[gateway-node] error: $pkg@$version has integrity $got_integrity, expected $integrity" >&2
  exit 1
fi
tar -xzf "$work/$filename" -C "$work" package/bin/node
"$work/package/bin/node" --version >/dev/null || { echo "[gateway-node] error: the fetched node does not run on this machine" >&2; exit 1; }
mkdir -p "$dest"
mv "$work/package/bin/node" "$dest/node.partial"
mv "$dest/node.partial" "$dest/node"
echo "[gateway-node] $pkg $version in $dest" >&2
