#!/usr/bin/env bash
# Measures the agents' board (a 50-ticket queue page) on a database holding
# 10,000 demo tickets, at 32 concurrent clients, with the release build. On
# PostgreSQL it also measures, in the same run, the floor: the same page by
# hand-written SQL through pgbench (bench/board-floor.sql). Prints pages/s, the
# service's share of the floor, and CPU per page of the server process and of
# PostgreSQL for both. The load generator runs on the same machine as the
# server and the database, so all three share its cores.
#
#   bash bench/queue-page.sh                   # PostgreSQL, defaults below
#   BACKEND=sqlite bash bench/queue-page.sh    # a SQLite file (no floor)
#   TICKETS=2000 DURATION=10 bash bench/queue-page.sh
#   BIN=path/to/itsm bash bench/queue-page.sh  # another build of the server
#   PROFILE=1 bash bench/queue-page.sh         # also a flamegraph of the server
#   PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2 bash bench/queue-page.sh
#                                              # the server with another allocator
set -euo pipefail
cd "$(dirname "$0")/.."

tickets="${TICKETS:-10000}"
duration="${DURATION:-30}"
warmup="${WARMUP:-5}"
concurrency="${CONCURRENCY:-32}"
viewer="${VIEWER:-nina.network}"
port="${PORT:-18181}"
profile="${PROFILE:-}"
out="${OUT:-target/bench}"
mkdir -p "$out"

# shellcheck source=bench/lib.sh
source bench/lib.sh
if [ -n "$profile" ]; then bench_profile_tools; fi
cargo build --release --locked -p itsm -p itsm-bench
itsm="${BIN:-target/release/itsm}"
bench_database board

export ITSM_JWT_SECRET="queue-page-benchmark-secret-0123456789"
export ITSM_LOG=warn
# One token stands for every simulated client: the per-caller rate limit would
# measure the limiter, not the service.
export ITSM_RATE_LIMIT=0
# The first SLA sweep is waited out (see bench_wait_sweep); the next would
# come after a day.
export ITSM_SLA_SWEEP="${ITSM_SLA_SWEEP:-24h}"

echo "== seeding $tickets tickets ($backend)"
"$itsm" seed --demo --tickets "$tickets"
if [ "$backend" = postgres ]; then
  # Fresh planner statistics, as autovacuum would gather on a live system.
  psql "$ITSM_DATABASE_URL" -q -c "VACUUM ANALYZE"
fi

bench_serve "$port"
bench_wait_sweep "$port"

# shellcheck source=bench/cpu.sh
source bench/cpu.sh

token=$("$itsm" token --sub "$viewer" --role agent --ttl 1h)
bench() {
  target/release/itsm-bench queue-page --url "http://127.0.0.1:$port/graphql" --token "$token" \
    --concurrency "$concurrency" --page 50 --warmup 0 "$@"
}
echo "== warming up the service as $viewer"
bench --duration "$warmup" >/dev/null
echo "== measuring the service as $viewer"
server_before=$(ticks_of "$server"); postgres_before=$(postgres_ticks)
bench --duration "$duration" | tee "$out/service.txt"
server_cpu=$(( $(ticks_of "$server") - server_before )); postgres_cpu=$(( $(postgres_ticks) - postgres_before ))
pages=$(awk '/^requests:/ { print $2 }' "$out/service.txt")
service_rate=$(awk '/^throughput:/ { print $2 }' "$out/service.txt")

if [ -n "$profile" ]; then
  # Sampled apart from the measurement: unwinding costs the server CPU.
  echo "== profiling the server for 10 s"
  perf record -F 99 --call-graph dwarf,32768 -p "$server" -o "$out/board.perf" -- sleep 10 \
    2>/dev/null &
  perf_pid=$!
  bench --duration 10 >/dev/null
  wait "$perf_pid"
fi

echo
echo "== board page, $backend, $concurrency clients, $duration s"
printf '%-10s %10s %22s %24s\n' "" "pages/s" "server CPU per page" "PostgreSQL CPU per page"
if [ "$backend" = postgres ]; then
  queue_name=$(sed -n 's/^queue page: [0-9]* tickets of \(.*\) (.*/\1/p' "$out/service.txt")
  queue_id=$(psql "$ITSM_DATABASE_URL" -Atq -c "SELECT id FROM queues WHERE name = '$queue_name'")
  floor() {
    pgbench -n -f bench/board-floor.sql -D queue="$queue_id" -c "$concurrency" -j 2 "$@" "$ITSM_DATABASE_URL"
  }
  # The server stays up, idle, as it would beside the floor's clients.
  floor -T "$warmup" >/dev/null
  postgres_before=$(postgres_ticks)
  floor -T "$duration" > "$out/floor.txt"
  floor_postgres_cpu=$(( $(postgres_ticks) - postgres_before ))
  floor_pages=$(awk '/number of transactions actually processed/ { print $NF }' "$out/floor.txt")
  floor_rate=$(awk '/^tps = / { printf "%.0f", $3 }' "$out/floor.txt")
  printf '%-10s %10s %19s ms %21s ms\n' service "$service_rate" \
    "$(per_page_ms "$server_cpu" "$pages")" "$(per_page_ms "$postgres_cpu" "$pages")"
  printf '%-10s %10s %22s %21s ms\n' floor "$floor_rate" "-" \
    "$(per_page_ms "$floor_postgres_cpu" "$floor_pages")"
  awk -v s="$service_rate" -v f="$floor_rate" 'BEGIN { printf "service / floor: %.0f %%\n", (f > 0 ? 100 * s / f : 0) }'
else
  printf '%-10s %10s %19s ms %24s\n' service "$service_rate" "$(per_page_ms "$server_cpu" "$pages")" "-"
fi

if [ -n "$profile" ]; then
  bench_flamegraph "$out/board.perf"
fi
