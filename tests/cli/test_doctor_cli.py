"""``genperf doctor`` from the command line: --json, the exit code, and --url asking a real
running server (uvicorn on loopback), whose answer adds its own sampler and store queue."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genperf.config import Settings

from .conftest import invoke

uvicorn = pytest.importorskip("uvicorn")
READ_TOKEN = "read-token-0123456789"


def test_doctor_json_and_its_exit_code(cli_env: object, runner: CliRunner) -> None:
    result = invoke(runner, "doctor", "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == data["exit_code"]
    # this machine: 2 cores is under the spec's minimum of 4 (a failure), or more is fine
    names = {c["name"]: c for c in data["checks"]}
    assert names["nvml"]["verdict"] == "not_available"
    assert data["where"] == "local"
    assert set(data["counts"]) == {"ok", "not_available", "warning", "failure"}


def test_doctor_prints_each_check_with_its_fix(cli_env: object, runner: CliRunner) -> None:
    result = invoke(runner, "doctor")
    assert "NVML loadable" in result.stdout and "not available:" in result.stdout
    assert "Database reachable" in result.stdout and "fix: " in result.stdout
    assert f"exit code {result.exit_code}" in result.stdout


def test_doctor_exits_2_on_a_failure(tmp_path: Path) -> None:
    """A real process: an unreachable database is a failure, exit code 2."""
    env = {
        "GENPERF_DATA_DIR": str(tmp_path),
        "GENPERF_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/test",
        "PATH": "/usr/bin:/bin",
    }
    import os

    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-m", "genperf", "doctor", "--json"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    data = json.loads(proc.stdout)
    reach = next(c for c in data["checks"] if c["name"] == "database_reachable")
    assert reach["verdict"] == "failure"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    from genperf.api import ApiSettings, create_app

    settings = Settings(
        data_dir=tmp_path / "server",
        monitoring_interval_seconds=0.2,
        enable_gpu_monitoring=False,
    )
    app = create_app(
        settings,
        api_settings=ApiSettings(api_tokens=(f"read:{READ_TOKEN}",), report_cache_seconds=0),
        environ={},
    )
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    port = srv.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=30)


def test_doctor_url_asks_the_running_server(
    cli_env: object, runner: CliRunner, server: str
) -> None:
    result = invoke(runner, "doctor", "--json", "--url", server, "--token", READ_TOKEN)
    data = json.loads(result.stdout)
    assert result.exit_code == data["exit_code"]
    assert data["where"] == "server"
    checks = {c["name"]: c for c in data["checks"]}
    assert checks["sampler"]["verdict"] == "ok"  # the server's own sampler runs
    assert checks["store_queue"]["verdict"] == "ok"
    assert checks["database_reachable"]["verdict"] == "ok"
    assert "enable_gpu_monitoring is false" in checks["nvml"]["evidence"]
    assert checks["clock_peer"]["verdict"] == "ok"  # added here: the two clocks agree
    assert sum(data["counts"].values()) == len(data["checks"])


def test_doctor_url_needs_the_token(cli_env: object, runner: CliRunner, server: str) -> None:
    result = invoke(runner, "doctor", "--url", server)
    assert result.exit_code == 2
    assert "token" in result.stderr
