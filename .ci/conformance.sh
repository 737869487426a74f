#!/usr/bin/env bash
# Outside-in checks with npm clients (installed by .ci/run with npm ci):
#  1. graphql-http audits + introspection round trip against the executor's
#     test schema (edge/gql/internal/auditserver);
#  2. the same against the real system: circuit-breaker in one process
#     (embedded NATS on a random port, data in a temporary directory), with
#     the introspected schema compared to schema/schema.graphql.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

echo "-- executor test schema"
(cd edge/gql/conformance && node --test)

echo "-- real edge"
go build -o "$work/circuit-breaker" ./deploy/cmd/circuit-breaker
"$work/circuit-breaker" --data-dir "$work/data" --nats-port -1 --http 127.0.0.1:0 --log-level warn >"$work/out" 2>"$work/err" &
pid=$!
url=
for _ in $(seq 1 100); do
  url=$(sed -n 's/^ *GraphQL: *\(http[^ ]*\).*/\1/p' "$work/out")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/err"; echo "circuit-breaker did not start"; exit 1; }
echo "edge at $url"
(cd edge/gql/conformance && GRAPHQL_URL="$url" GRAPHQL_SDL="$root/schema/schema.graphql" node --test)
