"""``genperf status`` right after the monitor stopped: a real monitor in another process, a
real ``genperf status`` process, one SQLite database. The newest sample is still fresh then;
the monitor's own word (stopped), or its process being gone (killed), decides."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# A monitor sampling every 0.2 s until its stdin closes (then it stops cleanly).
MONITOR = """
import sys
from genperf.monitor import PerformanceMonitor
from genperf.config import load_settings

with PerformanceMonitor(load_settings()) as monitor:
    monitor.current_sample()
    monitor.flush()
    print("sampling", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GENPERF_DATA_DIR": str(tmp_path / "data"),
        "GENPERF_NODE_NAME": "status-node",
        "GENPERF_ENABLE_GPU_MONITORING": "false",
        "GENPERF_MONITORING_INTERVAL_SECONDS": "0.2",
        "GENPERF_SAMPLE_FLUSH_SECONDS": "0.2",
        "COLUMNS": "120",
    }


def status(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "genperf", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return next(line for line in out.splitlines() if line.startswith("Monitor:"))


def start_monitor(env: dict[str, str]) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", MONITOR],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "sampling"
    return proc


def test_status_says_stopped_as_soon_as_the_monitor_stopped(env: dict[str, str]) -> None:
    proc = start_monitor(env)
    try:
        assert status(env).startswith("Monitor: running on status-node")
    finally:
        proc.communicate(input="", timeout=60)  # stdin closed: a clean stop
    assert proc.returncode == 0
    line = status(env)
    assert line.startswith("Monitor: not sampling"), line  # its newest sample is seconds old


def test_status_says_stopped_as_soon_as_the_monitor_was_killed(env: dict[str, str]) -> None:
    proc = start_monitor(env)
    try:
        assert status(env).startswith("Monitor: running")
    finally:
        proc.send_signal(signal.SIGKILL)  # no chance to say it stopped
        proc.communicate(timeout=60)
    line = status(env)
    assert line.startswith("Monitor: not sampling"), line
