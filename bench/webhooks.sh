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

live="${LIVE:-500}"
backlog="${BACKLOG:-2000}"
writers="${WRITERS:-8}"
port="${PORT:-18184}"
receiver="${RECEIVER:-127.0.0.1:18194}"

# shellcheck source=bench/lib.sh
source bench/lib.sh
cargo build --release --locked -p itsm -p itsm-bench
bench_database hooks
export ITSM_JWT_SECRET="webhook-benchmark-secret-0123456789"
export ITSM_LOG=warn
export ITSM_RATE_LIMIT=0
export ITSM_WEBHOOK_ALLOW="${receiver%:*}"

bench_serve "$port"

admin=$(target/release/itsm token --sub bench.admin --role admin --ttl 2h)
writer=$(target/release/itsm token --sub bench.requester --role requester --ttl 2h)
echo "== $backend: $live incidents live, $backlog in a backlog, $writers writers"
target/release/itsm-bench webhooks --url "http://127.0.0.1:$port/graphql" \
  --admin-token "$admin" --writer-token "$writer" --receiver "$receiver" \
  --live "$live" --backlog "$backlog" --writers "$writers"
