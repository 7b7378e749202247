# CPU accounting for the benchmark scripts, sourced by them.

# CPU clock ticks of one process, and of every PostgreSQL process together
# (with the backends that ended, which the postmaster reaped: cutime/cstime).
ticks_of() { awk '{ s = $0; sub(/^[^)]*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
postgres_ticks() {
  # A process may end between the glob and the read: cat then fails, which
  # must not end the script (pipefail).
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '
    { comm = $0; sub(/^[0-9]+ \(/, "", comm); sub(/\).*/, "", comm)
      s = $0; sub(/^[^)]*\) /, "", s); split(s, f, " ") }
    comm == "postgres" { total += f[12] + f[13] + f[14] + f[15] }
    END { print total + 0 }'
}
hz=$(getconf CLK_TCK)
# Milliseconds of CPU per item: per_page_ms <ticks> <items>.
per_page_ms() { awk -v t="$1" -v n="$2" -v hz="$hz" 'BEGIN { printf "%.2f", (n > 0 ? t * 1000 / hz / n : 0) }'; }
