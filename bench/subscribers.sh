#!/usr/bin/env bash
# Holds many WebSocket subscriptions on one server (release build, PostgreSQL)
# and streams ticket changes to them; prints delivery latency, events lost and
# the server's CPU and memory per subscriber. See BENCHMARKS.md.
#
#   bash bench/subscribers.sh                        # 10,000 subscribers
#   SUBSCRIBERS=1000 EVENTS=20 bash bench/subscribers.sh
#   SUBSCRIBERS=20000 PER_SOCKET=2 bash bench/subscribers.sh   # 2 per socket
#   VIEWERS=100 bash bench/subscribers.sh            # 100 different viewers
#   PROFILE=1 bash bench/subscribers.sh              # also a flamegraph of the fan-out
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
subscribers="${SUBSCRIBERS:-10000}"
events="${EVENTS:-30}"
interval_ms="${INTERVAL_MS:-1000}"
port="${PORT:-18183}"
per_socket="${PER_SOCKET:-1}"
viewers="${VIEWERS:-1}"
profile="${PROFILE:-}"
out="${OUT:-target/bench}"
mkdir -p "$out"

# Every subscription is a socket on both ends.
ulimit -n "$(ulimit -Hn)"

if [ -n "$profile" ]; then
  # Symbols and line tables for perf's DWARF unwinding; the shipped build
  # strips them.
  export CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
  command -v inferno-flamegraph >/dev/null ||
    cargo install inferno --locked --version 0.12.8 --root target/bench-tools
  export PATH="$PWD/target/bench-tools/bin:$PATH"
fi
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
# The demo's tickets are backdated, so the SLA sweep raises hundreds of
# warnings and breaches for them at once: a burst every subscriber of the
# queue receives. With QUIET=1 (the default) the run waits that first sweep
# out and the next comes after a day, so the changes are measured alone;
# QUIET=0 keeps the sweep every minute, as the runs before 2026-12-01 did.
quiet="${QUIET:-1}"
if [ "$quiet" = 1 ]; then
  export ITSM_SLA_SWEEP="${ITSM_SLA_SWEEP:-24h}"
fi

target/release/itsm seed --demo --tickets 200 >/dev/null
target/release/itsm serve --listen "127.0.0.1:$port" &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null && break
  sleep 0.1
done

if [ "$quiet" = 1 ]; then
  sample() {
    curl -fs "http://127.0.0.1:$port/metrics" | awk -v name="$1" 'index($0, name " ") == 1 { print $2 }'
  }
  echo "== waiting for the first SLA sweep and its events"
  last=$(sample 'itsm_db_statements_total{source="background"}')
  for _ in $(seq 1 300); do
    sleep 1
    now=$(sample 'itsm_db_statements_total{source="background"}')
    sweeps=$(sample 'itsm_sla_sweeps_total{result="ok"}')
    [ "${sweeps:-0}" -ge 1 ] && [ $((now - last)) -lt 10 ] && break
    last=$now
  done
fi
agent=$(target/release/itsm token --sub nina.network --role agent --ttl 2h)
manager=$(target/release/itsm token --sub mia.manager --role manager --ttl 2h)
# The first viewer is the queue's agent; any others are managers (who see
# every queue), each a different person.
tokens=(--token "$agent")
for i in $(seq 2 "$viewers"); do
  tokens+=(--token "$(target/release/itsm token --sub "bench.viewer.$i" --role manager --ttl 2h)")
done
if [ -n "$profile" ]; then
  # Samples the changes, not the ramp-up: starts once the ramp-up (about a
  # second per thousand subscribers, plus two to settle) should be over.
  # Unwinding costs the server CPU: this run's figures are not the measurement.
  (
    sleep "${PROFILE_AFTER:-$(( subscribers / 1000 + 4 ))}"
    perf record -F 99 --call-graph dwarf,32768 -p "$server" -o "$out/fanout.perf" \
      -- sleep "${PROFILE_FOR:-15}" 2>/dev/null
  ) &
  perf_job=$!
fi
target/release/itsm-bench subscribers --url "http://127.0.0.1:$port/graphql" \
  "${tokens[@]}" --writer-token "$manager" --server-pid "$server" \
  --subscribers "$subscribers" --per-socket "$per_socket" \
  --events "$events" --interval-ms "$interval_ms" \
  --connect-concurrency "${CONNECT_CONCURRENCY:-200}"

if [ -n "$profile" ]; then
  wait "$perf_job"
  perf script -i "$out/fanout.perf" 2>/dev/null | inferno-collapse-perf > "$out/fanout.folded"
  inferno-flamegraph < "$out/fanout.folded" > "$out/fanout.svg"
  echo "== flamegraph: $out/fanout.svg; the heaviest frames (self time):"
  perf report -i "$out/fanout.perf" --no-children --stdio --percent-limit 1.5 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -25
fi
