#!/usr/bin/env bash
# Holds many WebSocket subscriptions on one server (release build, PostgreSQL)
# and streams ticket changes to them; prints delivery latency, events lost and
# the server's CPU and memory per subscriber. See BENCHMARKS.md.
#
#   bash bench/subscribers.sh                        # 10,000 subscribers
#   SUBSCRIBERS=1000 EVENTS=20 bash bench/subscribers.sh
#   SUBSCRIBERS=20000 PER_SOCKET=2 bash bench/subscribers.sh   # 2 per socket
#   VIEWERS=100 bash bench/subscribers.sh            # 100 different viewers
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
subscribers="${SUBSCRIBERS:-10000}"
events="${EVENTS:-30}"
interval_ms="${INTERVAL_MS:-1000}"
port="${PORT:-18183}"
per_socket="${PER_SOCKET:-1}"
viewers="${VIEWERS:-1}"

# Every subscription is a socket on both ends.
ulimit -n "$(ulimit -Hn)"

cargo build --release --locked -p itsm -p itsm-bench

database="itsm_bench_subs_$$"
psql "$admin_url" -q -c "CREATE DATABASE $database"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
}
trap cleanup EXIT

export ITSM_DATABASE_URL="${admin_url%/*}/$database"
export ITSM_JWT_SECRET="subscriber-benchmark-secret-0123456789"
export ITSM_LOG=warn
# One token stands for every simulated client: the per-caller rate limit and
# socket cap would measure the limits, not the service.
export ITSM_RATE_LIMIT=0
export ITSM_WS_MAX_PER_VIEWER=0

target/release/itsm seed --demo --tickets 200 >/dev/null
target/release/itsm serve --listen "127.0.0.1:$port" &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done

agent=$(target/release/itsm token --sub nina.network --role agent --ttl 2h)
manager=$(target/release/itsm token --sub mia.manager --role manager --ttl 2h)
# The first viewer is the queue's agent; any others are managers (who see
# every queue), each a different person.
tokens=(--token "$agent")
for i in $(seq 2 "$viewers"); do
  tokens+=(--token "$(target/release/itsm token --sub "bench.viewer.$i" --role manager --ttl 2h)")
done
target/release/itsm-bench subscribers --url "http://127.0.0.1:$port/graphql" \
  "${tokens[@]}" --writer-token "$manager" --server-pid "$server" \
  --subscribers "$subscribers" --per-socket "$per_socket" \
  --events "$events" --interval-ms "$interval_ms"
