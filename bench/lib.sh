# Setup shared by the benchmark scripts, sourced by them after `cd` to the
# repository: the database, the server, waiting for it, and clean-up on exit.
# Reads BACKEND (postgres, the default, or sqlite), ITSM_BENCH_POSTGRES_URL,
# and `itsm` (the server binary; target/release/itsm unless set).

admin_url="${ITSM_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Parameters of that URL (such as `?sslmode=disable`) apply to the
# benchmark's database too.
bench_url_params=""
case "$admin_url" in *\?*) bench_url_params="?${admin_url#*\?}" ;; esac
backend="${BACKEND:-postgres}"
server=""
bench_database_name=""
mkdir -p target
bench_workdir="$(mktemp -d "$PWD/target/bench-work.XXXXXX")"

bench_cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  if [ -n "$bench_database_name" ]; then
    psql "$admin_url" -q -c "DROP DATABASE IF EXISTS $bench_database_name WITH (FORCE)"
  fi
  rm -rf "$bench_workdir"
}
trap bench_cleanup EXIT

# bench_database NAME: a fresh database on $backend, as ITSM_DATABASE_URL.
bench_database() {
  case "$backend" in
    postgres)
      bench_database_name="itsm_bench_$1_$$"
      psql "$admin_url" -q -c "CREATE DATABASE $bench_database_name"
      local base="${admin_url%%\?*}"
      export ITSM_DATABASE_URL="${base%/*}/$bench_database_name$bench_url_params"
      ;;
    sqlite)
      export ITSM_DATABASE_URL="sqlite://$bench_workdir/itsm.db?mode=rwc"
      ;;
    *) echo "BACKEND is postgres or sqlite" >&2; exit 2 ;;
  esac
}

# bench_serve PORT: starts the server (with $PRELOAD, if set, as LD_PRELOAD)
# as $server and waits until it is ready.
bench_serve() {
  LD_PRELOAD="${PRELOAD:-}" "${itsm:-target/release/itsm}" serve --listen "127.0.0.1:$1" &
  server=$!
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$1/readyz" >/dev/null && return
    sleep 0.1
  done
  echo "the server did not become ready on port $1" >&2
  exit 1
}

# bench_stop: stops the server.
bench_stop() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  server=""
}

# bench_metric PORT NAME: one sample of the server's /metrics.
bench_metric() {
  curl -fs "http://127.0.0.1:$1/metrics" | awk -v name="$2" 'index($0, name " ") == 1 { print $2 }'
}

# bench_wait_sweep PORT: waits until the first SLA sweep has run and the
# background work it caused (the events' fan-out) has died down to the event
# pump's idle polling. The demo's tickets are backdated, so that sweep raises
# hundreds of warnings and breaches at once: work that is not the measurement.
# Run with ITSM_SLA_SWEEP=24h, so that the next sweep comes after a day.
bench_wait_sweep() {
  echo "== waiting for the first SLA sweep and its events"
  local background='itsm_db_statements_total{source="background"}' last now sweeps
  last=$(bench_metric "$1" "$background")
  for _ in $(seq 1 300); do
    sleep 1
    now=$(bench_metric "$1" "$background")
    sweeps=$(bench_metric "$1" 'itsm_sla_sweeps_total{result="ok"}')
    [ "${sweeps:-0}" -ge 1 ] && [ $((now - last)) -lt 10 ] && return
    last=$now
  done
}

# bench_profile_tools: symbols and line tables for perf's DWARF unwinding (the
# shipped build strips them), and inferno for the flamegraph.
bench_profile_tools() {
  export CARGO_PROFILE_RELEASE_STRIP=none CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
  command -v inferno-flamegraph >/dev/null ||
    cargo install inferno --locked --version 0.12.8 --root target/bench-tools
  export PATH="$PWD/target/bench-tools/bin:$PATH"
}

# bench_flamegraph PERF_FILE: draws PERF_FILE's samples as an SVG beside it
# (same name, .svg) and prints the heaviest frames by self time.
bench_flamegraph() {
  local base="${1%.perf}"
  perf script -i "$1" 2>/dev/null | inferno-collapse-perf > "$base.folded"
  inferno-flamegraph < "$base.folded" > "$base.svg"
  echo "== flamegraph: $base.svg; the heaviest frames (self time):"
  perf report -i "$1" --no-children --stdio --percent-limit 1.5 2>/dev/null |
    grep -E '^ +[0-9.]+%' | head -25
}
