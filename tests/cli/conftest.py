"""Fixtures for the CLI tests: a real SQLite store with known tasks, a fixed clock and host.

Commands run through Typer's CliRunner against that store. The source is the real
LocalSource; only "now" and the host readings are fixed (a FakeCollector), so the screens are
the same on every machine and can be compared with exact text.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from genperf.cli.context import CliState, state
from genperf.cli.source import LocalSource, Source, open_source
from genperf.records import MIB, GpuReading, PhaseRecord, TaskRecord, TaskStatus
from genperf.storage import SqlStore
from genperf.testing import FakeCollector, make_task

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NODE = "gpu-node-1"
WIDTH = 100

HOST_READINGS: dict[str, Any] = {
    "cpu_percent": 42.0,
    "cpu_count": 16,
    "ram_used_bytes": 48 * 1024 * MIB,
    "ram_total_bytes": 128 * 1024 * MIB,
    "ram_percent": 37.5,
    "swap_used_bytes": 0,
    "swap_percent": 0.0,
    "disk_path": "/data/models",
    "disk_free_bytes": 400 * 1024 * MIB,
    "disk_percent": 60.0,
    "process_rss_bytes": 2 * 1024 * MIB,
    "gpus": (
        GpuReading(
            index=0,
            name="NVIDIA H200",
            memory_used_bytes=120 * 1024 * MIB,
            memory_total_bytes=140 * 1024 * MIB,
            utilization_percent=97.0,
            temperature_celsius=71.0,
            throttle_reasons=(),
        ),
    ),
}


def render_text(renderable: Any, width: int = WIDTH) -> str:
    """What a 100-column terminal without colour shows."""
    console = Console(record=True, width=width, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def known_tasks() -> list[TaskRecord]:
    """Seven finished tasks and one running, with fixed ids and times (oldest first)."""
    start = NOW - timedelta(hours=6)
    out = [
        make_task(
            run_id=f"run-{n}",
            task_id=f"t720-{n}",
            node=NODE,
            started_at=start + timedelta(minutes=30 * n),
            generation_time_seconds=240.0 + 10 * n,
        )
        for n in range(4)
    ]
    out.append(
        make_task(
            run_id="run-1080",
            task_id="t1080-0",
            node=NODE,
            resolution="1920x1080",
            started_at=start + timedelta(hours=2, minutes=30),
            generation_time_seconds=1000.0,
            peak_vram_usage_mb=78_000.0,
        )
    )
    out.append(
        make_task(
            run_id="run-oom",
            task_id="t-oom",
            node=NODE,
            status=TaskStatus.FAILED,
            started_at=start + timedelta(hours=3),
            generation_time_seconds=None,
            peak_vram_usage_mb=81_000.0,
            error_category="out_of_memory_gpu",
            failed_phase="vae_decode",
            recovery_suggestions=("Enable VAE tiling.", "Enable VAE slicing."),
        )
    )
    out.append(
        make_task(
            run_id="run-i2v",
            task_id="i2v-0",
            node=NODE,
            model_type="i2v-A14B",
            resolution="832x480",
            started_at=start + timedelta(hours=4),
            generation_time_seconds=100.0,
        )
    )
    out.append(
        make_task(
            run_id="run-live",
            task_id="job-live",
            node=NODE,
            status=TaskStatus.RUNNING,
            started_at=NOW - timedelta(minutes=3, seconds=5),
            completed_at=None,
            generation_time_seconds=None,
            phases=(PhaseRecord("model_load", 0.0, 31.0),),
        )
    )
    return out


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """A SQLite database the way a monitored service leaves it: the known tasks in it."""
    path = tmp_path / "data" / "genperf.db"
    store = SqlStore(f"sqlite:///{path}")
    try:
        for record in known_tasks():
            store.save_task(record)
    finally:
        store.close()
    return path


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[CliState]:
    """The environment of every command test: the data directory in tmp_path, this node's
    name, 100 columns, no server; the source is a LocalSource on a fixed clock and host."""
    for name in ("GENPERF_URL", "GENPERF_TOKEN", "GENPERF_CONFIG", "GENPERF_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GENPERF_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GENPERF_NODE_NAME", NODE)
    monkeypatch.setenv("COLUMNS", str(WIDTH))

    def local(st: CliState) -> Source:
        if st.url or st.token:  # remote options: the real factory decides
            return open_source(st.settings(), url=st.url, token=st.token)
        return LocalSource(
            st.settings(),
            collectors=[FakeCollector(HOST_READINGS, name="host")],
            wall_clock=lambda: NOW,
            cpu_warmup_seconds=0.0,
        )

    monkeypatch.setattr(state, "source_factory", local)
    yield state
    state.close()


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def invoke(runner: CliRunner, *args: str, input: str | None = None) -> Any:
    from genperf.cli.app import app

    return runner.invoke(app, list(args), input=input, terminal_width=WIDTH)


@pytest.fixture
def unused_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
