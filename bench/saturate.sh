#!/usr/bin/env bash
# WebSockets up to the machine's ceiling (PostgreSQL, release build): one
# server whose connection budget comes from its open-file limit, subscribers
# from two load-generator processes (one process may not hold as many sockets
# as the server), until upgrades are refused. Prints how fast refusals come,
# whether health and GraphQL answer while full, and how long recovery takes
# once the sockets close. See BENCHMARKS.md.
#
#   bash bench/saturate.sh
#   HOLD=5000 bash bench/saturate.sh     # the first process's share
set -euo pipefail
cd "$(dirname "$0")/.."

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
hold="${HOLD:-10000}"
port="${PORT:-18185}"
admin_port="${ADMIN_PORT:-18186}"

ulimit -n "$(ulimit -Hn)"

cargo build --release --locked -p itsm -p itsm-bench

database="itsm_bench_saturate_$$"
psql "$admin_url" -q -c "CREATE DATABASE $database"
server=""
holder=""
cleanup() {
  if [ -n "$holder" ]; then kill "$holder" 2>/dev/null || true; fi
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $database WITH (FORCE)"
  rm -rf "$work"
}
work=$(mktemp -d)
trap cleanup EXIT

export ITSM_DATABASE_URL="${admin_url%/*}/$database"
export ITSM_JWT_SECRET="saturate-benchmark-secret-0123456789abcd"
export ITSM_LOG="${ITSM_LOG:-warn,itsm=info}"
export ITSM_RATE_LIMIT=0
export ITSM_WS_MAX_PER_VIEWER=0

target/release/itsm seed --demo --tickets 200 >/dev/null
target/release/itsm serve --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin_port" \
  2> >(grep --line-buffered -E 'connection budget|file descriptors|accepting again' >&2) &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$admin_port/readyz" >/dev/null && break
  sleep 0.1
done
curl -fs "http://127.0.0.1:$admin_port/metrics" | grep -E '^itsm_(connection|websocket)_budget'

token=$(target/release/itsm token --sub nina.network --role agent --ttl 2h)
url="http://127.0.0.1:$port/graphql"
admin="http://127.0.0.1:$admin_port"

# The first process holds its share until its input closes.
mkfifo "$work/hold"
target/release/itsm-bench saturate --url "$url" --admin-url "$admin" --token "$token" \
  --hold "$hold" --keep < "$work/hold" > "$work/holder.out" &
holder=$!
exec 3> "$work/hold"
until grep -q holding "$work/holder.out" 2>/dev/null; do sleep 0.5; done
cat "$work/holder.out"

# The second fills the rest, measures, closes its sockets and times recovery.
target/release/itsm-bench saturate --url "$url" --admin-url "$admin" --token "$token" \
  --hold 19000
exec 3>&-
wait "$holder" || true
holder=""
curl -fs "$admin/metrics" | grep -E '^itsm_(refused|connections_dropped|accept_errors)'
