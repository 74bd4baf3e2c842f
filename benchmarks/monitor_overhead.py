"""Wall-clock overhead of monitoring on a real CPU workload.

Method: the workload is a fixed amount of real CPU work shaped like a generation (torch matmuls
when torch is installed, else SHA-256 over a buffer), about 1 s per run, with four phases.
Runs alternate: unmonitored, monitored (``monitor.track`` + ``task.phase`` around each phase,
sampler running at the given interval, SQLite store), for ``PAIRS`` pairs. The order inside
each pair alternates too, so warm-up and machine noise fall on both sides equally. We report
the median of the per-pair ratios monitored/unmonitored (robust against this shared 2-core box's
outliers) and the median times. Aim: under 1 % (ratio < 1.01).

Run: ``.venv/bin/python benchmarks/monitor_overhead.py [PAIRS] [INTERVAL_SECONDS]``
"""

from __future__ import annotations

import hashlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor


def make_workload(kind: str = "auto") -> tuple[str, Callable[[], None]]:
    """torch matmuls (2 threads) when torch is installed and ``kind`` is "auto", else SHA-256
    (one thread: on a heavily shared machine torch's spinning threads make runs vary far more
    than what is measured)."""
    try:
        if kind == "sha256":
            raise ImportError
        import torch
    except ImportError:
        buf = b"x" * 4096

        def sha_work() -> None:
            for _ in range(60_000):
                hashlib.sha256(buf).digest()

        return "sha256", sha_work
    torch.set_num_threads(2)
    a = torch.randn(512, 512)

    def torch_work() -> None:
        b = a
        for _ in range(120):
            b = torch.tanh(b @ a)

    return "torch matmul 512x512", torch_work


def run(work: Callable[[], None], phase: Callable[[str], AbstractContextManager[object]]) -> None:
    for name in ("model_load", "text_encode", "denoise", "vae_decode"):
        with phase(name):
            work()


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    interval = float(sys.argv[2]) if len(sys.argv) > 2 else 5.0
    name, work = make_workload()
    work()  # warm up caches and thread pools
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            monitoring_interval_seconds=interval,
            data_dir=Path(tmp),
            database_url=f"sqlite:///{Path(tmp) / 'o.db'}",
        )
        with PerformanceMonitor(settings) as monitor:
            ratios, bare_times, monitored_times = [], [], []
            for i in range(pairs):

                def bare() -> float:
                    began = time.perf_counter()
                    run(work, lambda _n: nullcontext())
                    return time.perf_counter() - began

                def monitored(i: int = i) -> float:
                    began = time.perf_counter()
                    with monitor.track(
                        f"o{i}", model_type="bench", resolution="720p", steps=4
                    ) as task:
                        run(work, task.phase)
                    return time.perf_counter() - began

                if i % 2:
                    m, b = monitored(), bare()
                else:
                    b, m = bare(), monitored()
                bare_times.append(b)
                monitored_times.append(m)
                ratios.append(m / b)
            stats = monitor.self_stats()
    print(f"workload: {name}, {pairs} pairs, sampler interval {interval} s")
    print(
        f"median unmonitored {statistics.median(bare_times):.4f} s, "
        f"monitored {statistics.median(monitored_times):.4f} s"
    )
    print(
        f"median ratio monitored/unmonitored: {statistics.median(ratios):.4f} "
        f"(overhead {100 * (statistics.median(ratios) - 1):+.2f} %)"
    )
    print(
        f"monitor's own time: sampling {stats['sampling_seconds']:.4f} s over "
        f"{stats['samples_taken']} samples, task API {stats['task_api_seconds']:.4f} s"
    )


if __name__ == "__main__":
    main()
