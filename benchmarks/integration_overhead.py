"""Wall-clock overhead of monitoring a real diffusers pipeline (the tiny Wan2.2 model).

Method: build the tiny Wan2.2 T2V-A14B-shaped pipeline offline (two experts, boundary 0.875,
random weights; see genperf.generation.tiny_wan), load it once (``disable_mmap=True``), and
call it with a fixed seed at each size. Calls alternate, monitored and unmonitored, for PAIRS
pairs per size; the order inside a pair alternates too, so warm-up and this shared box's noise
fall on both sides. "Monitored" is the whole integration as a service uses it: the pipeline
wrapped by ``monitor_pipeline`` (hooks on encode_prompt, both experts and vae.decode, the step
callback), one task per call with its three phases (each a VmHWM reset and read), step times,
optimisation detection, and the completed record committed to SQLite (synchronous=FULL) by
a monitor whose sampler runs at the spec's 5 s interval. "Unmonitored" is the same pipeline
object with genperf's hooks taken off (``detach``). We report, per size, the median of the
per-pair ratios monitored / unmonitored of wall-clock time (robust to the single-step outliers
this machine has), the same for the process's CPU time (every thread: torch's, the sampler's
and the store writer's; far less disturbed than wall time when other jobs share the two
cores), the median of the per-pair differences, and the monitor's own account of its task-API
time per call, and the ratio of the fastest calls of each side (the least disturbed estimate).
Because the box's noise (tens of ms) hides a cost of a few ms, the fixed per-call cost is also
measured on its own: 200 interleaved pairs of a near-empty call (32x32, one frame, one step:
all three phases, a few ms of compute), whose median difference is the monitoring cost per
call; divided by each size's median unmonitored time it gives that size's expected overhead.
torch runs on one thread by default (``--threads``): with two, OpenMP's spinning workers turn
every other job on the box into CPU time and wall-time noise of tens of percent; the
monitor's cost is on the Python side and does not depend on the thread count.
Two untimed warm-up calls per side come first. Aim: under 1 % (ratio < 1.01).

Run: ``.venv/bin/python benchmarks/integration_overhead.py [PAIRS] [--store sqlite|memory]``
(PAIRS is for the larger size; the small one runs three times as many) [--threads N].
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from genperf.config import Settings
from genperf.integrations.diffusers import monitor_pipeline
from genperf.monitor import PerformanceMonitor

# (label, height, width, frames, steps, pairs factor). The small size is the worst case, where
# the fixed per-call cost (a few ms: the task's start and durable completion, seven peak-memory
# resets and reads, the optimisation walk) weighs most; 832x480 is Wan's native 480p frame.
FIXED_COST_CALL = ("32x32x1f, 1 step (fixed cost)", 32, 32, 1, 1, 20)
SIZES = (
    ("64x64x9f, 4 steps", 64, 64, 9, 4, 3),
    ("256x256x17f, 4 steps", 256, 256, 17, 4, 1),
    ("480x832x9f, 4 steps", 480, 832, 9, 4, 1),
)


def load(directory: Path) -> Any:
    import torch
    from diffusers import WanPipeline
    from diffusers.utils import logging as dlog

    from genperf.generation.tiny_wan import ensure_tiny_wan

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    ensure_tiny_wan(directory)
    pipe = WanPipeline.from_pretrained(str(directory), dtype=torch.float32, disable_mmap=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def call(target: Any, height: int, width: int, frames: int, steps: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call."""
    import torch

    began, cpu = time.perf_counter(), time.process_time()
    target(
        prompt="a cat dancing in the rain",
        height=height,
        width=width,
        num_frames=frames,
        num_inference_steps=steps,
        guidance_scale=4.0,
        max_sequence_length=32,
        output_type="np",
        generator=torch.Generator("cpu").manual_seed(0),
    )
    return time.perf_counter() - began, time.process_time() - cpu


def measure(
    pipe: Any, monitor: PerformanceMonitor, size: tuple[Any, ...], pairs: int
) -> dict[str, float]:
    _, height, width, frames, steps, _ = size

    def monitored() -> tuple[float, float]:
        wrapped = monitor_pipeline(pipe, monitor, model_type="tiny-wan-t2v")
        try:
            return call(wrapped, height, width, frames, steps)
        finally:
            wrapped.detach()

    def plain() -> tuple[float, float]:
        return call(pipe, height, width, frames, steps)

    for _ in range(2):
        monitored()
        plain()
    api_before = monitor.self_stats()["task_api_seconds"]
    on: list[tuple[float, float]] = []
    off: list[tuple[float, float]] = []
    for i in range(pairs):
        if i % 2:
            b, a = plain(), monitored()
        else:
            a, b = monitored(), plain()
        on.append(a)
        off.append(b)
    api = (monitor.self_stats()["task_api_seconds"] - api_before) / pairs
    return {
        "wall_ratio": statistics.median(a[0] / b[0] for a, b in zip(on, off, strict=True)),
        "cpu_ratio": statistics.median(a[1] / b[1] for a, b in zip(on, off, strict=True)),
        "wall_diff_ms": 1000 * statistics.median(a[0] - b[0] for a, b in zip(on, off, strict=True)),
        "min_ratio": min(a[0] for a in on) / min(b[0] for b in off),
        "monitored_s": statistics.median(a[0] for a in on),
        "unmonitored_s": statistics.median(b[0] for b in off),
        "task_api_ms": api * 1000,
        "pairs": pairs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pairs", nargs="?", type=int, default=10)
    parser.add_argument("--store", choices=("sqlite", "memory"), default="sqlite")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(
            data_dir=root,
            monitoring_interval_seconds=5.0,
            database_url=None if args.store == "sqlite" else "memory://",
        )
        pipe = load(root / "models" / "tiny-wan-t2v")
        with PerformanceMonitor(settings) as monitor:
            print(f"store: {args.store}; sampler interval 5 s; torch threads {args.threads}")
            fixed = measure(pipe, monitor, FIXED_COST_CALL, args.pairs * FIXED_COST_CALL[5])
            cost_ms = fixed["wall_diff_ms"]
            print(
                f"fixed cost per monitored call: {cost_ms:+.2f} ms (median of {fixed['pairs']} "
                f"pair differences on a {fixed['unmonitored_s'] * 1000:.1f} ms call; task API "
                f"{fixed['task_api_ms']:.2f} ms of it)"
            )
            for size in SIZES:
                result = measure(pipe, monitor, size, args.pairs * size[5])
                print(
                    f"{size[0]}, {result['pairs']} pairs: wall ratio "
                    f"{result['wall_ratio']:.4f} ({(result['wall_ratio'] - 1) * 100:+.2f} %), "
                    f"CPU-time ratio {result['cpu_ratio']:.4f} "
                    f"({(result['cpu_ratio'] - 1) * 100:+.2f} %); median difference "
                    f"{result['wall_diff_ms']:+.2f} ms on {result['unmonitored_s'] * 1000:.1f} ms "
                    f"(monitored {result['monitored_s'] * 1000:.1f} ms); fastest-call ratio "
                    f"{result['min_ratio']:.4f}; fixed cost / median time: "
                    f"{cost_ms / (result['unmonitored_s'] * 1000) * 100:.2f} %"
                )


if __name__ == "__main__":
    main()
