"""A fleet's history in bulk, for the scale benchmarks: ``count`` finished tasks from
``nodes`` nodes at the fleet's pace (each GPU one task per ``TASK_EVERY_SECONDS``), ending at
``report_scale.NOW``. Rows are generated as tuples in ``TASK_FIELDS`` order and written by
``sqlite3.executemany`` (SQLite) or ``COPY`` (PostgreSQL), never through the Python API, into a
schema made by ``SqlStore`` itself (the real migrations). A filled database is cached: a file
``fleet-<count>.db`` (SQLite) or a schema ``bench_fleet_<count>`` (PostgreSQL) that already
holds ``count`` tasks is reused, so only the first run pays for the insert.

Run alone to fill the caches::

    .venv/bin/python benchmarks/fleet_data.py sqlite /tmp/genperf-scale 10000000
    .venv/bin/python benchmarks/fleet_data.py postgresql \
        postgresql://postgres@127.0.0.1/test 10000000
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from genperf.records import TASK_FIELDS
from genperf.storage.sql import SqlStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
NODES = 64
TASK_EVERY_SECONDS = 240.0  # one task per GPU every 4 minutes: 10 M tasks is a fleet-year
CHUNK = 100_000
CLASSES = (("720p", "1280x720", 240.0), ("1080p", "1920x1080", 700.0), ("480p", "832x480", 90.0))
OPT_SETS = tuple(
    json.dumps(s)
    for s in (
        ["dtype:bf16"],
        ["dtype:bf16", "vae_tiling"],
        ["dtype:bf16", "offload:model", "vae_tiling"],
        ["quantization:fp8", "offload:model"],
    )
)
FAILURES = (
    ("out_of_memory_gpu", "vae_decode"),
    ("out_of_memory_gpu", "denoise"),
    ("out_of_memory_host", "model_load"),
    ("model_load_error", "model_load"),
)


def span(count: int, nodes: int = NODES) -> timedelta:
    """How long the fleet takes to run ``count`` tasks."""
    return timedelta(seconds=count * TASK_EVERY_SECONDS / nodes)


def fleet_rows(count: int, nodes: int = NODES, seed: int = 0) -> Iterator[tuple[Any, ...]]:
    """``count`` task rows (tuples in TASK_FIELDS order), oldest first, ending at NOW."""
    rnd = random.Random(seed)
    step = span(count, nodes).total_seconds() / count
    start = NOW - span(count, nodes)
    for i in range(count):
        cls, res, base = CLASSES[i % 3 if rnd.random() < 0.9 else 0]
        failed = rnd.random() < 0.04
        gen = rnd.lognormvariate(0.0, 0.25) * base
        began = start + timedelta(seconds=i * step)
        category, phase = rnd.choice(FAILURES) if failed else (None, None)
        node = f"node-{i % nodes:02d}"
        yield (
            f"run-{seed}-{i:09d}",  # run_id
            f"task-{i:09d}",  # task_id
            node,
            "t2v-A14B" if rnd.random() < 0.7 else "i2v-A14B",
            res,
            cls,
            40,  # steps
            "failed" if failed else "completed",
            began,
            began + timedelta(seconds=gen),
            "Wan2.2-T2V-A14B",
            81,  # frames
            gen,
            rnd.uniform(30, 120) if rnd.random() < 0.05 else 0.0,  # model load
            False,
            "[]",
            "[]",
            rnd.uniform(40_000, 80_000),  # peak VRAM
            35_000.0,
            81_920.0,
            None,
            rnd.uniform(20_000, 50_000),  # peak RAM
            18_000.0,
            131_072.0,
            None,
            rnd.uniform(30, 100),
            rnd.uniform(10, 60),
            100.0,
            rnd.uniform(40, 99),
            rnd.uniform(60, 88),
            65.0,
            '["hw_thermal"]' if rnd.random() < 0.01 else "[]",
            int(gen / 5),
            rnd.choice(OPT_SETS),
            category,
            None,
            phase,
            "[]",
            None,
            f"{node}:1234:0",
            None,  # gpu_index
        )


def _sqlite_text(value: Any) -> Any:
    # SQLAlchemy's storage format for DateTime on SQLite (UtcDateTime binds UTC)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def fill_sqlite(path: Path, count: int) -> float:
    """Make (or reuse) ``path`` holding ``count`` tasks; the seconds the insert took."""
    if path.exists():
        with sqlite3.connect(path) as conn:
            if conn.execute("SELECT count(*) FROM generation_tasks").fetchone()[0] == count:
                return 0.0
        path.unlink()
    SqlStore(f"sqlite:///{path}").close()  # the real schema, by the real migrations
    t0 = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")  # 1 GB: the secondary indexes stay in cache
    marks = ",".join("?" * len(TASK_FIELDS))
    sql = f"INSERT INTO generation_tasks ({','.join(TASK_FIELDS)}) VALUES ({marks})"
    batch: list[tuple[Any, ...]] = []
    for row in fleet_rows(count):
        batch.append(tuple(_sqlite_text(v) for v in row))
        if len(batch) == CHUNK:
            conn.executemany(sql, batch)
            conn.commit()
            batch.clear()
    conn.executemany(sql, batch)
    conn.commit()
    conn.close()
    return time.perf_counter() - t0


def postgres_url(admin_url: str, count: int) -> str:
    schema = f"bench_fleet_{count}"
    sep = "&" if "?" in admin_url else "?"
    return f"{admin_url}{sep}options=-csearch_path%3D{schema}"


def fill_postgres(admin_url: str, count: int) -> float:
    """Make (or reuse) the schema ``bench_fleet_<count>`` holding ``count`` tasks."""
    import psycopg

    schema = f"bench_fleet_{count}"
    plain = admin_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name = 'generation_tasks'",
            (schema,),
        ).fetchone()
        if exists:
            n = conn.execute(f'SELECT count(*) FROM "{schema}".generation_tasks').fetchone()
            if n and n[0] == count:
                return 0.0
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{schema}"')
    SqlStore(postgres_url(admin_url, count)).close()
    t0 = time.perf_counter()
    with psycopg.connect(plain, autocommit=False) as conn:
        conn.execute(f'SET search_path = "{schema}"')
        cols = ",".join(TASK_FIELDS)
        with conn.cursor() as cur, cur.copy(f"COPY generation_tasks ({cols}) FROM STDIN") as copy:
            for row in fleet_rows(count):
                copy.write_row(row)
        conn.commit()
        conn.execute("ANALYZE generation_tasks")
    return time.perf_counter() - t0


def main() -> None:
    kind, where, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if kind == "sqlite":
        folder = Path(where)
        folder.mkdir(parents=True, exist_ok=True)
        seconds = fill_sqlite(folder / f"fleet-{count}.db", count)
    else:
        seconds = fill_postgres(where, count)
    print(f"{seconds:.1f}")


if __name__ == "__main__":
    main()
