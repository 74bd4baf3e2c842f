"""What one system sample costs, against the bare psutil (and NVML) calls it is made of.

Method:
    1. Build a HostCollector on ``--disk-path`` and an NvmlCollector (the real pynvml: without
       a driver it is unavailable and costs nothing; on a GPU host it reads every GPU).
    2. The *floor* is the same library calls, made directly, with nothing around them:
       ``psutil.cpu_percent(None)`` and its per-core twin, ``virtual_memory``, ``swap_memory``,
       ``disk_usage``, ``disk_io_counters``, ``Process.memory_info`` (+ ``sensors_temperatures``
       where the host has a CPU sensor), and on a GPU host the same NVML queries per GPU.
    3. Three variants are timed: the floor, ``HostCollector.collect()``, and the *full sample*:
       host + NVML ``collect()`` merged into a ``SystemSample`` with its UTC stamp.
    4. Each measurement times a batch of ``--batch`` calls with ``time.perf_counter_ns`` (wall)
       and ``time.process_time_ns`` (CPU of this process), divided by the batch size. The
       variants are interleaved in one run, in an order that rotates every round, so drift in
       the machine's load (frequency, caches, other work) falls on all of them alike.
    5. After ``--warmup`` rounds, ``--rounds`` rounds are kept; the table shows each variant's
       median and its ratio to the floor's median. The aim: the full sample costs at most 1.5x
       the floor.

Run: ``.venv/bin/python benchmarks/sample_cost.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from genperf.collectors import HostCollector, NvmlCollector
from genperf.records import SystemSample, utc_now

AIM = 1.5


def bare_psutil(disk_path: Path, with_sensors: bool) -> Callable[[], None]:
    process = psutil.Process()
    path = str(disk_path)
    clock = time.monotonic

    def floor() -> None:
        psutil.cpu_percent(None)
        psutil.cpu_percent(None, percpu=True)
        psutil.virtual_memory()
        psutil.swap_memory()
        psutil.disk_usage(path)
        psutil.disk_io_counters()
        clock()
        if with_sensors:
            psutil.sensors_temperatures()
        process.memory_info()

    return floor


def bare_nvml() -> Callable[[], None] | None:
    """The NVML calls NvmlCollector makes each tick, made directly; None without a GPU."""
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
    except Exception:
        return None

    def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(pynvml.NVMLError):
            fn(*args, **kwargs)

    def floor() -> None:
        for h in handles:
            call(pynvml.nvmlDeviceGetMemoryInfo, h, version=pynvml.nvmlMemory_v2)
            call(pynvml.nvmlDeviceGetUtilizationRates, h)
            call(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
            call(pynvml.nvmlDeviceGetCurrentClocksEventReasons, h)
            call(pynvml.nvmlDeviceGetPowerUsage, h)
            call(pynvml.nvmlDeviceGetEnforcedPowerLimit, h)
            call(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM)
            call(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM)
            call(pynvml.nvmlDeviceGetComputeRunningProcesses, h)

    return floor


def measure(fn: Callable[[], Any], batch: int) -> tuple[float, float]:
    """(wall, cpu) microseconds per call, over one batch."""
    wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(batch):
        fn()
    wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
    return (wall1 - wall0) / batch / 1000, (cpu1 - cpu0) / batch / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--disk-path", type=Path, default=Path.cwd())
    args = parser.parse_args()

    host = HostCollector(args.disk_path)
    nvml = NvmlCollector()
    node = platform.node()
    first = host.collect()  # also settles whether this host has a CPU sensor
    psutil_floor = bare_psutil(args.disk_path, "cpu_temperature_celsius" in first)
    nvml_floor = bare_nvml() if nvml.available else None

    def floor() -> None:
        psutil_floor()
        if nvml_floor is not None:
            nvml_floor()

    def full_sample() -> SystemSample:
        values = host.collect()
        values.update(nvml.collect())
        return SystemSample(taken_at=utc_now(), node=node, **values)

    variants: dict[str, Callable[[], Any]] = {
        "floor: bare psutil" + (" + NVML" if nvml_floor else "") + " calls": floor,
        "HostCollector.collect()": host.collect,
        "full sample (host + NVML + SystemSample)": full_sample,
    }
    names = list(variants)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.warmup + args.rounds):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            w, c = measure(variants[name], args.batch)
            if r >= args.warmup:
                wall[name].append(w)
                cpu[name].append(c)

    med_wall = {n: statistics.median(wall[n]) for n in names}
    med_cpu = {n: statistics.median(cpu[n]) for n in names}
    base = names[0]
    print(
        f"python {platform.python_version()}, psutil {psutil.__version__}, "
        f"{psutil.cpu_count()} CPUs, NVML {'available' if nvml.available else 'unavailable'}; "
        f"{args.rounds} rounds x {args.batch} calls, medians per call"
    )
    print(f"{'variant':<45} {'wall µs':>9} {'ratio':>6} {'CPU µs':>9} {'ratio':>6}")
    for n in names:
        print(
            f"{n:<45} {med_wall[n]:>9.1f} {med_wall[n] / med_wall[base]:>5.2f}x"
            f" {med_cpu[n]:>9.1f} {med_cpu[n] / med_cpu[base]:>5.2f}x"
        )
    full = names[-1]
    ratio = max(med_wall[full] / med_wall[base], med_cpu[full] / med_cpu[base])
    verdict = "met" if ratio <= AIM else "MISSED"
    print(f"aim: full sample <= {AIM}x the floor: {verdict} ({ratio:.2f}x)")
    nvml.shutdown()


if __name__ == "__main__":
    main()
