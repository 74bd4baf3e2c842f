"""Ctrl-C on ``genperf serve`` while a generation runs: the server stops at once, handing the
generation back as ``interrupted`` (in the phase it was in) instead of waiting for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

pytest.importorskip("diffusers", reason="the generation service runs real diffusers pipelines")

from test_main_job import API, _free_port, _wait_for

from genperf.storage import SqlStore

# A generation of minutes on CPU (tiny-wan, 480p, 81 frames, 100 steps): far longer than
# a stop may take.
LONG = {"prompt": "a cat", "resolution": "832x480", "steps": 100, "frames": 81}  # limits: 100


@pytest.mark.slow
def test_ctrl_c_stops_serve_at_once_and_hands_the_generation_back_interrupted(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
    env["GENPERF_DATA_DIR"] = str(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genperf", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200, 120, proc, "serve"
        )
        reply = httpx.post(f"{base}{API}/generation/tasks", json=LONG, timeout=30)
        assert reply.status_code == 202, reply.text
        task_id = reply.json()["task_id"]

        def denoising():
            task = httpx.get(f"{base}{API}/generation/tasks/{task_id}", timeout=10).json()
            return (task.get("metrics") or {}).get("current_phase") == "denoise"

        _wait_for(denoising, 180, proc, "the generation to be denoising")
    finally:
        began = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            pytest.fail(f"serve still ran 60 s after Ctrl-C:\n{output}")
        stopped_in = time.monotonic() - began
        print(f"serve stopped {stopped_in:.2f} s after Ctrl-C")
    assert proc.returncode == 0, output
    assert "Traceback" not in output
    # Awaited, the generation would take minutes; handed back, the stop is the interpreter's
    # exit (about a second here, several on a busy 2-core machine).
    assert stopped_in < 20, (stopped_in, output)

    store = SqlStore(f"sqlite:///{tmp_path / 'genperf.db'}")
    try:
        record = store.get_task(task_id)
    finally:
        store.close()
    assert record is not None
    assert record.status.value == "interrupted"
    assert record.failed_phase == "denoise"
    assert record.error_message == "the service stopped while this generation ran"
