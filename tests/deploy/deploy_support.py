"""Helpers shared by the deploy tests: the real Prometheus tools, found or skipped."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
DASHBOARDS_DIR = DEPLOY / "grafana" / "dashboards"


def tool(name: str) -> str:
    """The path of a Debian tool (promtool, prometheus, prometheus-alertmanager, amtool).

    Without it the test is skipped, except under CI (``CI=true``), where scripts/test.sh
    installs it and a missing tool is a failure: CI must never pass by skipping.
    """
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not installed (apt-get install prometheus prometheus-alertmanager)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def run_tool(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
