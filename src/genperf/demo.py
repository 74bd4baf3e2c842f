"""A small, real CPU workload shaped like a diffusion generation, for ``genperf demo``.

Each "generation" really reads a weights file from disk (model_load), hashes the prompt
(text_encode), runs compute-bound steps whose count and size follow the resolution (denoise)
and allocates a frame buffer proportional to the pixel count (vae_decode), so the monitor
measures real time, real CPU and real memory. It stands in for a model until the diffusers
integration runs a real pipeline; nothing here is faked or sleeps.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from genperf.monitor import PerformanceMonitor
from genperf.records import TaskRecord


@dataclass(frozen=True)
class DemoJob:
    resolution: str
    steps: int
    frames: int = 9


DEMO_JOBS = (
    DemoJob("832x480", 4),
    DemoJob("1280x720", 4),
    DemoJob("1280x720", 8),
    DemoJob("1920x1080", 4),
)


def _weights(data_dir: Path, size_mb: int = 32) -> Path:
    path = data_dir / "demo-weights.bin"
    if not path.exists() or path.stat().st_size != size_mb << 20:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size_mb << 20))
    return path


def _denoise_step(pixels: int) -> bytes:
    digest = b"\0" * 32
    for _ in range(max(1, pixels // 100)):
        digest = hashlib.sha256(digest * 64).digest()
    return digest


def run_demo(
    monitor: PerformanceMonitor, jobs: tuple[DemoJob, ...] = DEMO_JOBS
) -> Iterator[TaskRecord]:
    """Run each job as a monitored generation; yields each completed record."""
    weights = _weights(monitor.settings.data_dir)
    for n, job in enumerate(jobs):
        width, height = (int(v) for v in job.resolution.split("x"))
        with monitor.track(
            f"demo{os.getpid() % 1000}-{n}",
            model_type="demo-cpu",
            resolution=job.resolution,
            steps=job.steps,
            frames=job.frames,
        ) as task:
            with task.phase("model_load"):
                blob = weights.read_bytes()
            task.update(
                model_used=str(weights),
                weights_memory_mapped=False,
                optimizations_applied=["dtype:fp32"],
            )
            with task.phase("text_encode"):
                hashlib.sha256(b"a red fox running through snow" * 1000).digest()
            steps: list[float] = []
            with task.phase("denoise"):
                for _ in range(job.steps):
                    began = time.perf_counter()
                    _denoise_step(width * height)
                    steps.append(time.perf_counter() - began)
            task.update(step_times_seconds=steps)
            with task.phase("vae_decode"):
                frame_buffer = bytearray(width * height * 3 * job.frames)
                frame_buffer[::4096] = blob[: len(frame_buffer[::4096])]
            del blob, frame_buffer
        if task.record is not None:
            yield task.record
