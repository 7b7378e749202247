#!/usr/bin/env bash
# Installs what the client examples (and their tests in tests/api/examples.rs)
# need, from the project's own files: Debian's Chromium for the browser
# examples, the Node packages pinned in examples/package-lock.json, and the
# Python packages pinned in examples/python-integrator/requirements.txt (in a
# virtual environment inside the checkout).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v chromium >/dev/null; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium
fi
chromium --version

npm ci --no-audit --no-fund --loglevel=error
node --version

if [ ! -x python-integrator/.venv/bin/python ]; then
  python3 -m venv python-integrator/.venv
fi
python-integrator/.venv/bin/pip install --quiet --disable-pip-version-check \
  -r python-integrator/requirements.txt
python-integrator/.venv/bin/python --version
