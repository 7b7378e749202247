#!/usr/bin/env bash
# Prints the path of a `moto_server` binary (an S3-compatible test server from
# PyPI), installing moto in a virtual environment inside the clone
# (target/ci-tools/moto) the first time. The attachment tests start their own
# server on a free port; nothing runs after they end.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$PWD/target/ci-tools/moto"
server="$venv/bin/moto_server"
if [ ! -x "$server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
echo "$server"
