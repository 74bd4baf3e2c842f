#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#  - Debian packages: tmux (the live monitor and interactive mode are driven in a real
#    terminal) and chromium (the web dashboard is tested in a real headless browser).
#  - Python: torch first, pinned to the CPU build this machine kind carries on disk;
#    installing anything that depends on torch before it would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v tmux >/dev/null || missing+=(tmux)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "note: ${missing[*]} not installed (needs root); the tests that need them will skip" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,postgres,nvidia,diffusers,predict]"
exec .venv/bin/python -m pytest "$@"
