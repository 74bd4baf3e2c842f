"""The spec's public surface exists exactly as written."""

import inspect
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

import genperf
from genperf.cli.app import app


def test_all_names_exist_and_nothing_private_is_exported():
    for name in genperf.__all__:
        assert hasattr(genperf, name), name
    assert sorted(genperf.__all__) == genperf.__all__


def test_spec_method_signatures():
    pm = genperf.PerformanceMonitor
    start = inspect.signature(pm.start_task_monitoring).parameters
    assert list(start)[1:5] == ["task_id", "model_type", "resolution", "steps"]
    complete = inspect.signature(pm.complete_task_monitoring).parameters
    assert {"task_id", "success", "error"} <= set(complete)
    update = inspect.signature(pm.update_task_metrics).parameters
    assert any(p.kind is p.VAR_KEYWORD for p in update.values())


def test_python_dash_m_and_the_console_script(tmp_path):
    env = {"GENPERF_DATA_DIR": str(tmp_path), "PATH": ""}
    script = Path(sys.executable).parent / "genperf"
    for cmd in ([sys.executable, "-m", "genperf", "--help"], [str(script), "--help"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert "status" in proc.stdout


def test_status_prints_the_sample_and_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("GENPERF_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GENPERF_DATABASE_URL", "postgresql://bob:hunter2@db.example/x")
    result = CliRunner().invoke(app, ["status"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "System status" in result.output
    assert "RAM" in result.output and "Disk" in result.output
    assert "monitoring_interval_seconds" in result.output
    assert "hunter2" not in result.output and "bob:***@" in result.output


def test_status_json(tmp_path, monkeypatch):
    import json

    monkeypatch.setenv("GENPERF_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["system"]["ram_total_bytes"] > 0
    assert data["settings"]["max_history_size"] == 1000
