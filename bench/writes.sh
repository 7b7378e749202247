#!/usr/bin/env bash
# createIncident at 32 concurrent clients (release build), each client its own
# requester, on a database seeded with the demo data (routing rules, SLA
# targets, 1,000 tickets). Prints incidents per second and latency
# percentiles; every response and every ticket number is checked. See
# BENCHMARKS.md.
#
#   bash bench/writes.sh                       # PostgreSQL
#   BACKEND=sqlite bash bench/writes.sh
#   CONCURRENCY=8 DURATION=10 bash bench/writes.sh
#   BIN=path/to/itsm bash bench/writes.sh      # another build of the server
#   PROFILE=1 bash bench/writes.sh             # also a flamegraph of the server
set -euo pipefail
cd "$(dirname "$0")/.."

concurrency="${CONCURRENCY:-32}"
duration="${DURATION:-20}"
warmup="${WARMUP:-3}"
port="${PORT:-18187}"
profile="${PROFILE:-}"
out="${OUT:-target/bench}"
mkdir -p "$out"

# shellcheck source=bench/lib.sh
source bench/lib.sh
if [ -n "$profile" ]; then bench_profile_tools; fi
cargo build --release --locked -p itsm -p itsm-bench
itsm="${BIN:-target/release/itsm}"
workdir="$bench_workdir"
bench_database writes
export ITSM_JWT_SECRET="writes-benchmark-secret-0123456789abcdef"
export ITSM_LOG=warn
export ITSM_RATE_LIMIT=0

"$itsm" seed --demo --tickets 1000 >/dev/null
bench_serve "$port"

for n in $(seq 1 "$concurrency"); do
  "$itsm" token --sub "bench.requester.$n" --role requester --ttl 2h
done > "$workdir/tokens"
# shellcheck source=bench/cpu.sh
source bench/cpu.sh
statements() { bench_metric "$port" "itsm_db_statements_total{source=\"$1\"}"; }
server_before=$(ticks_of "$server"); postgres_before=$(postgres_ticks)
requests_before=$(statements requests); background_before=$(statements background)
statement_seconds() { bench_metric "$port" "itsm_db_statement_seconds_total{source=\"requests\"}"; }
seconds_before=$(statement_seconds)
echo "== $backend: createIncident, $concurrency clients"
target/release/itsm-bench writes --url "http://127.0.0.1:$port/graphql" \
  --tokens "$workdir/tokens" --concurrency "$concurrency" \
  --duration "$duration" --warmup "$warmup" | tee "$workdir/out"
server_cpu=$(( $(ticks_of "$server") - server_before )); postgres_cpu=$(( $(postgres_ticks) - postgres_before ))
made=$(awk '/^requests:/ {print $2}' "$workdir/out")
per_incident() { awk -v s="$1" -v n="$made" 'BEGIN { printf "%.1f", s / n }'; }
echo "SQL statements per incident: $(per_incident $(( $(statements requests) - requests_before ))) in the request, $(per_incident $(( $(statements background) - background_before ))) in the background"
echo "time in the request's statements per incident: $(awk -v a="$seconds_before" -v b="$(statement_seconds)" -v n="$made" 'BEGIN { printf "%.2f", (b - a) * 1000 / n }') ms"
echo "CPU per incident: server $(per_page_ms "$server_cpu" "$made") ms, PostgreSQL $(per_page_ms "$postgres_cpu" "$made") ms"

if [ -n "$profile" ]; then
  # Sampled apart from the measurement: unwinding costs the server CPU.
  echo "== profiling the server for 10 s"
  perf record -F 99 --call-graph dwarf,32768 -p "$server" -o "$out/writes.perf" -- sleep 10 \
    2>/dev/null &
  perf_pid=$!
  target/release/itsm-bench writes --url "http://127.0.0.1:$port/graphql" \
    --tokens "$workdir/tokens" --concurrency "$concurrency" --duration 10 --warmup 0 >/dev/null
  wait "$perf_pid"
  bench_flamegraph "$out/writes.perf"
fi
