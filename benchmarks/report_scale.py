"""How long build_report takes over large SQLite stores, and how much memory it needs.

Method
------
1. For each task count N (default 10k, 100k, 1M) a fresh SQLite file is made by
   ``SqlStore(url)`` (so the schema and indexes are the real ones, from the migrations), then
   filled with N synthetic finished tasks in one transaction per 50k rows, through
   ``generation_tasks.insert()`` executed with a list of rows (DB-API executemany), never
   ``save_task`` one by one. The history is realistic in shape: all N tasks start inside the
   last 24 hours; 720p / 1080p / 480p; two model types; four optimisation sets; ~4 % failures
   (GPU OOM in vae_decode and denoise, host OOM, load errors); log-normal generation times;
   VRAM peaks, temperatures, a few thermal throttles, cold model loads on ~5 % of tasks.
   Seeded, so every run builds the same data.
2. ``build_report(store, settings, time_window_hours=24, now=...)`` runs once to warm the
   page cache, then ``--repeats`` more times; the median wall time is reported, with the
   median CPU time of the process (all threads: the SQL runs in parallel time slices), which
   shows the work done whatever else the machine is busy with.
3. Memory: one further run under ``tracemalloc`` gives the peak of Python allocations during
   the call; the process's peak RSS (``ru_maxrss``) after all runs is printed too (SQLite's
   own page cache is outside tracemalloc). The database is filled in a child process, so the
   RSS is that of reporting alone (plus the imports).
4. Growth: the time per task count is printed with the ratio to the previous count.
5. ``--stages``: each step of the SQL path (window size from the index, tally, failure
   counts, sample, the pure analysis) is run alone, on one thread, and its CPU time printed.

Run (from the repository root; 1M rows take ~1.3 GB of disk and a minute or two to insert)::

    .venv/bin/python benchmarks/report_scale.py                 # 10k, 100k, 1M
    .venv/bin/python benchmarks/report_scale.py --counts 100000 --repeats 5
    .venv/bin/python benchmarks/report_scale.py --keep /tmp/genperf-bench   # reuse the files

The figures of the last run are in benchmarks/results/report_scale.txt when ``--save`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine

from genperf.analysis import build_report
from genperf.config import Settings
from genperf.records import TASK_FIELDS
from genperf.storage.schema import generation_tasks
from genperf.storage.sql import SqlStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CHUNK = 50_000
CLASSES = (("720p", "1280x720", 240.0), ("1080p", "1920x1080", 700.0), ("480p", "832x480", 90.0))
OPT_SETS = (
    ["dtype:bf16"],
    ["dtype:bf16", "vae_tiling"],
    ["dtype:bf16", "offload:model", "vae_tiling"],
    ["quantization:fp8", "offload:model"],
)
FAILURES = (
    ("out_of_memory_gpu", "vae_decode"),
    ("out_of_memory_gpu", "denoise"),
    ("out_of_memory_host", "model_load"),
    ("model_load_error", "model_load"),
)


def rows(count: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``count`` synthetic task rows (column -> value), spread over the 24 h before NOW."""
    rnd = random.Random(seed)
    start = NOW - timedelta(hours=24)
    step = 86_400.0 / count
    for i in range(count):
        cls, res, base = CLASSES[i % 3 if rnd.random() < 0.9 else 0]
        failed = rnd.random() < 0.04
        gen = rnd.lognormvariate(0.0, 0.25) * base * (1.0 + i / count * 0.2)
        cold = rnd.random() < 0.05
        began = start + timedelta(seconds=i * step)
        category, phase = rnd.choice(FAILURES) if failed else (None, None)
        row: dict[str, Any] = dict.fromkeys(TASK_FIELDS)
        row.update(
            run_id=f"run-{seed}-{i:08d}",
            task_id=f"task-{i:08d}",
            node=f"gpu-{i % 4}",
            model_type="t2v-A14B" if rnd.random() < 0.7 else "i2v-A14B",
            resolution=res,
            resolution_class=cls,
            steps=40,
            status="failed" if failed else "completed",
            started_at=began,
            completed_at=began + timedelta(seconds=gen),
            model_used="Wan2.2-T2V-A14B",
            frames=81,
            generation_time_seconds=gen,
            model_load_time_seconds=rnd.uniform(30, 120) if cold else 0.0,
            weights_memory_mapped=False,
            phases="[]",
            step_times_seconds="[]",
            peak_vram_usage_mb=rnd.uniform(40_000, 80_000),
            avg_vram_usage_mb=35_000.0,
            vram_total_mb=81_920.0,
            peak_ram_usage_mb=rnd.uniform(20_000, 50_000),
            avg_ram_usage_mb=18_000.0,
            ram_total_mb=131_072.0,
            peak_cpu_percent=rnd.uniform(30, 100),
            avg_cpu_percent=rnd.uniform(10, 60),
            peak_gpu_utilization_percent=100.0,
            avg_gpu_utilization_percent=rnd.uniform(40, 99),
            peak_gpu_temperature_celsius=rnd.uniform(60, 88),
            avg_gpu_temperature_celsius=65.0,
            gpu_throttle_reasons='["hw_thermal"]' if rnd.random() < 0.01 else "[]",
            samples_count=int(gen / 5),
            optimizations_applied=json.dumps(rnd.choice(OPT_SETS)),
            error_category=category,
            error_message=None,
            failed_phase=phase,
            recovery_suggestions="[]",
            monitor_instance=f"gpu-{i % 4}:1234:0",
        )
        yield row


