#!/usr/bin/env bash
# Runs the npm conformance checks for edge/transport: builds and starts the
# Go subserver, runs `node --test` against it and stops it. Assumes
# `npm ci` was run in this directory.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
edge="$(cd "$here/../.." && pwd)"
tmp="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

(cd "$edge" && go build -o "$tmp/subserver" ./transport/internal/subserver)
"$tmp/subserver" >"$tmp/url" &
pid=$!
for _ in $(seq 1 100); do
  [ -s "$tmp/url" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "subserver exited early" >&2; exit 1; }
  sleep 0.1
done
[ -s "$tmp/url" ] || { echo "subserver printed no URL" >&2; exit 1; }
TRANSPORT_URL="$(head -n1 "$tmp/url")"
export TRANSPORT_URL
echo "subserver at $TRANSPORT_URL"
cd "$here"
node --test
