#!/usr/bin/env bash
# Measures the agents' board (a 50-ticket queue page) on PostgreSQL holding
# 10,000 demo tickets, at 32 concurrent clients, with the release build, and in
# the same run the floor: the same page by hand-written SQL through pgbench
# (bench/board-floor.sql). Prints pages/s, the service's share of the floor,
# and CPU per page of the server process and of PostgreSQL for both. The load
# generator runs on the same machine as the server and PostgreSQL, so all
# three share its cores.
#
#   bash bench/queue-page.sh                   # defaults below
#   TICKETS=2000 DURATION=10 bash bench/queue-page.sh
#   PROFILE=1 bash bench/queue-page.sh         # also a flamegraph of the server
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
tickets="${TICKETS:-10000}"
duration="${DURATION:-30}"
warmup="${WARMUP:-5}"
concurrency="${CONCURRENCY:-32}"
viewer="${VIEWER:-nina.network}"
port="${PORT:-18181}"
profile="${PROFILE:-}"
out="${OUT:-target/bench}"
mkdir -p "$out"

if [ -n "$profile" ]; then
  # Symbols and line tables for perf; the shipped build strips them.
  export CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
  command -v inferno-flamegraph >/dev/null ||
    cargo install inferno --locked --version 0.12.8 --root target/bench-tools
  export PATH="$PWD/target/bench-tools/bin:$PATH"
fi
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

# CPU clock ticks of one process, and of every PostgreSQL process together
# (with the backends that ended, which the postmaster reaped: cutime/cstime).
ticks_of() { awk '{ s = $0; sub(/^[^)]*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
postgres_ticks() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk '
    { comm = $0; sub(/^[0-9]+ \(/, "", comm); sub(/\).*/, "", comm)
      s = $0; sub(/^[^)]*\) /, "", s); split(s, f, " ") }
    comm == "postgres" { total += f[12] + f[13] + f[14] + f[15] }
    END { print total + 0 }'
}
hz=$(getconf CLK_TCK)
per_page_ms() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.2f", n > 0 ? t * 1000 / hz / n : 0 }'; }

token=$(target/release/itsm token --sub "$viewer" --role agent --ttl 1h)
bench() {
  target/release/itsm-bench queue-page --url "http://127.0.0.1:$port/graphql" --token "$token" \
    --concurrency "$concurrency" --page 50 --warmup 0 "$@"
}
echo "== warming up the service as $viewer"
bench --duration "$warmup" >/dev/null
echo "== measuring the service as $viewer"
server_before=$(ticks_of "$server"); postgres_before=$(postgres_ticks)
if [ -n "$profile" ]; then
  perf record -F 499 -g -p "$server" -o "$out/board.perf" -- sleep "$duration" 2>/dev/null &
  perf_pid=$!
fi
bench --duration "$duration" | tee "$out/service.txt"
server_cpu=$(( $(ticks_of "$server") - server_before )); postgres_cpu=$(( $(postgres_ticks) - postgres_before ))
[ -n "$profile" ] && wait "$perf_pid"
pages=$(awk '/^requests:/ { print $2 }' "$out/service.txt")
service_rate=$(awk '/^throughput:/ { print $2 }' "$out/service.txt")
queue_name=$(sed -n 's/^queue page: [0-9]* tickets of \(.*\) (.*/\1/p' "$out/service.txt")
queue_id=$(psql "$ITSM_DATABASE_URL" -Atq -c "SELECT id FROM queues WHERE name = '$queue_name'")

echo "== the floor: the same page by hand-written SQL (bench/board-floor.sql), queue $queue_id"
floor() {
  pgbench -n -f bench/board-floor.sql -D queue="$queue_id" -c "$concurrency" -j 2 "$@" "$ITSM_DATABASE_URL"
}
floor -T "$warmup" >/dev/null
postgres_before=$(postgres_ticks)
floor -T "$duration" | tee "$out/floor.txt"
floor_postgres_cpu=$(( $(postgres_ticks) - postgres_before ))
floor_pages=$(awk '/number of transactions actually processed/ { print $NF }' "$out/floor.txt")
floor_rate=$(awk '/^tps = / { printf "%.0f", $3 }' "$out/floor.txt")

echo
echo "== board page, $concurrency clients, $duration s each"
printf '%-10s %10s %22s %24s\n' "" "pages/s" "server CPU per page" "PostgreSQL CPU per page"
printf '%-10s %10s %19s ms %21s ms\n' service "$service_rate" \
  "$(per_page_ms "$server_cpu" "$pages")" "$(per_page_ms "$postgres_cpu" "$pages")"
printf '%-10s %10s %22s %21s ms\n' floor "$floor_rate" "-" \
  "$(per_page_ms "$floor_postgres_cpu" "$floor_pages")"
awk -v s="$service_rate" -v f="$floor_rate" 'BEGIN { printf "service / floor: %.0f %%\n", f > 0 ? 100 * s / f : 0 }'

if [ -n "$profile" ]; then
  perf script -i "$out/board.perf" 2>/dev/null | inferno-collapse-perf > "$out/board.folded"
  inferno-flamegraph < "$out/board.folded" > "$out/board.svg"
  echo "== flamegraph: $out/board.svg; the heaviest frames (self time):"
  perf report -i "$out/board.perf" --no-children --stdio --percent-limit 1.5 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -25
fi
