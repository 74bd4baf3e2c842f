#!/usr/bin/env bash
# Installs everything the test suite needs, then runs the whole suite.
#  - Debian packages: tmux (the live monitor and interactive mode are driven in a real
#    terminal) and chromium (the web dashboard is tested in a real headless browser),
#    prometheus and prometheus-alertmanager (alert rules and dashboards tested against them),
#    influxdb (1.x): the InfluxDB sink and export are tested against a real influxd.
#  - Python: torch first, pinned to the CPU build this machine kind carries on disk;
#    installing anything that depends on torch before it would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v tmux >/dev/null || missing+=(tmux)
[ -x /usr/bin/chromium ] || missing+=(chromium)
# prometheus (with promtool) and alertmanager: the rule tests and the end-to-end alert test.
command -v promtool >/dev/null || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v influxd >/dev/null || missing+=(influxdb)  # the InfluxDB sink's tests start their own
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    # No daemon may start on its default port: the tests start their own (policy-rc.d 101).
    policy=/usr/sbin/policy-rc.d own_policy=
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
      trap 'rm -f "$policy"' EXIT
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    [ -z "$own_policy" ] || rm -f "$policy"
  else
    echo "note: ${missing[*]} not installed (needs root); the tests that need them will skip" >&2
  fi
fi
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,postgres,nvidia,diffusers,predict]"
exec .venv/bin/python -m pytest "$@"
