"""``genperf agent`` on its own: it samples this node into the database under its --node name
until SIGTERM, then stops cleanly; bad options are refused naming the option."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

GENPERF = [sys.executable, "-m", "genperf"]


def _env(tmp_path) -> dict[str, str]:
    env = {
        **os.environ,
        "GENPERF_DATA_DIR": str(tmp_path),
        "GENPERF_MONITORING_INTERVAL_SECONDS": "0.2",
        "GENPERF_SAMPLE_FLUSH_SECONDS": "0.2",
        "GENPERF_ENABLE_GPU_MONITORING": "false",
    }
    env.pop("GENPERF_DATABASE_URL", None)
    return env


def _rows(url: str, query: str) -> list:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query)).all())
    except Exception:  # not made yet
        return []
    finally:
        engine.dispose()


def test_the_agent_samples_under_its_node_name_until_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'genperf.db'}"
    proc = subprocess.Popen(
        [*GENPERF, "agent", "--node", "agent-7"],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not _rows(url, "SELECT node FROM system_samples WHERE node = 'agent-7'"):
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "no sample from the agent"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=60)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    assert "node agent-7" in output
    monitors = _rows(url, "SELECT node, stopped_at FROM genperf_monitors")
    assert [(node, stopped is not None) for node, stopped in monitors] == [("agent-7", True)]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--node", "two words"], "--node"),
        (["--node", "-dash"], "--node"),
        (["--model-type", "tiny-wan-t2v"], "--model-type"),
    ],
)
def test_bad_options_are_refused_naming_them(tmp_path, args, named):
    done = subprocess.run(
        [*GENPERF, "agent", *args], check=False, env=_env(tmp_path), capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert named in (done.stdout + done.stderr).decode()


def test_a_metrics_listener_off_loopback_needs_a_token(tmp_path):
    done = subprocess.run(
        [*GENPERF, "agent", "--metrics-port", "9", "--metrics-host", "0.0.0.0"],
        check=False,
        env=_env(tmp_path),
        capture_output=True,
        timeout=60,
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0
    assert "--metrics-port" in output
    assert "token" in output
    assert "Traceback" not in output
