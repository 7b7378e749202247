#!/usr/bin/env bash
# HTTP overload: the agents' board page (PostgreSQL, release build) unloaded,
# at the rate the server sustains, and offered at three times that rate; then
# the same offered load against the same server with the request limit off
# (ITSM_MAX_REQUESTS=0: every request queues for the pool), to show what
# shedding buys. See BENCHMARKS.md.
#
#   bash bench/overload.sh
#   TICKETS=2000 DURATION=10 FACTOR=3 bash bench/overload.sh
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
tickets="${TICKETS:-10000}"
duration="${DURATION:-20}"
factor="${FACTOR:-3}"
port="${PORT:-18184}"

# Open-loop requests each hold a socket on both ends.
ulimit -n "$(ulimit -Hn)"

cargo build --release --locked -p itsm -p itsm-bench

database="itsm_bench_overload_$$"
log=$(mktemp)
psql "$admin_url" -q -c "CREATE DATABASE $database"
server=""
stop_server() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
}
cleanup() {
  stop_server
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
  echo "== server warnings and errors: $(grep -c . "$log" || true) lines (kept in $log)"
}
trap cleanup EXIT

export ITSM_DATABASE_URL="${admin_url%/*}/$database"
export ITSM_JWT_SECRET="overload-benchmark-secret-0123456789abc"
export ITSM_LOG=warn
# One token stands for every simulated client: the per-caller rate limit would
# measure the limiter, not the service.
export ITSM_RATE_LIMIT=0

echo "== seeding $tickets tickets"
target/release/itsm seed --demo --tickets "$tickets" >/dev/null
psql "$ITSM_DATABASE_URL" -q -c "VACUUM ANALYZE"

start_server() {
  target/release/itsm serve --listen "127.0.0.1:$port" "$@" 2>>"$log" &
  server=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "the server did not become ready" >&2
  exit 1
}

token=$(target/release/itsm token --sub nina.network --role agent --ttl 1h)
url="http://127.0.0.1:$port/graphql"

echo "== with the request limit (ITSM_MAX_REQUESTS=${ITSM_MAX_REQUESTS:-32})"
start_server
report=$(target/release/itsm-bench overload --url "$url" --token "$token" \
  --duration "$duration" --factor "$factor")
printf '%s\n' "$report"
stop_server
rate=$(printf '%s\n' "$report" | sed -n 's/^sustained rate: //p')

echo "== the same offered load without it (ITSM_MAX_REQUESTS=0)"
ITSM_MAX_REQUESTS=0 start_server
target/release/itsm-bench overload --url "$url" --token "$token" \
  --duration "$duration" --factor "$factor" --rate "$rate" --tolerate-failures
