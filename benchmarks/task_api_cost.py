"""Cost of one task's start + complete, with and without the durable commit.

Method: a PerformanceMonitor with the sampler at a 1 h interval (so no sample lands inside the
measurement) runs ``N`` tasks back to back: ``start_task_monitoring`` then
``complete_task_monitoring``. Each pair is timed with ``time.perf_counter``; we report the
median and p99 over N pairs after 50 warm-up pairs. The calling thread's CPU time
(``time.thread_time``) is read around blocks of 100 pairs too, and its median per pair is
reported beside: on a shared machine the wall time also counts the time other processes held
the core, the CPU time counts only this thread's work. For three stores:

* memory: MemoryStore, no I/O: the monitor's own bookkeeping.
* sqlite: SqlStore on a file: complete commits the record before it returns (durable); the
  start row is written by the background writer on its next round, off the caller's path.
* postgresql: SqlStore on the local server, when it is reachable.

Run: ``.venv/bin/python benchmarks/task_api_cost.py [N]``
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from genperf.config import Settings
from genperf.monitor import PerformanceMonitor
from genperf.storage import MemoryStore, SqlStore
from genperf.testing import FakeCollector

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def measure(store, n: int) -> tuple[list[float], list[float]]:
    """Wall seconds of each pair, and CPU seconds per pair of each block of 100 pairs."""
    settings = Settings(monitoring_interval_seconds=3600, node_name="bench")
    monitor = PerformanceMonitor(
        settings, collectors=[FakeCollector({"cpu_percent": 1.0})], store=store
    )
    monitor.start()
    times, cpu = [], []
    block_cpu = time.thread_time()
    try:
        for i in range(n + 50):
            began = time.perf_counter()
            monitor.start_task_monitoring(f"b{i}", "bench", "720p", 4)
            monitor.complete_task_monitoring(f"b{i}")
            if i >= 50:
                times.append(time.perf_counter() - began)
            if i % 100 == 49:  # blocks of 100 pairs after the warm-up
                now_cpu = time.thread_time()
                if i > 50:
                    cpu.append((now_cpu - block_cpu) / 100)
                block_cpu = now_cpu
    finally:
        monitor.close()
    return times, cpu


def row(name: str, measured: tuple[list[float], list[float]]) -> str:
    times, cpu = sorted(measured[0]), measured[1]
    p99 = times[int(len(times) * 0.99) - 1]
    return (
        f"| {name} | {len(times)} | {statistics.median(times) * 1e6:.0f} µs | {p99 * 1e6:.0f} µs "
        f"| {statistics.median(cpu) * 1e6:.0f} µs |"
    )


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    print(f"load average {os.getloadavg()[0]:.2f}")
    print("| store | pairs | median start+complete | p99 | CPU per pair (median of blocks) |")
    print("|---|---|---|---|---|")
    print(row("memory (no I/O)", measure(MemoryStore(), n)))
    with tempfile.TemporaryDirectory() as tmp:
        print(
            row(
                "sqlite file (durable commit)",
                measure(SqlStore(f"sqlite:///{Path(tmp) / 'b.db'}"), n),
            )
        )
    try:
        print(row("postgresql local (durable commit)", measure_postgres(n)))
    except Exception as exc:  # the server is optional: say why the row is missing
        print(f"| postgresql | skipped: {exc} | | | |")


def measure_postgres(n: int) -> tuple[list[float], list[float]]:
    """On the local server, in a schema of its own that is dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"genperf_bench_{os.getpid()}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        store = SqlStore(f"{PG_URL}?options=-csearch_path%3D{schema}")
        try:
            return measure(store, n)
        finally:
            store.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
