#!/usr/bin/env bash
# Runs Circuit Breaker as separate processes on one machine: a nats-server
# (built from the Go module, no Docker), the workflow, token and event
# services and the edge, each its own process, logs prefixed by name.
# Ctrl-C stops them all (services first, then NATS).
#
#   deploy/run-local.sh                 # open NATS on 127.0.0.1:4222, data in ./data-local
#   CB_SECURE=1 deploy/run-local.sh     # deploy/nats/single.conf: one least-privilege user per process
#   TOKEN_INSTANCES=2 deploy/run-local.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(mktemp -d)
data=${CB_DATA_DIR:-$PWD/data-local}
pids=()
stop() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$bin"
}
trap stop EXIT INT TERM

echo "building into $bin ..."
GOBIN=$bin go install github.com/nats-io/nats-server/v2@v2.15.3
for cmd in services/workflow/cmd/workflow-service services/token/cmd/token-service \
           services/event/cmd/event-service edge/cmd/edge; do
  go build -o "$bin/$(basename "$cmd")" "./$cmd"
done

# start NAME CMD...: runs a process with its output prefixed by its name,
# remembering the process itself (not a pipeline around it) to stop it.
start() {
  local name=$1; shift
  "$@" > >(sed -u "s/^/[$name] /") 2>&1 &
  pids+=($!)
}

url=nats://127.0.0.1:4222
login() { :; }
if [ "${CB_SECURE:-}" = 1 ]; then
  : "${CB_ADMIN_PASSWORD:?set the CB_*_PASSWORD variables, see deploy/nats/README.md}"
  (cd deploy/nats && start nats "$bin/nats-server" -c single.conf)
  login() { echo --nats-user "$1" --nats-password "$2" --inbox-prefix "_INBOX_$1"; }
else
  mkdir -p "$data"
  # max_payload as the embedded server's: tokens carry their whole history
  printf 'listen: 127.0.0.1:4222\nmax_payload: 8MB\njetstream { store_dir: "%s" }\n' "$data" > "$bin/nats.conf"
  start nats "$bin/nats-server" -c "$bin/nats.conf"
fi
for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done

# shellcheck disable=SC2046
start workflow "$bin/workflow-service" --nats "$url" $(login workflow "${CB_WORKFLOW_PASSWORD:-}") --health 127.0.0.1:9101
# shellcheck disable=SC2046
start event "$bin/event-service" --nats "$url" $(login event "${CB_EVENT_PASSWORD:-}") --health 127.0.0.1:9103
for i in $(seq 1 "${TOKEN_INSTANCES:-1}"); do
  # shellcheck disable=SC2046
  start "token-$i" "$bin/token-service" --nats "$url" $(login token "${CB_TOKEN_PASSWORD:-}") --health "127.0.0.1:$((9110 + i))"
done
# shellcheck disable=SC2046
start edge "$bin/edge" --nats "$url" $(login edge "${CB_EDGE_PASSWORD:-}") --http 127.0.0.1:4000 --cors '*' \
  $([ -n "${CB_AUTH_FILE:-}" ] || echo --insecure-no-auth)

echo "GraphQL: http://127.0.0.1:4000/graphql   NATS: $url   health: 127.0.0.1:9101 (workflow), :9103 (event), :911N (token N)"
wait -n "${pids[@]}"
