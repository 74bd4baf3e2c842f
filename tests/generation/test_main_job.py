"""The README's first command, end to end: ``genperf serve --demo`` on an empty data directory
brings up the API, the sampler and the worker, runs real tiny-wan generations (one of which
really runs out of memory) and shows them through the API and ``genperf analysis``."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import httpx
import pytest

pytest.importorskip("diffusers", reason="the main job runs real diffusers pipelines")

from genperf.generation.demo import DEMO_JOBS
from genperf.testing import wait_until

API = "/api/v1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(predicate, timeout: float, proc: subprocess.Popen, what: str):
    alive = lambda: proc.poll() is None  # noqa: E731
    return wait_until(
        predicate,
        timeout=timeout,
        interval=0.5,
        what=what,
        alive=alive,
        ignore=(httpx.TransportError,),
    )


@pytest.mark.slow
def test_serve_demo_runs_real_generations_and_a_real_failure(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
    env["GENPERF_DATA_DIR"] = str(tmp_path)  # nothing there yet: a fresh machine
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "genperf", "serve", "--demo", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(
            lambda: httpx.get(f"{base}/readyz", timeout=2).status_code == 200,
            60,
            proc,
            "the server",
        )

        def finished():
            tasks = httpx.get(f"{base}{API}/generation/tasks", timeout=10).json()["tasks"]
            done = [t for t in tasks if t["status"] in ("completed", "failed")]
            return tasks if len(tasks) == len(DEMO_JOBS) == len(done) else None

        tasks = _wait_for(finished, 300, proc, "the demo batch")
        failed = [t for t in tasks if t["status"] == "failed"]
        assert len(failed) == 1, [(t["task_id"], t["error_message"]) for t in failed]
        metrics = failed[0]["metrics"]
        assert metrics["error_category"] == "out_of_memory_host"
        assert metrics["failed_phase"] == "vae_decode"
        assert metrics["recovery_suggestions"]
        for task in tasks:
            if task["status"] == "completed":
                assert task["metrics"]["generation_time_seconds"] > 0
                assert task["metrics"]["peak_process_rss_mb"] > 0

        analysis = httpx.get(f"{base}{API}/performance/analysis", timeout=30).json()
        assert analysis["task_count"] == len(DEMO_JOBS)
        assert analysis["success_rate"] == pytest.approx((len(DEMO_JOBS) - 1) / len(DEMO_JOBS))
        assert analysis["optimization_recommendations"]

        cli = subprocess.run(
            [sys.executable, "-m", "genperf", "analysis", "1"],
            env={**env, "COLUMNS": "200"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert cli.returncode == 0, cli.stderr
        assert "out_of_memory_host" in cli.stdout or "out of memory" in cli.stdout.lower()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "Traceback" not in output
