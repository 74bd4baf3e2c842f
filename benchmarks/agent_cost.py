"""What an idle agent costs a GPU node, against the bare psutil loop, in the same run.

Method:
    1. Two child processes run side by side for the whole measurement, so whatever else the
       machine does (other jobs, frequency, caches) falls on both alike:
       * the *floor*: a thread that makes the bare psutil (and, on a GPU host, NVML) calls of
         one sample each interval, on the sampler's own schedule (``Event.wait`` until the
         next due time), and nothing else: the least any monitor sampling at this interval
         can cost. The calls are ``sample_cost.py``'s floor.
       * the *agent*: a ``PerformanceMonitor`` started as a GPU node runs it without the API
         (sampler, store writer, the default collectors), its data directory a fresh temporary
         one (the disk both watch), writing to the default SQLite file there
         (``--database-url`` for another database, e.g. PostgreSQL), no task running: the
         agent's idle cost.
       Each child's main thread only waits on its stdin, where the parent asks for the
       child's CPU time (``time.process_time``: all its threads, nanosecond resolution, unlike
       the 10 ms ticks of ``/proc/<pid>/stat``).
    2. After a warm-up (imports, the schema, the first batch of samples written: ``--warmup``
       seconds, at least ``samples_per_write`` + 1 intervals), the parent reads both CPU
       times, then again after each of ``--windows`` windows of ``--window`` seconds.
    3. Per window: each child's CPU time / wall time, as a percentage of one core, and the
       agent / floor ratio. Reported for each ``--intervals`` value: each child's share over
       the whole run (the windows are equally long: their mean) and the ratio of the two,
       then each window's ratio, to show the spread. The agent writes its samples in batches
       (``samples_per_write``), so a window should span several batches (``--window``, 50 s
       by default: 10 batches at 1 s, 2 at 5 s). Aim: the agent at most 1.5x the floor at
       every interval.
    4. Also printed: the load average at the start and the end (``os.getloadavg``), since a
       busy machine slows both children (their ratio is what to read).

Run: ``.venv/bin/python benchmarks/agent_cost.py --intervals 1 5`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from genperf.config import Settings

AIM = 1.5


def child(role: str, interval: float, args: argparse.Namespace) -> None:
    """A child process: run the floor or the agent, answer CPU-time requests on stdin."""
    stop = threading.Event()
    if role == "floor":
        from genperf.collectors import HostCollector
        from sample_cost import bare_nvml, bare_psutil

        with_sensors = "cpu_temperature_celsius" in HostCollector(args.disk_path).collect()
        psutil_floor = bare_psutil(args.disk_path, with_sensors)
        nvml_floor = bare_nvml()

        def loop() -> None:  # the sampler's schedule, with only the library calls in it
            due = time.monotonic()
            while not stop.is_set():
                psutil_floor()
                if nvml_floor is not None:
                    nvml_floor()
                due += interval
                if stop.wait(max(0.0, due - time.monotonic())):
                    break

        threading.Thread(target=loop, daemon=True).start()
    else:
        from genperf.monitor import PerformanceMonitor

        batch = {"samples_per_write": args.samples_per_write} if args.samples_per_write else {}
        settings = Settings(
            monitoring_interval_seconds=interval,
            database_url=args.database_url or None,  # None: a SQLite file in data_dir
            data_dir=args.disk_path,  # also the disk it watches, as the floor does
            node_name="agent-cost",
            **batch,
        )
        monitor = PerformanceMonitor(settings)
        monitor.start()
    for _ in sys.stdin:  # one line asks for one reading
        print(f"{time.process_time()} {time.monotonic()}", flush=True)
    stop.set()
    if role == "agent":
        monitor.close()


class Child:
    def __init__(self, role: str, interval: float, args: argparse.Namespace) -> None:
        self.role = role
        self.proc = subprocess.Popen(
            [
                *(sys.executable, __file__, "--child", role, "--intervals", str(interval)),
                *("--disk-path", str(args.disk_path), "--database-url", args.database_url),
                *("--samples-per-write", str(args.samples_per_write)),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )

    def cpu(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline().split()[0])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def measure(interval: float, args: argparse.Namespace) -> dict[str, list[float]]:
    children = [Child("floor", interval, args), Child("agent", interval, args)]
    try:
        batch = args.samples_per_write or Settings().samples_per_write
        time.sleep(max(args.warmup, (batch + 1) * interval))
        last = {c.role: c.cpu() for c in children}
        last_t = time.monotonic()
        shares: dict[str, list[float]] = {c.role: [] for c in children}
        for _ in range(args.windows):
            time.sleep(args.window)
            now = {c.role: c.cpu() for c in children}
            now_t = time.monotonic()
            for role, cpu in now.items():
                shares[role].append((cpu - last[role]) / (now_t - last_t) * 100)
            last, last_t = now, now_t
        return shares
    finally:
        for c in children:
            c.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--intervals", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--window", type=float, default=50.0)
    parser.add_argument("--windows", type=int, default=4)
    parser.add_argument("--disk-path", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--samples-per-write", type=int, default=0, help="the agent's batch (0: the default)"
    )
    parser.add_argument("--child", choices=["floor", "agent"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.intervals[0], args)
        return

    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    print(
        f"{args.windows} windows of {args.window:g} s per interval, after a warm-up of "
        f"{args.warmup:g} s or samples_per_write + 1 intervals, whichever is longer"
    )
    print(f"{'interval':>8} {'floor % core':>13} {'agent % core':>13} {'ratio':>7}  per window")
    verdicts = []
    for interval in args.intervals:
        with tempfile.TemporaryDirectory() as tmp:
            args.disk_path = Path(tmp)
            shares = measure(interval, args)
        ratios = [a / f for a, f in zip(shares["agent"], shares["floor"], strict=True) if f > 0]
        floor, agent = statistics.fmean(shares["floor"]), statistics.fmean(shares["agent"])
        verdicts.append(agent / floor <= AIM)
        print(
            f"{interval:>7g}s {floor:>12.4f}% {agent:>12.4f}% {agent / floor:>6.2f}x  "
            + " ".join(f"{r:.2f}" for r in ratios)
        )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")
    verdict = "met" if all(verdicts) else "MISSED"
    print(f"aim: agent <= {AIM}x the floor at every interval: {verdict}")


if __name__ == "__main__":
    main()
