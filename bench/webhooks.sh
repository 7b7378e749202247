#!/usr/bin/env bash
# Webhook delivery to a local receiver (release build): throughput of one
# endpoint, and the time from commit to delivery while writers write. See
# BENCHMARKS.md.
#
#   bash bench/webhooks.sh                      # PostgreSQL
#   BACKEND=sqlite bash bench/webhooks.sh
#   LIVE=200 BACKLOG=500 WRITERS=4 bash bench/webhooks.sh
set -euo pipefail
cd "$(dirname "$0")/.."

backend="${BACKEND:-postgres}"
admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
live="${LIVE:-500}"
backlog="${BACKLOG:-2000}"
writers="${WRITERS:-8}"
port="${PORT:-18184}"
receiver="${RECEIVER:-127.0.0.1:18194}"

cargo build --release --locked -p itsm -p itsm-bench

workdir="$(mktemp -d)"
server=""
database=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$database" ]; then psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"; fi
  rm -rf "$workdir"
}
trap cleanup EXIT

if [ "$backend" = "sqlite" ]; then
  export ITSM_DATABASE_URL="sqlite://$workdir/bench.db"
else
  database="itsm_bench_hooks_$$"
  psql "$admin_url" -q -c "CREATE DATABASE $database"
  export ITSM_DATABASE_URL="${admin_url%/*}/$database"
fi
export ITSM_JWT_SECRET="webhook-benchmark-secret-0123456789"
export ITSM_LOG=warn
export ITSM_RATE_LIMIT=0
export ITSM_WEBHOOK_ALLOW="${receiver%:*}"

target/release/itsm serve --listen "127.0.0.1:$port" &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done

admin=$(target/release/itsm token --sub bench.admin --role admin --ttl 2h)
writer=$(target/release/itsm token --sub bench.requester --role requester --ttl 2h)
echo "== $backend: $live incidents live, $backlog in a backlog, $writers writers"
target/release/itsm-bench webhooks --url "http://127.0.0.1:$port/graphql" \
  --admin-token "$admin" --writer-token "$writer" --receiver "$receiver" \
  --live "$live" --backlog "$backlog" --writers "$writers"
