"""What a write to the store costs: save_task latency and save_samples throughput.

Method:
    1. Stores: SqlStore on a SQLite file in a fresh temporary directory (WAL,
       ``synchronous=FULL``: durable when save_task returns), the same with
       ``synchronous=NORMAL`` (for comparison only: what durability costs), SqlStore on
       PostgreSQL (``--postgres-url``, else ``$GENPERF_TEST_POSTGRES_URL``, else the local test
       server; in a schema of its own, dropped afterwards; left out when unreachable), and
       MemoryStore as the floor.
    2. Records are realistic: a completed 720p task with four phases, 40 step times and
       optimisations; samples carry 16 per-core readings and two GPUs.
    3. save_task: after ``--warmup`` saves, ``--tasks`` new runs are saved one by one as
       "running" (an insert), then each again as "completed" (an upsert of the same run_id),
       each call timed alone with ``time.perf_counter_ns``. We report median and p99 (ms).
    4. save_samples: ``--batches`` batches of ``--batch-size`` samples, one call (one
       transaction) per batch, timed alone; we report the median batch time and the throughput
       (samples written per second over all batches).
    5. One thread, nothing else running on purpose; the disk is whatever holds the temp dir.
    6. SQLite (FULL) and PostgreSQL again with roll-ups kept (``start_rollups``, as
       ``open_store(settings)`` does for a new database): each "completed" upsert also remakes
       its buckets (storage/rollups.py); "running" inserts count nowhere and cost nothing more.

Run: ``.venv/bin/python benchmarks/store_write.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text

from genperf.config import Settings, redact_url
from genperf.records import GpuReading, PhaseRecord, SystemSample, TaskRecord, TaskStatus
from genperf.storage import MemoryStore, SqlStore, Store
from genperf.storage.engine import normalise_url
from genperf.testing import make_task

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def task(i: int) -> TaskRecord:
    return make_task(
        run_id=uuid.uuid4().hex,
        started_at=T0 + timedelta(seconds=i),
        status=TaskStatus.RUNNING,
        completed_at=None,
        phases=tuple(
            PhaseRecord(name, float(k), 10.0, 30_000.0, 31_000.0, 20_000.0)
            for k, name in enumerate(("model_load", "text_encode", "denoise", "vae_decode"))
        ),
        step_times_seconds=tuple(6.0 + k / 100 for k in range(40)),
        optimizations_applied=("dtype:bf16", "offload:model_cpu", "vae_tiling"),
    )


def sample(i: int) -> SystemSample:
    gpu = GpuReading(
        index=0,
        name="NVIDIA H200",
        uuid="GPU-0",
        memory_used_bytes=70 * 2**30,
        memory_total_bytes=141 * 2**30,
        utilization_percent=98.0,
        temperature_celsius=70.0,
        power_watts=650.0,
        sm_clock_mhz=1980,
        throttle_reasons=("sw_power_cap",),
    )
    return SystemSample(
        taken_at=T0 + timedelta(seconds=i),
        node="bench",
        cpu_percent=50.0,
        cpu_per_core_percent=tuple(float(c) for c in range(16)),
        cpu_count=16,
        ram_used_bytes=100 * 2**30,
        ram_total_bytes=256 * 2**30,
        ram_percent=39.0,
        disk_used_bytes=2**40,
        process_rss_bytes=30 * 2**30,
        gpus=(gpu, dataclasses.replace(gpu, index=1, uuid="GPU-1")),
    )


def timed(call: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    call()
    return (time.perf_counter_ns() - start) / 1e6  # ms


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def measure(store: Store, args: argparse.Namespace) -> dict[str, float]:
    for i in range(args.warmup):
        store.save_task(task(-1 - i))
    records = [task(i) for i in range(args.tasks)]
    inserts = [timed(partial(store.save_task, r)) for r in records]
    done = [dataclasses.replace(r, status=TaskStatus.COMPLETED) for r in records]
    upserts = [timed(partial(store.save_task, r)) for r in done]
    batches = [
        [sample(b * args.batch_size + k) for k in range(args.batch_size)]
        for b in range(args.batches)
    ]
    batch_ms = [timed(partial(store.save_samples, b)) for b in batches]
    return {
        "insert_median": statistics.median(inserts),
        "insert_p99": p99(inserts),
        "upsert_median": statistics.median(upserts),
        "upsert_p99": p99(upserts),
        "batch_median": statistics.median(batch_ms),
        "samples_per_second": args.batches * args.batch_size / (sum(batch_ms) / 1e3),
    }


@contextmanager
def sqlite_store(directory: Path, synchronous: str, rollups: bool = False) -> Iterator[Store]:
    name = f"bench-{synchronous.lower()}{'-rollups' if rollups else ''}.db"
    store = SqlStore(f"sqlite:///{directory / name}")
    if rollups:
        store.start_rollups(Settings())
    if synchronous != "FULL":  # benchmark-only override of genperf's setting, for comparison
        engine = store._engine

        @event.listens_for(engine, "connect")
        def _relax(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute(f"PRAGMA synchronous={synchronous}")

        engine.dispose()  # new connections pick it up
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    try:
        yield store
    finally:
        store.close()


@contextmanager
def postgres_store(url: str, rollups: bool = False) -> Iterator[Store | None]:
    admin = create_engine(normalise_url(url), connect_args={"connect_timeout": 3})
    schema = f"genperf_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        print(f"PostgreSQL left out: not reachable at {redact_url(url)} ({type(exc).__name__})")
        admin.dispose()
        yield None
        return
    scoped = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    store = SqlStore(scoped.render_as_string(hide_password=False))
    if rollups:
        store.start_rollups(Settings())
    try:
        yield store
    finally:
        store.close()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("GENPERF_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
    )
    args = parser.parse_args()

    results: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="genperf-bench-") as tmp:
        for synchronous in ("FULL", "NORMAL"):
            with sqlite_store(Path(tmp), synchronous) as store:
                label = f"SQLite file, synchronous={synchronous}"
                if synchronous != "FULL":
                    label += " (not genperf's)"
                results.append((label, measure(store, args)))
        with sqlite_store(Path(tmp), "FULL", rollups=True) as store:
            results.append(("SQLite file, synchronous=FULL, roll-ups kept", measure(store, args)))
    for rollups in (False, True):
        with postgres_store(args.postgres_url, rollups) as pg:
            if pg is not None:
                label = "PostgreSQL (psycopg 3)" + (", roll-ups kept" if rollups else "")
                results.append((label, measure(pg, args)))
    memory = MemoryStore()
    results.append(("MemoryStore (floor)", measure(memory, args)))

    print(
        f"\n{args.tasks} tasks, {args.batches} batches of {args.batch_size} samples; times in ms\n"
    )
    header = (
        f"{'store':<48} {'insert med':>10} {'p99':>7} {'upsert med':>10} {'p99':>7} "
        f"{'batch med':>9} {'samples/s':>10}"
    )
    print(header)
    print("-" * len(header))
    for label, r in results:
        print(
            f"{label:<48} {r['insert_median']:>10.3f} {r['insert_p99']:>7.3f} "
            f"{r['upsert_median']:>10.3f} {r['upsert_p99']:>7.3f} "
            f"{r['batch_median']:>9.2f} {r['samples_per_second']:>10,.0f}"
        )


if __name__ == "__main__":
    main()
