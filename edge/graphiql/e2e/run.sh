#!/usr/bin/env bash
# run.sh: end-to-end test of the edge's GraphiQL in headless Chromium, offline.
#
#   edge/graphiql/e2e/run.sh                              # builds and starts its own circuit-breakers
#   EDGE_URL=http://127.0.0.1:4000 edge/graphiql/e2e/run.sh   # tests a running edge (open, no auth)
#
# With EDGE_URL unset it builds ./deploy/cmd/circuit-breaker, starts it on a temp
# data dir with a random NATS port and a random loopback HTTP port, and reads the
# edge URL from the "GraphQL:" line it prints. For the bearer-key test it also
# starts a second circuit-breaker with --auth-file (one random API key, stored as
# its SHA-256 digest) and exports AUTH_EDGE_URL and AUTH_KEY, unless both are set
# already (an edge of yours and one of its keys, role admin, tenant "*").
# Then it runs `node --test` and stops the servers on exit. Exit status is the
# test's (non-zero on any failure).
#
# Needs: node >= 18, npm ci done in this directory (run here if node_modules is
# missing), Go (when it builds the server), and Debian's chromium
# (apt-get install -y chromium; or set CHROMIUM). No browser is ever downloaded.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

[[ -x $CHROMIUM ]] || { echo "run.sh: no chromium at $CHROMIUM (apt-get install -y chromium, or set CHROMIUM)" >&2; exit 2; }
if [[ ! -d $here/node_modules/playwright-core ]]; then
	(cd "$here" && npm ci --no-audit --no-fund)
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -0 "$pid" 2>/dev/null || continue
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start NAME [ARGS...]: starts the built circuit-breaker on $tmp/NAME with ARGS
# and sets url to its edge's base URL (waits up to 30 s for the
# "  GraphQL:  http://HOST:PORT/graphql ..." line). Its output: $tmp/NAME.log.
start() {
	local name=$1 pid
	shift
	mkdir "$tmp/$name"
	"$tmp/circuit-breaker" --data-dir "$tmp/$name" --nats-port -1 --http 127.0.0.1:0 "$@" >"$tmp/$name.log" 2>&1 &
	pid=$!
	pids+=("$pid")
	url=
	for _ in $(seq 300); do
		url=$(sed -n 's#^[[:space:]]*GraphQL:[[:space:]]*\(https\{0,1\}://[^[:space:]]*\)/graphql.*#\1#p' "$tmp/$name.log" | head -n1)
		[[ -n $url ]] && break
		kill -0 "$pid" 2>/dev/null || { cat "$tmp/$name.log" >&2; echo "run.sh: circuit-breaker ($name) exited" >&2; exit 1; }
		sleep 0.1
	done
	[[ -n $url ]] || { cat "$tmp/$name.log" >&2; echo "run.sh: no GraphQL URL from circuit-breaker ($name) in 30 s" >&2; exit 1; }
	echo "run.sh: started circuit-breaker $name (pid $pid) at $url"
}

if [[ -z ${EDGE_URL:-} || -z ${AUTH_EDGE_URL:-} || -z ${AUTH_KEY:-} ]]; then
	(cd "$root" && go build -o "$tmp/circuit-breaker" ./deploy/cmd/circuit-breaker)
fi
if [[ -z ${EDGE_URL:-} ]]; then
	start open
	EDGE_URL=$url
fi
if [[ -z ${AUTH_EDGE_URL:-} || -z ${AUTH_KEY:-} ]]; then
	AUTH_KEY=e2e-$(od -An -N18 -tx1 /dev/urandom | tr -d ' \n')
	# tenant "*": every tenant.
	cat >"$tmp/auth.yaml" <<-EOF
		apiKeys:
		  - {name: graphiql-e2e, key: "sha256:$(printf %s "$AUTH_KEY" | sha256sum | cut -d' ' -f1)", tenant: "*", role: admin}
	EOF
	start auth --auth-file "$tmp/auth.yaml"
	AUTH_EDGE_URL=$url
fi
export EDGE_URL AUTH_EDGE_URL AUTH_KEY

cd "$here"
status=0
timeout --kill-after=5 120 node --test graphiql.test.mjs || status=$?
if (( status != 0 )); then
	for log in "$tmp"/*.log; do
		[[ -e $log ]] || continue
		echo "run.sh: test failed ($status); server log $(basename "$log"):" >&2
		tail -n 50 "$log" >&2 || true
	done
fi
exit "$status"