def fill(path: Path, count: int) -> float:
    """Create the store's schema and insert ``count`` rows; returns the seconds it took."""
    url = f"sqlite:///{path}"
    SqlStore(url).close()  # the real schema, by the real migrations
    engine = create_engine(url)
    t0 = time.perf_counter()
    batch: list[dict[str, Any]] = []
    with engine.connect() as conn:
        for row in rows(count):
            batch.append(row)
            if len(batch) == CHUNK:
                conn.execute(generation_tasks.insert(), batch)
                conn.commit()
                batch.clear()
        if batch:
            conn.execute(generation_tasks.insert(), batch)
            conn.commit()
    engine.dispose()
    return time.perf_counter() - t0


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(path: Path, repeats: int) -> dict[str, Any]:
    settings = Settings(data_dir=path.parent)
    store = SqlStore(f"sqlite:///{path}")
    try:
        report = build_report(store, settings, now=NOW)  # warm the page cache
        rss_before = maxrss_mib()
        times, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            report = build_report(store, settings, now=NOW)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rss_after = maxrss_mib()
        tracemalloc.start()
        build_report(store, settings, now=NOW)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        store.close()
    return {
        "tasks": report.task_count,
        "median_seconds": statistics.median(times),
        "min_seconds": min(times),
        "max_seconds": max(times),
        "cpu_seconds": statistics.median(cpu),
        "python_peak_mib": peak / 2**20,
        "maxrss_before_mib": rss_before,
        "maxrss_after_mib": rss_after,
        "method": report.method.aggregation,
        "tasks_read": report.method.tasks_read,
        "bottlenecks": [b.resource for b in report.bottlenecks.bottlenecks],
        "recommendations": [r.id for r in report.recommendations],
    }


def stages(path: Path) -> str:
    """CPU seconds of each step of the SQL path, run one after the other on one thread."""
    from genperf.analysis import analyze
    from genperf.analysis.failures import from_rows
    from genperf.analysis.window import Window
    from genperf.storage import aggregates
    from genperf.storage.base import TaskQuery

    settings = Settings(data_dir=path.parent)
    store = SqlStore(f"sqlite:///{path}")
    query = TaskQuery(
        since=NOW - timedelta(hours=24), until=NOW, finished_only=True, newest_first=False
    )
    out: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        c0 = time.process_time()
        value = fn()
        out[name] = time.process_time() - c0
        return value

    try:
        size = timed("size", lambda: aggregates.window_size(store, query))
        tally = timed("tally", lambda: aggregates.window_tally(store, query, settings))
        failures = timed("failures", lambda: aggregates.window_failures(store, query))
        sample = timed(
            "sample", lambda: aggregates.window_sample(store, query, min(1.0, 10_000 / size))
        )
        window = Window(tally=tally, failures=from_rows(failures), tasks=sample, method="sql")
        timed("analyze", lambda: analyze(window, settings, time_window_hours=24, now=NOW))
    finally:
        store.close()
    return "    CPU s by step (one thread): " + ", ".join(f"{k} {v:.3f}" for k, v in out.items())


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--fill":
        print(fill(Path(sys.argv[2]), int(sys.argv[3])))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", type=Path, help="directory for the database files (reused)")
    ap.add_argument("--save", action="store_true", help="write benchmarks/results/report_scale.txt")
    ap.add_argument("--stages", action="store_true", help="also time each step of the SQL path")
    args = ap.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="genperf-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{'tasks':>9} {'insert s':>9} {'report s':>9} {'min':>6} {'max':>6} {'cpu s':>6} "
        f"{'x prev':>7} {'py peak MiB':>11} {'maxrss MiB':>10}  method"
    ]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines.insert(0, f"# {os.cpu_count()} CPUs, load average {load} at the start")
    print("\n".join(lines), flush=True)
    previous = None
    for count in args.counts:
        path = folder / f"tasks-{count}.db"
        inserted = float("nan")
        if not path.exists():  # in a child process, so this one's peak RSS is the report's
            child = subprocess.run(
                [sys.executable, __file__, "--fill", str(path), str(count)],
                check=True,
                capture_output=True,
                text=True,
            )
            inserted = float(child.stdout.strip())
        m = measure(path, args.repeats)
        growth = m["median_seconds"] / previous if previous else float("nan")
        previous = m["median_seconds"]
        line = (
            f"{m['tasks']:>9} {inserted:>9.1f} {m['median_seconds']:>9.3f} "
            f"{m['min_seconds']:>6.3f} {m['max_seconds']:>6.3f} {m['cpu_seconds']:>6.2f} "
            f"{growth:>7.2f} "
            f"{m['python_peak_mib']:>11.1f} {m['maxrss_after_mib']:>10.0f}  "
            f"{m['method']} (read {m['tasks_read']})"
        )
        lines.append(line)
        print(line, flush=True)
        print(f"    bottlenecks: {m['bottlenecks']}; recommendations: {m['recommendations']}")
        if args.stages:
            lines.append(stages(path))
            print(lines[-1], flush=True)
    if args.save:
        out = Path(__file__).parent / "results" / "report_scale.txt"
        out.parent.mkdir(exist_ok=True)
        out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
