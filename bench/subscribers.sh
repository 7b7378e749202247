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
#   FLOOR= bash bench/subscribers.sh                 # without the floor runs
#
# After the service, the same subscribers receive the same messages from a
# minimal fan-out server (FLOOR="direct tasks" by default): "direct" writes
# each socket its bytes from one loop, "tasks" has a task and a queue per
# socket as the service does. Their figures are the floor on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."

subscribers="${SUBSCRIBERS:-10000}"
events="${EVENTS:-30}"
interval_ms="${INTERVAL_MS:-1000}"
port="${PORT:-18183}"
per_socket="${PER_SOCKET:-1}"
viewers="${VIEWERS:-1}"
profile="${PROFILE:-}"
floors="${FLOOR-direct tasks}"
out="${OUT:-target/bench}"
mkdir -p "$out"

# Every subscription is a socket on both ends.
ulimit -n "$(ulimit -Hn)"

# shellcheck source=bench/lib.sh
source bench/lib.sh
if [ -n "$profile" ]; then bench_profile_tools; fi
cargo build --release --locked -p itsm -p itsm-bench
bench_database subs
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
bench_serve "$port"
if [ "$quiet" = 1 ]; then bench_wait_sweep "$port"; fi
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
echo "== the service"
target/release/itsm-bench subscribers --url "http://127.0.0.1:$port/graphql" \
  "${tokens[@]}" --writer-token "$manager" --server-pid "$server" \
  --subscribers "$subscribers" --per-socket "$per_socket" \
  --events "$events" --interval-ms "$interval_ms" \
  --connect-concurrency "${CONNECT_CONCURRENCY:-200}"

if [ -n "$profile" ]; then
  wait "$perf_job"
  bench_flamegraph "$out/fanout.perf"
fi

# The floor: the service stops first, so that it holds no sockets and burns
# no CPU beside the floor server.
bench_stop
for floor in $floors; do
  echo "== floor: $floor"
  target/release/itsm-bench subscribers --floor "$floor" \
    --subscribers "$subscribers" --per-socket "$per_socket" \
    --events "$events" --interval-ms "$interval_ms" \
    --connect-concurrency "${CONNECT_CONCURRENCY:-200}"
done
