"""A prepared GPU check: what only a CUDA machine can measure, in one run under five minutes.

Method (each part is bounded by the time left; a part that cannot run says why):
    1. **NVML sample cost per GPU.** ``NvmlCollector.collect()`` against the bare NVML calls it
       makes (memory v2, utilisation, temperature, power, limit, clocks, throttle reasons,
       processes, for every GPU), interleaved in rounds of ``--batch`` calls whose order
       alternates; medians per call, divided by the GPU count.
    2. **A tiny-wan generation on CUDA.** The ``small`` tiny-wan preset (genperf.generation.
       tiny_wan: WanPipeline with two experts, random weights, built offline) loaded in bf16 on
       ``cuda:0`` and called through ``monitor_pipeline`` at ``--size`` (HxWxframes) with
       ``--steps`` steps. Meanwhile a thread reads NVML's per-process memory for this process
       every 5 ms. Reported per phase: genperf's allocator peaks (allocated, reserved: exact,
       reset at each phase) and the task's peak VRAM, against NVML's per-process maximum (which
       also counts the CUDA context, so it should exceed the reserved peak by a few hundred MiB).
    3. **Monitoring overhead, interleaved pairs.** ``--pairs`` pairs of the same call monitored
       and unmonitored, the order alternating in each pair, after two warm-up calls each; the
       median of the per-pair ratios (aim: under 1 %).
    4. **genperf doctor.** ``python -m genperf doctor --json`` in a subprocess: each check's
       verdict and evidence, and the exit code.

Without CUDA (no torch, a CPU-only torch, no visible device) it prints why and exits 0 with
nothing measured. ``--device cpu`` rehearses parts 2-4 on the CPU with a small size (the
figures mean nothing; it proves the script runs) and is how its tests exercise it here.

Run: ``.venv/bin/python benchmarks/gpu_check.py [--json FILE]`` (``--help`` for the knobs).
Record the figures in benchmarks/README.md ("A prepared GPU check").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

MIB = 1024**2
BUDGET_SECONDS = 270.0  # under five minutes with the imports and the doctor


def cuda_status() -> tuple[Any, str | None]:
    """(torch, None) when CUDA can be used, else (torch or None, why not)."""
    try:
        import torch
    except ImportError as exc:
        return None, f"torch is not installed ({exc})"
    if not getattr(torch.version, "cuda", None):
        return torch, f"torch {torch.__version__} is a CPU-only build"
    try:
        if not torch.cuda.is_available():
            return torch, "torch.cuda.is_available() is False (no visible device or driver)"
    except Exception as exc:  # a broken driver raises here
        return torch, f"CUDA cannot start: {exc}"
    return torch, None


# --- 1. NVML sample cost ------------------------------------------------------------------


def nvml_cost(batch: int, rounds: int) -> dict[str, Any]:
    try:
        import pynvml
    except ImportError as exc:
        return {"skipped": f"nvidia-ml-py is not installed ({exc})"}
    from genperf.collectors import NvmlCollector

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return {"skipped": f"NVML cannot start ({exc})"}
    try:
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        if not handles:
            return {"skipped": "NVML sees no GPU"}

        def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
            with contextlib.suppress(pynvml.NVMLError):
                fn(*args, **kwargs)

        def bare() -> None:
            for h in handles:
                call(pynvml.nvmlDeviceGetMemoryInfo, h, version=pynvml.nvmlMemory_v2)
                call(pynvml.nvmlDeviceGetUtilizationRates, h)
                call(pynvml.nvmlDeviceGetTemperature, h, pynvml.NVML_TEMPERATURE_GPU)
                call(pynvml.nvmlDeviceGetPowerUsage, h)
                call(pynvml.nvmlDeviceGetEnforcedPowerLimit, h)
                call(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_SM)
                call(pynvml.nvmlDeviceGetClockInfo, h, pynvml.NVML_CLOCK_MEM)
                call(pynvml.nvmlDeviceGetCurrentClocksEventReasons, h)
                call(pynvml.nvmlDeviceGetComputeRunningProcesses, h)

        collector = NvmlCollector()
        collector.collect()  # initialise, name and uuid cached
        variants: dict[str, Callable[[], Any]] = {"bare": bare, "collector": collector.collect}
        times: dict[str, list[float]] = {k: [] for k in variants}
        for r in range(rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                fn = variants[name]
                began = time.perf_counter_ns()
                for _ in range(batch):
                    fn()
                times[name].append((time.perf_counter_ns() - began) / batch / 1000.0)
        collector.shutdown()
        n = len(handles)
        bare_us, coll_us = statistics.median(times["bare"]), statistics.median(times["collector"])
        return {
            "gpus": n,
            "bare_us_per_sample": bare_us,
            "collector_us_per_sample": coll_us,
            "bare_us_per_gpu": bare_us / n,
            "collector_us_per_gpu": coll_us / n,
            "ratio": coll_us / bare_us if bare_us else None,
            "rounds": rounds,
            "batch": batch,
        }
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


# --- 2. a generation on CUDA, allocator peaks against NVML --------------------------------


class NvmlProcessMemory:
    """The most NVML reported for this process on any GPU, read by a thread every 5 ms."""

    def __init__(self) -> None:
        self.peak_bytes: int | None = None
        self.reason: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> NvmlProcessMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            import pynvml

            pynvml.nvmlInit()
        except Exception as exc:
            self.reason = f"NVML unavailable ({exc})"
            return
        try:
            handles = [
                pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())
            ]
            pid = os.getpid()
            while not self._stop.is_set():
                for h in handles:
                    try:
                        procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
                    except pynvml.NVMLError as exc:
                        self.reason = f"per-process memory not readable ({exc})"
                        return
                    for p in procs:
                        used = getattr(p, "usedGpuMemory", None)
                        if p.pid == pid and used is not None:
                            self.peak_bytes = max(self.peak_bytes or 0, int(used))
                self._stop.wait(0.005)
            if self.peak_bytes is None:
                self.reason = (
                    "NVML listed no memory for this process (a container's PID namespace?)"
                )
        finally:
            with contextlib.suppress(Exception):
                pynvml.nvmlShutdown()


def load_pipe(torch: Any, root: Path, device: str) -> Any:
    from diffusers import WanPipeline
    from diffusers.utils import logging as dlog

    from genperf.generation.tiny_wan import ensure_tiny_wan

    dlog.disable_progress_bar()
    dlog.set_verbosity_error()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = ensure_tiny_wan(root / "models" / "tiny-wan-small", preset="small")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    pipe = WanPipeline.from_pretrained(str(path), dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def generate(pipe: Any, torch: Any, size: tuple[int, int, int], steps: int) -> float:
    height, width, frames = size
    began = time.perf_counter()
    pipe(
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
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - began


def peaks_against_nvml(
    pipe: Any, torch: Any, monitor: Any, size: tuple[int, int, int], steps: int
) -> dict[str, Any]:
    from genperf.integrations.diffusers import monitor_pipeline

    wrapped = monitor_pipeline(pipe, monitor, model_type="tiny-wan-small")
    with NvmlProcessMemory() as nvml:
        seconds = generate(wrapped, torch, size, steps)
    record = wrapped.last_record
    wrapped.detach()
    phases = []
    if record is not None:
        for p in record.phases:
            phases.append(
                {
                    "phase": p.name,
                    "seconds": p.duration_seconds,
                    "allocated_peak_mib": p.peak_vram_allocated_mb,
                    "reserved_or_device_peak_mib": p.peak_vram_mb,
                }
            )
    nvml_mib = None if nvml.peak_bytes is None else nvml.peak_bytes / MIB
    task_peak = record.peak_vram_usage_mb if record is not None else None
    return {
        "seconds": seconds,
        "optimizations": list(record.optimizations_applied) if record is not None else [],
        "task_peak_vram_mib": task_peak,
        "nvml_process_peak_mib": nvml_mib,
        "nvml_minus_task_mib": None
        if nvml_mib is None or task_peak is None
        else nvml_mib - task_peak,
        "nvml_note": nvml.reason,
        "phases": phases,
    }


# --- 3. overhead, interleaved pairs --------------------------------------------------------


def overhead(
    pipe: Any,
    torch: Any,
    monitor: Any,
    size: tuple[int, int, int],
    steps: int,
    pairs: int,
    deadline: float,
) -> dict[str, Any]:
    from genperf.integrations.diffusers import monitor_pipeline

    def monitored() -> float:
        wrapped = monitor_pipeline(pipe, monitor, model_type="tiny-wan-small")
        try:
            return generate(wrapped, torch, size, steps)
        finally:
            wrapped.detach()

    def plain() -> float:
        return generate(pipe, torch, size, steps)

    for _ in range(2):
        monitored()
        plain()
    on: list[float] = []
    off: list[float] = []
    for i in range(pairs):
        if time.monotonic() > deadline:
            break
        if i % 2:
            b, a = plain(), monitored()
        else:
            a, b = monitored(), plain()
        on.append(a)
        off.append(b)
    if not on:
        return {"skipped": "no time left for a pair"}
    ratio = statistics.median(a / b for a, b in zip(on, off, strict=True))
    return {
        "pairs": len(on),
        "median_ratio": ratio,
        "overhead_percent": (ratio - 1) * 100,
        "median_monitored_s": statistics.median(on),
        "median_unmonitored_s": statistics.median(off),
    }


# --- 4. genperf doctor --------------------------------------------------------------------


def doctor(data_dir: Path, timeout: float) -> dict[str, Any]:
    env = {**os.environ, "GENPERF_DATA_DIR": str(data_dir)}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "genperf", "doctor", "--json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"skipped": f"genperf doctor ran past {timeout:.0f} s"}
    try:
        payload = json.loads(proc.stdout)
    except ValueError:
        return {"exit_code": proc.returncode, "error": proc.stderr.strip()[-500:]}
    return {
        "exit_code": proc.returncode,
        "checks": [
            {"name": c["name"], "verdict": c["verdict"], "evidence": c["evidence"]}
            for c in payload.get("checks", [])
        ],
    }


# --- the report ----------------------------------------------------------------------------


def print_report(report: dict[str, Any]) -> None:
    print(f"genperf GPU check · device {report['device']} · {report['seconds']:.0f} s")
    nv = report.get("nvml_cost", {})
    if "skipped" in nv:
        print(f"1. NVML sample cost: skipped: {nv['skipped']}")
    elif nv:
        print(
            f"1. NVML sample cost, {nv['gpus']} GPU(s): collector {nv['collector_us_per_gpu']:.0f} "
            f"µs/GPU against bare calls {nv['bare_us_per_gpu']:.0f} µs/GPU "
            f"(ratio {nv['ratio']:.2f}; {nv['rounds']} rounds of {nv['batch']})"
        )
    gen = report.get("generation", {})
    if "skipped" in gen:
        print(f"2. Generation: skipped: {gen['skipped']}")
    elif gen:
        size = report["size"]
        print(
            f"2. tiny-wan (small) {size} x {report['steps']} steps: {gen['seconds']:.2f} s; "
            f"task peak VRAM {fmt_mib(gen['task_peak_vram_mib'])}, NVML process peak "
            f"{fmt_mib(gen['nvml_process_peak_mib'])} (difference "
            f"{fmt_mib(gen['nvml_minus_task_mib'])})"
            + (f"; NVML: {gen['nvml_note']}" if gen.get("nvml_note") else "")
        )
        print(f"   optimisations recorded: {', '.join(gen['optimizations']) or 'none'}")
        for p in gen["phases"]:
            print(
                f"   {p['phase']:<12} {p['seconds']:.3f} s  allocated peak "
                f"{fmt_mib(p['allocated_peak_mib'])}  reserved/device peak "
                f"{fmt_mib(p['reserved_or_device_peak_mib'])}"
            )
    ov = report.get("overhead", {})
    if "skipped" in ov:
        print(f"3. Overhead: skipped: {ov['skipped']}")
    elif ov:
        print(
            f"3. Overhead, {ov['pairs']} interleaved pairs: median ratio {ov['median_ratio']:.4f} "
            f"({ov['overhead_percent']:+.2f} %); monitored {ov['median_monitored_s']:.3f} s, "
            f"unmonitored {ov['median_unmonitored_s']:.3f} s"
        )
    doc = report.get("doctor", {})
    if "skipped" in doc:
        print(f"4. genperf doctor: skipped: {doc['skipped']}")
    elif doc:
        print(f"4. genperf doctor: exit code {doc['exit_code']}")
        for c in doc.get("checks", []):
            print(f"   {c['verdict']:<13} {c['name']:<22} {c['evidence']}")
        if doc.get("error"):
            print(f"   error: {doc['error']}")


def fmt_mib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} MiB"


def parse_size(text: str) -> tuple[int, int, int]:
    try:
        h, w, f = (int(x) for x in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxWxFRAMES, got {text!r}") from None
    return h, w, f


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device",
        choices=("cuda", "cpu"),
        default="cuda",
        help="cpu: rehearse the script's code paths here (figures mean nothing)",
    )
    parser.add_argument(
        "--size",
        type=parse_size,
        default=None,
        help="HxWxFRAMES of the generation (cuda: 480x832x33, cpu: 32x32x5)",
    )
    parser.add_argument("--steps", type=int, default=None, help="steps (cuda: 10, cpu: 2)")
    parser.add_argument("--pairs", type=int, default=None, help="overhead pairs (cuda: 10, cpu: 2)")
    parser.add_argument("--batch", type=int, default=50, help="NVML calls per timed batch")
    parser.add_argument("--rounds", type=int, default=40, help="NVML timing rounds")
    parser.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = parser.parse_args(argv)
    began = time.monotonic()
    deadline = began + BUDGET_SECONDS
    torch, why = cuda_status()
    if args.device == "cuda" and why is not None:
        print(f"gpu_check: no CUDA device: {why}. Nothing measured; run it on a CUDA machine.")
        return 0
    if torch is None:
        print(f"gpu_check: {why}. The rehearsal needs torch and diffusers.")
        return 0
    cuda = args.device == "cuda"
    size = args.size or ((480, 832, 33) if cuda else (32, 32, 5))
    steps = args.steps or (10 if cuda else 2)
    pairs = args.pairs or (10 if cuda else 2)
    report: dict[str, Any] = {
        "device": args.device,
        "size": "x".join(map(str, size)),
        "steps": steps,
    }
    report["nvml_cost"] = nvml_cost(args.batch, args.rounds)
    from genperf.config import Settings
    from genperf.monitor import PerformanceMonitor

    with tempfile.TemporaryDirectory(prefix="genperf-gpu-check-") as tmp:
        root = Path(tmp)
        settings = Settings(data_dir=root, monitoring_interval_seconds=1.0)
        try:
            pipe = load_pipe(torch, root, args.device)
        except Exception as exc:
            report["generation"] = {"skipped": f"the pipeline did not load: {exc}"}
            report["overhead"] = {"skipped": "no pipeline"}
        else:
            with PerformanceMonitor(settings) as monitor:
                generate(pipe, torch, size, steps)  # warm-up: kernels, allocator
                report["generation"] = peaks_against_nvml(pipe, torch, monitor, size, steps)
                report["overhead"] = overhead(
                    pipe, torch, monitor, size, steps, pairs, deadline - 30
                )
            del pipe
        left = max(10.0, deadline + 25 - time.monotonic())
        report["doctor"] = doctor(root, timeout=left)
    report["seconds"] = time.monotonic() - began
    print_report(report)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
