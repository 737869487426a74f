#!/usr/bin/env bash
# run.sh: end-to-end test of the edge's console in headless Chromium, offline.
#
#   edge/console/e2e/run.sh                                 # builds and starts its own circuit-breaker
#   EDGE_URL=http://127.0.0.1:4000 edge/console/e2e/run.sh  # tests a running edge (open, no auth)
#
# With EDGE_URL unset it builds ./deploy/cmd/circuit-breaker, starts it on a
# temporary data dir with a random NATS port and a random loopback HTTP port,
# and reads the edge URL from the "GraphQL:" line it prints. Then it runs
# `node --test console.test.mjs` and stops the server on exit. Screenshots go
# to $SCREENSHOT_DIR (default /tmp/console-e2e). Exit status is the test's.
#
# Needs: node >= 18, npm ci done here (run here if node_modules is missing),
# Go (when it builds the server) and Debian's chromium (apt-get install -y
# chromium; or set CHROMIUM). No browser is ever downloaded.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

[[ -x $CHROMIUM ]] || { echo "run.sh: no chromium at $CHROMIUM (apt-get install -y chromium, or set CHROMIUM)" >&2; exit 2; }
if [[ ! -d $here/node_modules/playwright-core ]]; then
	(cd "$here" && npm ci --no-audit --no-fund)
fi

tmp=$(mktemp -d)
pid=
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z ${EDGE_URL:-} ]]; then
	(cd "$root" && go build -o "$tmp/circuit-breaker" ./deploy/cmd/circuit-breaker)
	mkdir "$tmp/data"
	"$tmp/circuit-breaker" --data-dir "$tmp/data" --nats-port -1 --http 127.0.0.1:0 --log-level warn >"$tmp/server.log" 2>&1 &
	pid=$!
	for _ in $(seq 300); do
		EDGE_URL=$(sed -n 's#^[[:space:]]*GraphQL:[[:space:]]*\(https\{0,1\}://[^[:space:]]*\)/graphql.*#\1#p' "$tmp/server.log" | head -n1)
		[[ -n $EDGE_URL ]] && break
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "run.sh: circuit-breaker exited" >&2; exit 1; }
		sleep 0.1
	done
	[[ -n $EDGE_URL ]] || { cat "$tmp/server.log" >&2; echo "run.sh: no GraphQL URL from circuit-breaker in 30 s" >&2; exit 1; }
	echo "run.sh: started circuit-breaker (pid $pid) at $EDGE_URL"
fi
export EDGE_URL

cd "$here"
status=0
timeout --kill-after=5 300 node --test --test-reporter=spec console.test.mjs || status=$?
if (( status != 0 )) && [[ -e $tmp/server.log ]]; then
	echo "run.sh: test failed ($status); server log:" >&2
	tail -n 50 "$tmp/server.log" >&2 || true
fi
exit "$status"
