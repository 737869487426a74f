#!/usr/bin/env bash
# Runs cbbench against Circuit Breaker on a 3-node JetStream cluster (R3),
# every process on this machine over loopback, and stops everything:
# three nats-servers on deploy/nats/cluster/n{1,2,3}.conf (built from the
# Go module, as deploy/run-local.sh does; data in a temporary directory),
# the workflow, token and event services with --replicas 3, each logged in
# as its own least-privilege user (random passwords made up for the run),
# and the edge; cbbench logs in as admin.
#
#   deploy/cmd/cbbench/run-r3.sh                      # 3 s per case
#   DURATION=5s deploy/cmd/cbbench/run-r3.sh --json r3.json
#
# Extra arguments go to cbbench (after the defaults, so they win). Cases:
# transitions and get token, via NATS and GraphQL, at 1, 16 and 64 clients,
# with the baselines their ratios need. The cluster's ports (client
# 4222-4224, route 6222-6224, monitoring 8222-8224) and the edge's
# (EDGE_ADDR, 127.0.0.1:4000) must be free. Bounded in time: each wait
# gives up after 30 s, and cbbench is stopped after LIMIT seconds (default
# 48 cases' worth of DURATION plus 4 minutes of set-up).
set -euo pipefail
cd "$(dirname "$0")/../../.."
root=$PWD
duration=${DURATION:-3s}
edge_addr=${EDGE_ADDR:-127.0.0.1:4000}
secs=${duration%s}
[[ $secs =~ ^[0-9]+$ ]] || { echo "DURATION must be whole seconds, like 3s" >&2; exit 2; }
limit=${LIMIT:-$((secs * 48 + 240))}
url=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224

tmp=$(mktemp -d)
bin=$tmp/bin logs=$tmp/logs
mkdir -p "$bin" "$logs"
pids=()
# stop STATUS: stops every process started, newest first (services before
# NATS), shows the logs' ends after a failure and removes the directory.
stop() {
  local status=$1
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    for f in "$logs"/*.log; do [ -e "$f" ] && { echo "--- last lines of $(basename "$f")"; tail -n 15 "$f"; }; done >&2
  fi
  rm -rf "$tmp"
}
trap 'stop $?' EXIT
trap 'exit 130' INT TERM

for port in 4222 4223 4224 6222 6223 6224 8222 8223 8224 "${edge_addr##*:}"; do
  if ss -ltnH "sport = :$port" | grep -q .; then echo "port $port is in use" >&2; exit 1; fi
done

echo "building into $bin ..."
GOBIN=$bin go install github.com/nats-io/nats-server/v2@v2.15.3
for cmd in services/workflow/cmd/workflow-service services/token/cmd/token-service \
           services/event/cmd/event-service edge/cmd/edge deploy/cmd/cbbench; do
  go build -o "$bin/$(basename "$cmd")" "./$cmd"
done

# Passwords for accounts.conf's users, for this run only.
for u in ADMIN WORKFLOW TOKEN EVENT EDGE SUBSCRIBER SYS; do
  export "CB_${u}_PASSWORD=$(openssl rand -hex 16)"
done

# start NAME CMD...: runs a process in the background, output to its log.
start() {
  local name=$1; shift
  "$@" >"$logs/$name.log" 2>&1 &
  pids+=($!)
}

# await WHAT CMD...: retries CMD every 0.2 s for at most 30 s.
await() {
  local what=$1; shift
  for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "gave up waiting for $what" >&2
  return 1
}

# Everything runs in $tmp, so the nodes' store_dir ./data/nN is there
# too; the include of accounts.conf is relative to the config file.
cd "$tmp"
for n in 1 2 3; do
  start "nats-n$n" "$bin/nats-server" -c "$root/deploy/nats/cluster/n$n.conf"
done
for n in 1 2 3; do
  await "node n$n (JetStream meta group)" curl -fsS "http://127.0.0.1:822$((n + 1))/healthz"
done

# service NAME USER BINARY ARGS...: a service logged in as its own user,
# the password in the environment rather than on the command line.
service() {
  local name=$1 user=$2 pw_var; pw_var="CB_${2^^}_PASSWORD"; shift 2
  start "$name" env NATS_USER="$user" NATS_PASSWORD="${!pw_var}" NATS_INBOX_PREFIX="_INBOX_$user" \
    NATS_URL="$url" "$@"
}
service workflow workflow "$bin/workflow-service" --replicas 3
service token token "$bin/token-service" --replicas 3
service event event "$bin/event-service" --replicas 3
service edge edge "$bin/edge" --http "$edge_addr" --insecure-no-auth
await "the edge and the services (/ready)" curl -fsS "http://$edge_addr/ready"

# A cluster just started may not place R3 streams yet (its nodes have not
# all heard each other's statistics: "no suitable peers for placement"), so
# wait until a workflow (an R3 stream) can be created.
probe() {
  local out
  out=$(curl -sS "http://$edge_addr/graphql" -H 'content-type: application/json' -d '{"query":
    "mutation { createWorkflow(input: {id: \"cbbench_r3_probe\", name: \"probe\", places: [\"a\"], initialPlace: \"a\", transitions: [{id: \"t\", fromPlaces: [\"a\"], toPlace: \"a\"}]}) { id } }"}') || return 1
  grep -q '"id":"cbbench_r3_probe"\|already exists' <<<"$out"
}
await "R3 stream placement" probe

echo "cbbench: R3, $duration per case, stopped after ${limit}s at most ..."
NATS_USER=admin NATS_PASSWORD=$CB_ADMIN_PASSWORD NATS_INBOX_PREFIX= \
  timeout --signal=INT --kill-after=10 "$limit" "$bin/cbbench" --nats "$url" --graphql "http://$edge_addr/graphql" \
  --clients 1,16,64 --duration "$duration" --only 'grouped|atomic batch|direct get|transition|get token' "$@"
