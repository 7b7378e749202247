#!/usr/bin/env bash
# Prints the path of a promtool binary, unpacking Debian's prometheus package
# inside the clone (target/ci-tools) the first time: only promtool is used, so
# nothing is installed and no Prometheus server starts.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD/target/ci-tools/prometheus"
promtool="$root/usr/bin/promtool"
if [ ! -x "$promtool" ]; then
  mkdir -p "$root"
  download="$(mktemp -d)"
  if ! (cd "$download" && apt-get download prometheus >/dev/null 2>&1); then
    apt-get update -qq >/dev/null
    (cd "$download" && apt-get download prometheus >/dev/null)
  fi
  dpkg-deb -x "$download"/prometheus_*.deb "$root"
  rm -rf "$download"
fi
echo "$promtool"
