#!/usr/bin/env bash
# Installs everything the test suite needs into .venv, then runs the whole suite.
# torch is installed first and pinned to the CPU build this machine kind carries on disk;
# installing anything that depends on torch before it would pull a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[dev,postgres,nvidia,diffusers]"
exec .venv/bin/python -m pytest "$@"
