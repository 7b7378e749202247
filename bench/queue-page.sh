#!/usr/bin/env bash
# Measures a 50-ticket queue page on PostgreSQL holding 10,000 demo tickets, at
# 32 concurrent clients, with the release build. The load generator runs on the
# same machine as the server and PostgreSQL, so all three share its cores.
#
#   bash bench/queue-page.sh                   # defaults below
#   TICKETS=2000 DURATION=10 bash bench/queue-page.sh
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
tickets="${TICKETS:-10000}"
duration="${DURATION:-30}"
concurrency="${CONCURRENCY:-32}"
viewer="${VIEWER:-nina.network}"
port="${PORT:-18181}"

cargo build --release --locked -p itsm -p itsm-bench

database="itsm_bench_$$"
psql "$admin_url" -q -c "CREATE DATABASE $database"
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
}
trap cleanup EXIT

export ITSM_DATABASE_URL="${admin_url%/*}/$database"
export ITSM_JWT_SECRET="queue-page-benchmark-secret-0123456789"
export ITSM_LOG=warn
# One token stands for every simulated client: the per-caller rate limit would
# measure the limiter, not the service.
export ITSM_RATE_LIMIT=0

echo "== seeding $tickets tickets"
target/release/itsm seed --demo --tickets "$tickets"
# Fresh planner statistics, as autovacuum would gather on a live system.
psql "$ITSM_DATABASE_URL" -q -c "VACUUM ANALYZE"

target/release/itsm serve --listen "127.0.0.1:$port" &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done

token=$(target/release/itsm token --sub "$viewer" --role agent --ttl 1h)
echo "== measuring as $viewer"
target/release/itsm-bench queue-page --url "http://127.0.0.1:$port/graphql" --token "$token" \
  --concurrency "$concurrency" --page 50 --duration "$duration" --warmup 5
