"""``genperf monitor 5 | tee log``: with stdout a pipe, each refresh comes out as it is drawn.

A real ``python -m genperf monitor`` process writes into a real pipe; the test reads the pipe
while the process runs, then terminates it, as a person ends ``tee`` with Ctrl-C or ``kill``.
"""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

from genperf.records import utc_now
from genperf.storage import SqlStore

from .conftest import NODE
from .test_remote import recent_tasks

pytestmark = pytest.mark.slow

FRAME = b"Running now"  # a heading every frame has
WAIT_SECONDS = 30.0


def read_until(stream: IO[bytes], count: int, seen: bytes = b"") -> bytes:
    """Read the pipe until FRAME appeared ``count`` times; fail after WAIT_SECONDS."""
    fd = stream.fileno()
    deadline = time.monotonic() + WAIT_SECONDS
    while seen.count(FRAME) < count:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{count} frames did not come in time; got:\n{seen.decode()}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"the monitor ended early; got:\n{seen.decode()}")
            seen += chunk
    return seen


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    store = SqlStore(f"sqlite:///{data / 'genperf.db'}")
    for record in recent_tasks(utc_now()):
        store.save_task(record)
    store.close()
    return {
        **os.environ,
        "GENPERF_DATA_DIR": str(data),
        "GENPERF_NODE_NAME": NODE,
        "GENPERF_ENABLE_GPU_MONITORING": "false",
        "COLUMNS": "100",
    }


def test_each_frame_reaches_the_pipe_while_the_monitor_runs_and_stays_when_it_is_killed(env):
    proc = subprocess.Popen(
        [sys.executable, "-m", "genperf", "monitor", "0.5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        seen = read_until(proc.stdout, 1)
        assert proc.poll() is None  # the first frame came out while the monitor runs
        seen = read_until(proc.stdout, 2, seen)  # and the next refresh after it
        assert proc.poll() is None
    finally:
        proc.terminate()  # what `kill` does; the frames already out stay out
        rest, _ = proc.communicate(timeout=30)
    text = (seen + rest).decode()
    assert text.count("Running now") >= 2
    assert "\x1b[?1049h" not in text  # no alternate screen: plain frames a log can keep
