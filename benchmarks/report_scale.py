"""The full report, the tasks page and the node list over a fleet's history: 1 M and 10 M tasks
from 64 nodes, on SQLite and PostgreSQL, with and without roll-ups.

Method
------
1. History: ``fleet_data.py`` makes N finished tasks from 64 nodes at the fleet's pace (each GPU
   one task per 4 minutes: 1 M tasks is 43 days, 10 M a fleet-year of 434 days), in bulk
   (``sqlite3.executemany`` / ``COPY``) into the real schema, and caches the result (a file in
   ``--keep``, a schema ``bench_fleet_<N>`` on PostgreSQL), so only the first run pays for it.
2. Roll-ups: the store is opened (the migrations bring a cached database to head), then
   ``SqlStore.rebuild_rollups`` makes the roll-ups from the raw tasks, timed, unless the cached
   database already has them for these settings.
3. Each read runs once to warm the caches, then ``--repeats`` times; the median wall time and
   the process's CPU time are printed, then one more run under ``tracemalloc`` gives the peak
   of Python allocations. The reads are those of the API and the CLI, through ``Queries``
   (no report cache): ``report`` (the full analysis of the window, ``build_report``), ``page``
   (the first tasks page of 50, newest first, with its total) and ``nodes`` (the fleet view).
   The window is the whole history, ending at the newest task: its first hour is partial, so
   the raw edge is read too.
4. ``--raw``: the same reads with the roll-ups switched off (the band set removed, then put
   back by a rebuild): the cost of rescanning history.
5. The load average at the start and end is printed with the figures: the machine is shared.

Run (from the repository root; 10 M rows take ~13 GB of disk per database and several minutes to
generate the first time)::

    .venv/bin/python benchmarks/report_scale.py --counts 1000000 10000000 --db sqlite postgresql
    .venv/bin/python benchmarks/report_scale.py --counts 1000000 --db sqlite --raw
"""

from __future__ import annotations

import argparse
import math
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from genperf.config import Settings
from genperf.queries import Queries
from genperf.records import TASK_FIELDS
from genperf.storage import rollups
from genperf.storage.sql import SqlStore

sys.path.insert(0, str(Path(__file__).parent))
import fleet_data
from fleet_data import CLASSES, FAILURES, NOW, OPT_SETS

CHUNK = 50_000


# fleet_nodes.py builds its history from these rows
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
            optimizations_applied=rnd.choice(OPT_SETS),
            error_category=category,
            error_message=None,
            failed_phase=phase,
            recovery_suggestions="[]",
            monitor_instance=f"gpu-{i % 4}:1234:0",
        )
        yield row


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def timed(fn: Any, repeats: int) -> dict[str, float]:
    """Median wall and CPU seconds of ``repeats`` runs after a warm one, and the Python
    allocations' peak (MiB) of one more under tracemalloc."""
    fn()  # warm the caches
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "peak": peak}


def open_filled(db: str, count: int, keep: Path, pg_url: str) -> tuple[SqlStore, float]:
    """The cached database of ``count`` tasks (made the first time); the seconds inserting took
    (0: cached)."""
    if db == "sqlite":
        path = keep / f"fleet-{count}.db"
        inserted = fleet_data.fill_sqlite(path, count)
        return SqlStore(f"sqlite:///{path}"), inserted
    inserted = fleet_data.fill_postgres(pg_url, count)
    return SqlStore(fleet_data.postgres_url(pg_url, count)), inserted


def measure(store: SqlStore, count: int, repeats: int, settings: Settings) -> dict[str, Any]:
    hours = math.ceil(fleet_data.span(count).total_seconds() / 3600)
    queries = Queries(settings, lambda: store, now=lambda: fleet_data.NOW)
    out: dict[str, Any] = {"hours": hours}
    out["report"] = timed(lambda: queries.report(hours), repeats)
    page = queries.metrics_page(hours, limit=50)
    out["page_total"] = page.total
    out["page"] = timed(lambda: queries.metrics_page(hours, limit=50), repeats)
    listed = queries.nodes(hours)
    out["nodes_listed"] = len(listed.nodes)
    out["nodes"] = timed(lambda: queries.nodes(hours), repeats)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--counts", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--db", nargs="+", default=["sqlite", "postgresql"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=Path("/tmp/genperf-scale"))
    ap.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    ap.add_argument("--rebuild", action="store_true", help="rebuild cached roll-ups (timed)")
    ap.add_argument("--raw", action="store_true", help="also time the reads without roll-ups")
    args = ap.parse_args()
    args.keep.mkdir(parents=True, exist_ok=True)
    settings = Settings(data_dir=args.keep)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# {os.cpu_count()} CPUs, load average {load} at the start", flush=True)
    print(
        f"{'db':<10} {'tasks':>9} {'insert s':>8} {'rebuild s':>9}  "
        "read: median wall / CPU / Python peak",
        flush=True,
    )
    for db in args.db:
        for count in args.counts:
            store, inserted = open_filled(db, count, args.keep, args.pg)
            try:
                rebuilt = 0.0
                if args.rebuild or store.rollup_bands() != rollups.fingerprint(settings):
                    t0 = time.perf_counter()
                    store.rebuild_rollups(settings)
                    rebuilt = time.perf_counter() - t0
                modes = [("rolled", None)]
                if args.raw:
                    modes.append(("raw", "raw"))
                for mode, _ in modes:
                    if mode == "raw":
                        with store._write("switch the roll-ups off") as conn:
                            conn.execute(rollups.rollup_bands.delete())
                    m = measure(store, count, args.repeats, settings)
                    reads = "  ".join(
                        f"{name} {m[name]['wall'] * 1000:.0f} ms / {m[name]['cpu'] * 1000:.0f} ms"
                        f" / {m[name]['peak']:.1f} MiB"
                        for name in ("report", "page", "nodes")
                    )
                    print(
                        f"{db:<10} {count:>9} {inserted:>8.0f} {rebuilt:>9.0f}  [{mode}] {reads}"
                        f"  (window {m['hours']} h, page total {m['page_total']},"
                        f" {m['nodes_listed']} nodes)",
                        flush=True,
                    )
                if args.raw:
                    store.rebuild_rollups(settings)
            finally:
                store.close()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# load average {load} at the end; Python max RSS {maxrss_mib():.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
