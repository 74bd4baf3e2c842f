"""What the dashboard tests and the README screenshot share: Debian's Chromium driven by
Playwright, a real uvicorn server on a free loopback port, and a real SQLite store filled
with task records shaped like a real service's (several resolution classes and model types,
failures with their error categories and advice, phases, step times, one task running).

``tests/web/make_screenshot.py`` uses exactly this setup to write ``docs/dashboard.png``.
"""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from genperf.api import ApiSettings, create_app
from genperf.collectors import ProcessPeakMemory, TorchMemoryProbe
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.records import MIB, GpuReading, PhaseRecord, TaskRecord, TaskStatus, utc_now
from genperf.storage import SqlStore
from genperf.testing import FakeCollector, make_task, wait_until

CHROMIUM = Path("/usr/bin/chromium")
# Debian's Chromium as this machine runs it: no sandbox (root), no GPU, and none of the
# background connections a closed network refuses.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IN_CI = os.environ.get("CI", "").lower() == "true"

READ_TOKEN = "read-token-web-0123456789abcdef"
ADMIN_TOKEN = "admin-token-web-0123456789abcdef"
TOKENS = (f"read:{READ_TOKEN}", f"admin:{ADMIN_TOKEN}")


def require_browser() -> None:
    """Skip (or, under CI, fail) when Chromium or Playwright's Python client is missing."""
    missing = []
    if not CHROMIUM.exists():
        missing.append(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright Python package is missing: pip install -e '.[dev]'")
    if not missing:
        return
    reason = "; ".join(missing)
    if IN_CI:
        pytest.fail(f"browser tests cannot run under CI: {reason}", pytrace=False)
    pytest.skip(reason)


# --- the monitor's readings: scripted, since this machine has no GPU -------------------------


class Readings:
    """What the host and GPU collectors 'see'; tests change it between polls."""

    def __init__(self) -> None:
        self.cpu_percent = 42.0
        self.gpu0_used_mib = 61_440
        self.gpu0_util = 97.0

    def __call__(self) -> dict[str, Any]:
        return {
            "cpu_percent": self.cpu_percent,
            "cpu_count": 32,
            "cpu_temperature_celsius": 58.0,
            "ram_used_bytes": 91_000 * MIB,
            "ram_total_bytes": 257_000 * MIB,
            "ram_percent": 35.4,
            "swap_used_bytes": 0,
            "swap_percent": 0.0,
            "disk_path": "/srv/models",
            "disk_used_bytes": 1_430_000 * MIB,
            "disk_total_bytes": 1_907_000 * MIB,
            "disk_free_bytes": 477_000 * MIB,
            "disk_percent": 75.0,
            "disk_read_bytes_per_second": 310.0 * MIB,
            "disk_write_bytes_per_second": 12.0 * MIB,
            "process_rss_bytes": 18_400 * MIB,
            "gpus": (
                GpuReading(
                    index=0,
                    name="NVIDIA H100 80GB HBM3",
                    memory_used_bytes=self.gpu0_used_mib * MIB,
                    memory_total_bytes=81_559 * MIB,
                    utilization_percent=self.gpu0_util,
                    temperature_celsius=71.0,
                    power_watts=612.0,
                    power_limit_watts=700.0,
                ),
                GpuReading(
                    index=1,
                    name="NVIDIA H100 80GB HBM3",
                    memory_used_bytes=2_310 * MIB,
                    memory_total_bytes=81_559 * MIB,
                    utilization_percent=0.0,
                    temperature_celsius=34.0,
                    power_watts=71.0,
                    power_limit_watts=700.0,
                ),
            ),
        }


class NoTorch(TorchMemoryProbe):
    """The torch probe of a machine without CUDA."""

    def __init__(self) -> None:
        pass

    @property
    def available(self) -> bool:
        return False


# --- stored tasks ------------------------------------------------------------------------------

PHASES_720P = (
    PhaseRecord("model_load", 0.0, 24.0, peak_vram_mb=28_000.0),
    PhaseRecord("text_encode", 24.0, 6.0, peak_vram_mb=31_000.0),
    PhaseRecord("denoise", 30.0, 200.0, peak_vram_mb=58_000.0, peak_vram_allocated_mb=55_500.0),
    PhaseRecord("vae_decode", 230.0, 30.0, peak_vram_mb=66_000.0),
)
OOM_SUGGESTIONS = (
    "Enable model CPU offload (pipe.enable_model_cpu_offload()).",
    "Enable VAE tiling for the decode.",
    "Generate fewer frames or a lower resolution.",
)


@dataclass(frozen=True)
class Seed:
    """One stored task: started ``minutes_ago`` before the fixture's 'now'."""

    name: str
    minutes_ago: float
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> TaskStatus:
        status: TaskStatus = self.fields.get("status", TaskStatus.COMPLETED)
        return status


def _seeds() -> list[Seed]:
    seeds: list[Seed] = []
    for i in range(14):  # 720p, t2v-A14B, over ~21 h; the slower ones miss the target
        seeds.append(
            Seed(
                f"t2v-720p-{i:02d}",
                20 + 95 * i,
                {
                    "generation_time_seconds": 230.0 + 22.0 * i,
                    "model_load_time_seconds": 24.0 if i % 4 else 61.0,
                    "phases": PHASES_720P,
                    "step_times_seconds": tuple(5.0 + 0.05 * s for s in range(40)),
                    "steps": 40,
                    "frames": 81,
                    "peak_vram_usage_mb": 66_000.0 + 300.0 * i,
                    "avg_vram_usage_mb": 52_000.0,
                    "vram_total_mb": 81_559.0,
                    "optimizations_applied": ("dtype:bf16", "vae_tiling", "attention:sdpa"),
                },
            )
        )
    seeds.append(
        Seed(
            "t2v-720p-oom",
            50,
            {
                "status": TaskStatus.FAILED,
                "generation_time_seconds": 140.0,
                "peak_vram_usage_mb": 81_200.0,
                "vram_total_mb": 81_559.0,
                "error_category": "out_of_memory_gpu",
                "error_message": "CUDA out of memory. Tried to allocate 2.50 GiB",
                "failed_phase": "denoise",
                "recovery_suggestions": OOM_SUGGESTIONS,
                "phases": (
                    PhaseRecord("model_load", 0.0, 25.0),
                    PhaseRecord("text_encode", 25.0, 6.0),
                    PhaseRecord("denoise", 31.0, 109.0, peak_vram_mb=81_200.0, failed=True),
                ),
                "step_times_seconds": tuple(5.2 for _ in range(21)),
                "steps": 40,
            },
        )
    )
    seeds.append(
        Seed(
            "t2v-720p-load-error",
            7 * 60,
            {
                "status": TaskStatus.FAILED,
                "generation_time_seconds": 35.0,
                "model_load_time_seconds": None,
                "peak_vram_usage_mb": 2_000.0,
                "vram_total_mb": 81_559.0,
                "error_category": "model_load_error",
                "error_message": "safetensors: file truncated",
                "failed_phase": "model_load",
                "recovery_suggestions": ("Re-download the model weights and check the disk.",),
            },
        )
    )
    seeds.append(
        Seed(
            "t2v-720p-interrupted",
            15 * 60,
            {
                "status": TaskStatus.INTERRUPTED,
                "generation_time_seconds": None,
                "error_category": "interrupted",
                "recovery_suggestions": ("Resubmit the task.",),
            },
        )
    )
    for i in range(5):  # 1080p, t2v-A14B
        seeds.append(
            Seed(
                f"t2v-1080p-{i}",
                40 + 240 * i,
                {
                    "resolution": "1920x1080",
                    "generation_time_seconds": 780.0 + 70.0 * i,
                    "model_load_time_seconds": 26.0,
                    "peak_vram_usage_mb": 76_000.0,
                    "vram_total_mb": 81_559.0,
                    "optimizations_applied": ("dtype:bf16", "offload:model", "vae_tiling"),
                },
            )
        )
    seeds.append(
        Seed(
            "t2v-1080p-timeout",
            10 * 60,
            {
                "resolution": "1920x1080",
                "status": TaskStatus.FAILED,
                "generation_time_seconds": 1400.0,
                "peak_vram_usage_mb": 77_000.0,
                "vram_total_mb": 81_559.0,
                "error_category": "timeout",
                "failed_phase": "denoise",
                "recovery_suggestions": ("Raise the task timeout or lower the step count.",),
            },
        )
    )
    for i in range(4):  # 480p, another model type
        seeds.append(
            Seed(
                f"i2v-480p-{i}",
                30 + 300 * i,
                {
                    "model_type": "i2v-5B",
                    "model_used": "Wan2.2-TI2V-5B",
                    "resolution": "832x480",
                    "generation_time_seconds": 70.0 + 5.0 * i,
                    "model_load_time_seconds": 8.0,
                    "peak_vram_usage_mb": 18_000.0,
                    "vram_total_mb": 81_559.0,
                },
            )
        )
    for i in range(5):  # older: only in the 7-day window
        seeds.append(
            Seed(
                f"t2v-720p-old-{i}",
                (48 + 20 * i) * 60,
                {"generation_time_seconds": 260.0, "vram_total_mb": 81_559.0},
            )
        )
    for seed in seeds:  # one GPU model throughout, as on a real node
        seed.fields.setdefault("vram_total_mb", 81_559.0)
    return seeds


SEEDS = _seeds()
RUNNING_TASK_ID = "live-0001"
RUNNING_PHASE = "denoise"


def seed_store(store: SqlStore, now: datetime, seeds: list[Seed] = SEEDS) -> list[TaskRecord]:
    records = []
    for seed in seeds:
        record = make_task(
            task_id=seed.name, started_at=now - timedelta(minutes=seed.minutes_ago), **seed.fields
        )
        store.save_task(record)
        records.append(record)
    return records


def in_window(
    seeds: list[Seed],
    hours: float,
    *,
    model_type: str | None = None,
    success_only: bool = False,
) -> list[Seed]:
    """The seeds the API returns for a window and filters (the running task aside)."""
    out = []
    for s in seeds:
        if s.minutes_ago >= hours * 60:
            continue
        if model_type is not None and s.fields.get("model_type", "t2v-A14B") != model_type:
            continue
        if success_only and s.status is not TaskStatus.COMPLETED:
            continue
        out.append(s)
    return out


def resolution_class_of(seed: Seed) -> str:
    return {"1920x1080": "1080p", "832x480": "480p"}.get(seed.fields.get("resolution", ""), "720p")


# --- the server ------------------------------------------------------------------------------


class LiveServer:
    """uvicorn serving ``app`` on a free loopback port, in a thread, until stopped."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> LiveServer:
        self.thread.start()
        wait_until(
            lambda: self.server.started,
            timeout=15,
            interval=0.02,
            what="uvicorn to start",
            alive=self.thread.is_alive,
        )
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()


@dataclass
class Service:
    """A running dashboard: its URL, store, monitor and scripted readings."""

    url: str
    store: SqlStore
    monitor: PerformanceMonitor
    readings: Readings
    records: list[TaskRecord]
    now: datetime
    server: LiveServer


@contextmanager
def running_service(
    tmp: Path,
    *,
    seeds: list[Seed] | None = SEEDS,
    tokens: tuple[str, ...] = (),
    running_task: bool = True,
    interval_seconds: float = 1.0,
) -> Iterator[Service]:
    """A real server over a real SQLite store with ``seeds`` stored and, optionally, one task
    running in its denoise phase."""
    settings = Settings(
        monitoring_interval_seconds=interval_seconds, data_dir=tmp, node_name="gpu-node-1"
    )
    store = SqlStore(f"sqlite:///{tmp / 'genperf.db'}")
    readings = Readings()
    monitor = PerformanceMonitor(
        settings,
        collectors=[FakeCollector(readings, name="scripted")],
        store=store,
        torch_probe=NoTorch(),
        process_memory=ProcessPeakMemory(),
    )
    now = utc_now()
    records = seed_store(store, now, seeds or [])
    app = create_app(
        settings,
        monitor=monitor,
        api_settings=ApiSettings(api_tokens=tokens, report_cache_seconds=0.0),
        environ={},
    )
    server = LiveServer(app).start()
    phase: AbstractContextManager[Any] | None = None
    try:
        if running_task:
            monitor.start_task_monitoring(RUNNING_TASK_ID, "t2v-A14B", "1280x720", 40)
            monitor.update_task_metrics(
                RUNNING_TASK_ID, optimizations_applied=["dtype:bf16", "vae_tiling"]
            )
            phase = monitor.phase(RUNNING_TASK_ID, RUNNING_PHASE)
            phase.__enter__()
            monitor.flush()  # its running row is stored now, not at the writer's next round
        yield Service(server.url, store, monitor, readings, records, now, server)
    finally:
        if phase is not None:
            phase.__exit__(None, None, None)
        server.stop()
        monitor.close()
        store.close()


# --- the browser -------------------------------------------------------------------------------


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, driven by Playwright (which downloads no browser of its own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Any, *, width: int = 1440, height: int = 1000, **options: Any) -> Any:
    """A page in a fresh context (its own sessionStorage), UTC and a 24-hour clock."""
    context = browser.new_context(
        viewport={"width": width, "height": height},
        timezone_id="UTC",
        locale="en-GB",
        **options,
    )
    return context.new_page()


# --- reading the page --------------------------------------------------------------------------

_DATASETS_JS = """(selector) => {
  const canvas = document.querySelector(selector + ' canvas');
  const chart = canvas && window.Chart && window.Chart.getChart(canvas);
  if (!chart) return null;
  const out = {};
  for (const d of chart.data.datasets) {
    out[d.label] = {role: d.genperfRole, ys: d.data.map((p) => p.y), xs: d.data.map((p) => p.x)};
  }
  return out;
}"""


def chart_datasets(page: Any, figure_selector: str) -> dict[str, dict[str, Any]] | None:
    """The datasets Chart.js holds for the chart in that figure: label -> role, xs, ys."""
    result: dict[str, dict[str, Any]] | None = page.evaluate(_DATASETS_JS, figure_selector)
    return result


def task_rows(page: Any) -> list[dict[str, str]]:
    """The recent-tasks table, as the page shows it."""
    rows: list[dict[str, str]] = page.evaluate(
        """() => [...document.querySelectorAll('#tasks-table tbody tr')].map((tr) => ({
            task: tr.querySelector('button').title.split(':')[0],
            status: tr.dataset.status, model: tr.dataset.model,
            text: tr.textContent}))"""
    )
    return rows


def wait_for_rows(page: Any, count: int) -> list[dict[str, str]]:
    page.wait_for_function(
        "(n) => document.body.dataset.empty !== undefined"
        " && document.querySelectorAll('#tasks-table tbody tr').length === n"
        " && !document.body.classList.contains('loading')",
        arg=count,
    )
    return task_rows(page)


def open_dashboard(page: Any, url: str) -> None:
    """Load the page and wait until the window's data is drawn."""
    page.goto(url)
    page.wait_for_function(
        "() => document.body.dataset.empty !== undefined"
        " && !document.body.classList.contains('loading')"
    )


def take_screenshot(browser: Any, url: str, path: Path) -> None:
    """The README's screenshot: the dashboard at laptop width, from the top down to the
    first rows of the recent tasks (the rest of that table is more of the same)."""
    page = new_page(browser, width=1440, height=1000, device_scale_factor=1)
    try:
        open_dashboard(page, url)
        page.wait_for_selector("#running-table tbody tr")
        tasks_top = page.eval_on_selector(
            "#tasks-table", "(t) => t.getBoundingClientRect().top + window.scrollY"
        )
        height = min(page.evaluate("document.documentElement.scrollHeight"), tasks_top + 330)
        page.screenshot(
            path=str(path),
            full_page=True,
            clip={"x": 0, "y": 0, "width": 1440, "height": height},
            animations="disabled",
        )
    finally:
        page.context.close()
