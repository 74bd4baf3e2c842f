"""How accurate genperf's time and peak-memory predictions are, on real tiny-Wan2.2 runs.

Method: build the tiny Wan2.2 T2V-A14B-shaped pipeline offline (see genperf.generation.tiny_wan)
and load it once, in this process, monitored by a PerformanceMonitor with an in-memory store
and no sampler (the exact peaks come from VmHWM, reset at each task and phase). torch runs on
one thread (``--threads``): with two, OpenMP's spinning workers turn every other job on this
shared 2-core box into noise of tens of percent. glibc's mmap threshold is fixed at 64 KiB
(``MALLOC_MMAP_THRESHOLD_``, the script sets it) so every large tensor goes back to the OS
when freed: otherwise a run's peak RSS starts from what glibc kept of the largest run
before it, and peak memory measures the order of the grid. One unmonitored warm-up call
comes first.
Then the grid runs: every combination of SIZES x FRAMES x STEPS x PRESETS (no optimisation,
VAE tiling, VAE slicing, both), REPEATS times, round-robin (each repeat walks the whole grid,
so the box's slow drift spreads over every configuration), each call one monitored task as
the service records it. Sizes go up to 384x256, past the VAE's 256-pixel tile, so tiling
really changes the decode.

Time is measured twice per run: the wall time the service records, and the CPU time of the
thread that generates (torch on one thread computes on the calling thread; ``time.thread_time``
around the call, page faults' kernel time included; the process's CPU time with ``--threads``
above 1). On a shared box wall time also counts the time other jobs held the core: at a load
of 9 the same configuration's repeats differed 4.8x (median max/min) in wall time and 1.2x in
CPU time. The accuracy is reported on both; CPU time is the measure of whether the model
follows the workload, wall time what a user on this box would see.

Accuracy: the configurations are split into FOLDS random folds; each fold in turn is held
out whole (every repeat of it), the predictor is fitted on the rest (genperf.prediction, as
the service fits it) and predicts each held-out configuration; the error is the absolute
percentage error against the median of that configuration's runs. Peak memory is the
process's peak RSS (VmHWM). The naive baseline predicts the mean of the training runs of the
same resolution class and optimisation set. We report median and p90 over held-out
configurations, and how many the predictor declined to answer (it says so rather than guess),
and how far each run lies from its configuration's median (the floor no prediction can beat).

Speed: the median of 200 predictions from the model fitted on all runs, and the time to fit
100 000 stored records (the measured runs repeated with multiplicative noise of 5 %, as a
long history of the same grid would be): reducing the records and fitting, best of three,
wall and CPU time (CPU time is what the fit costs; wall time adds the box's other jobs).

Aims: median error <= 10 % for time, <= 5 % for peak memory; a prediction < 10 ms; a refit at
100k tasks < 1 s.

Run: ``.venv/bin/python benchmarks/prediction_accuracy.py [--repeats 2] [--quick]``;
``--save FILE`` keeps the observations as JSON and ``--load FILE`` evaluates saved ones.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from genperf.generation.grid import GridPoint, grid
from genperf.generation.presets import preset
from genperf.prediction import Observation, Workload, fit_history, fit_observations, observe
from genperf.prediction.evaluate import holdout_accuracy, repeat_spread
from genperf.prediction.model import TIME
from genperf.records import PhaseRecord, TaskRecord
from genperf.testing import make_task

SIZES = ((64, 64), (128, 64), (128, 128), (192, 128), (256, 256), (384, 256))
FRAMES = (5, 9, 17)
STEPS = (2, 4, 8)
PRESETS = ("default", "vae_tiling", "vae_slicing", "vae_tiling+vae_slicing")
# The smallest grid: the test suite runs it (tests/generation/test_prediction_real.py).
SMALLEST = (((64, 64), (128, 64), (128, 128), (192, 128)), (5, 9), (2, 4), ("default",))
MMAP_THRESHOLD = "65536"
CPU_TIME = "generation_cpu_seconds"  # the generating thread's CPU time (see CpuTimed)
QUICK_SIZES = ((64, 64), (128, 128), (256, 256), (384, 256))
QUICK_FRAMES = (5, 9)
QUICK_STEPS = (2, 4)


class CpuTimed:
    """The monitored pipeline, with the CPU time of the thread that runs each call.

    torch on one thread computes on the calling thread, so its CPU time is the generation's
    work without the time other jobs on the box took the core away (which wall time counts).
    """

    def __init__(self, pipe: Any, clock: Callable[[], float] = time.thread_time) -> None:
        self.pipe = pipe
        self.clock = clock
        self.cpu_seconds: dict[str, float] = {}

    @property
    def pipeline(self) -> Any:
        return self.pipe.pipeline

    @property
    def last_record(self) -> TaskRecord | None:
        record: TaskRecord | None = self.pipe.last_record
        return record

    def __call__(self, *, task_id: str, **kwargs: Any) -> Any:
        began = self.clock()
        try:
            return self.pipe(task_id=task_id, **kwargs)
        finally:
            self.cpu_seconds[task_id] = self.clock() - began


def measure(points: list[GridPoint], repeats: int, threads: int) -> list[Observation]:
    import torch

    from genperf.config import Settings
    from genperf.generation.grid import run_grid
    from genperf.generation.pipelines import load_model
    from genperf.generation.registry import TINY_WAN, ModelRegistry
    from genperf.monitor import PerformanceMonitor
    from genperf.storage import MEMORY_URL, MemoryStore

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        # Every run's own peak, in one process: the kernel's peak RSS is reset per task
        # (without it a run below an earlier run's peak has no exact peak of its own).
        settings = Settings(data_dir=Path(tmp), database_url=MEMORY_URL, reset_peak_rss=True)
        spec = ModelRegistry(settings).ensure_ready(TINY_WAN)
        monitor = PerformanceMonitor(settings, collectors=[], store=MemoryStore())
        # With more torch threads the work is spread over them: count the whole process.
        clock = time.thread_time if threads == 1 else time.process_time
        pipe = CpuTimed(load_model(spec, monitor, None), clock)
        done = 0

        def progress(point: GridPoint, record: object) -> None:
            nonlocal done
            done += 1
            print(f"\r{done}/{len(points) * repeats} runs", end="", file=sys.stderr, flush=True)

        results = run_grid(
            pipe, points, repeats=repeats, call_kwargs=spec.call_kwargs, on_done=progress
        )
        print(file=sys.stderr)
        monitor.close()
    observations = []
    for _, record in results:
        o = observe(record)
        cpu = pipe.cpu_seconds.get(record.task_id)
        if o is not None and cpu is not None and record.success:
            o = replace(o, values={**o.values, CPU_TIME: cpu})
        if o is not None:
            observations.append(o)
    return observations


def on_cpu_time(observations: list[Observation]) -> list[Observation]:
    """The observations with CPU time as their generation time (those that have it)."""
    return [
        replace(o, values={**o.values, TIME: o.values[CPU_TIME]})
        for o in observations
        if CPU_TIME in o.values
    ]


def save(observations: list[Observation], path: Path) -> None:
    rows = [
        {
            "width": o.workload.width,
            "height": o.workload.height,
            "frames": o.workload.frames,
            "steps": o.workload.steps,
            "optimizations": sorted(o.optimizations),
            "values": dict(o.values),
        }
        for o in observations
    ]
    path.write_text(json.dumps(rows))


def load(path: Path) -> list[Observation]:
    return [
        Observation(
            Workload(r["width"], r["height"], r["frames"], r["steps"]),
            frozenset(r["optimizations"]),
            r["values"],
        )
        for r in json.loads(path.read_text())
    ]


def as_record(o: Observation, scale: float) -> TaskRecord:
    """A stored-looking record of an observation, its values scaled (a long history)."""
    phases = tuple(
        PhaseRecord(k.removeprefix("phase:"), 0.0, v * scale)
        for k, v in o.values.items()
        if k.startswith("phase:")
    )
    return make_task(
        model_type="tiny-wan-t2v",
        resolution=o.workload.resolution,
        frames=o.workload.frames,
        steps=o.workload.steps,
        generation_time_seconds=o.values.get("generation_time_seconds", 1.0) * scale,
        peak_process_rss_mb=o.values.get("peak_ram_mb", 1.0) * scale,
        peak_vram_usage_mb=None,
        phases=phases,
        optimizations_applied=tuple(o.optimizations),
    )


def speed(observations: list[Observation]) -> tuple[float, float, float]:
    """(median ms per prediction, best wall and CPU seconds to fit 100k stored records)."""
    model = fit_observations(observations, "tiny-wan-t2v")
    w = observations[0].workload
    opts = observations[0].optimizations
    times = []
    for _ in range(200):
        began = time.perf_counter()
        model.predict(w.resolution, w.frames, w.steps, opts)
        times.append(time.perf_counter() - began)
    rng = random.Random(0)
    big = [
        as_record(o, rng.uniform(0.95, 1.05))
        for o in (observations * (100_000 // len(observations) + 1))[:100_000]
    ]
    fits, cpu = [], []
    for _ in range(3):
        began, cpu_began = time.perf_counter(), time.process_time()
        fit_history(big, "tiny-wan-t2v")
        fits.append(time.perf_counter() - began)
        cpu.append(time.process_time() - cpu_began)
    return 1000 * statistics.median(times), min(fits), min(cpu)


def report(label: str, observations: list[Observation], folds: int) -> None:
    """Held-out errors of the model and the naive baseline, and how far repeats of one
    configuration lie from their median (the floor no prediction can beat)."""
    if not observations:
        return
    accuracy = holdout_accuracy(observations, folds=folds)
    print(
        f"\n{label}: held out {accuracy.held_out} configurations, unanswered {accuracy.unanswered}"
    )
    print(f"{'target':28} {'model median':>12} {'p90':>8} {'naive median':>13} {'p90':>8}")
    for target, stats in accuracy.model.items():
        naive = accuracy.baseline.get(target)
        print(
            f"{target:28} {stats.median:12.1%} {stats.p90:8.1%} "
            f"{naive.median if naive else float('nan'):13.1%} "
            f"{naive.p90 if naive else float('nan'):8.1%}"
        )
    spread = repeat_spread(observations, TIME)
    if spread is not None:
        print(
            f"repeats' time from their configuration's median: {spread.median:.1%} median, "
            f"{spread.p90:.1%} p90 ({spread.count} runs)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="a smaller grid")
    parser.add_argument("--smallest", action="store_true", help="the test suite's grid")
    parser.add_argument("--measure-only", action="store_true", help="measure and --save only")
    parser.add_argument("--save", type=Path)
    parser.add_argument("--load", type=Path)
    args = parser.parse_args()
    if not args.load and os.environ.get("MALLOC_MMAP_THRESHOLD_") != MMAP_THRESHOLD:
        # glibc keeps freed memory of earlier, larger runs and the next run's peak RSS starts
        # from there; a fixed mmap threshold returns every large tensor to the OS when freed,
        # so each run's peak is its own. Set before the process starts: run again with it.
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": MMAP_THRESHOLD}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    if args.load:
        observations = load(args.load)
    else:
        sizes, frames, steps, presets = (
            SMALLEST
            if args.smallest
            else (QUICK_SIZES, QUICK_FRAMES, QUICK_STEPS, PRESETS)
            if args.quick
            else (SIZES, FRAMES, STEPS, PRESETS)
        )
        points = grid(sizes, frames, steps, [preset(p) for p in presets])
        began = time.perf_counter()
        observations = measure(points, args.repeats, args.threads)
        print(
            f"{len(observations)} runs of {len(points)} configurations in "
            f"{time.perf_counter() - began:.0f} s"
        )
        if args.save:
            save(observations, args.save)
        if args.measure_only:
            return
    report("wall time (as the service records it)", observations, args.folds)
    report("CPU time of the generating thread", on_cpu_time(observations), args.folds)
    predict_ms, fit_s, fit_cpu = speed(observations)
    print(
        f"predict: {predict_ms:.2f} ms median; fit at 100k tasks: {fit_s:.2f} s wall, "
        f"{fit_cpu:.2f} s CPU (best of 3)"
    )


if __name__ == "__main__":
    main()
