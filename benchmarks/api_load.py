"""Load on the REST API: /status, Prometheus /metrics and /analysis over 100k stored tasks,
while tasks are being ingested at the same time.

Method
------
1. Data. A fresh SQLite file is made by ``SqlStore(url)`` (the real schema and indexes, from
   the migrations), then filled with ``--tasks`` finished tasks (default 100 000) through
   ``generation_tasks.insert()`` executed with lists of rows (one transaction per 20 000),
   never ``save_task`` one by one. All tasks start inside the last ``--spread-hours`` (24), so
   the default /analysis window holds every one of them (the worst case: the report
   aggregates 100k tasks in SQL). Seeded: every run builds the same data.
2. Server. ``python -m genperf serve --host 127.0.0.1`` runs in a subprocess on that file,
   exactly as a user starts it: uvicorn, one process, the sampler on (5 s, real psutil
   collectors), API tokens configured (so every request pays for authentication).
3. Load, from this (second) process, over loopback. The client is a minimal asyncio HTTP/1.1
   client on keep-alive connections (no third-party client: httpx would cost this 2-core
   machine more CPU than the server it measures). Load is *open loop*: request i is due at
   ``t0 + i / rate`` whatever happened before, and its latency is measured from that due time,
   so a stalled server shows up as latency (no coordinated omission). Requests are spread
   over ``--connections`` connections; a request waits for a free one.
4. Concurrent ingestion. During every measured phase a second open-loop stream ingests tasks
   at ``--ingest-rate`` tasks/s through the API: POST /tasks, PATCH /tasks/{id}, POST
   /tasks/{id}/complete (three requests per task; complete commits to SQLite before it
   answers).
5. Phases, each ``--duration`` seconds after a 2 s warm-up at the same rate: /status at
   ``--status-rate`` (500/s), /metrics at ``--metrics-rate`` (100/s), /analysis at
   ``--analysis-rate`` (20/s; reports are cached for 5 s per window and cleared by each
   ingested task, so this mostly measures building the report). Then each endpoint alone,
   *closed loop* (``--connections`` requests always in flight, no ingestion) for its maximum
   throughput.
6. Fleet (issue 13): ``--postgres URL`` puts the data in a schema of its own on that
   PostgreSQL server (dropped after) instead of SQLite, and ``--sampling-nodes N`` starts N
   real ``genperf agent --node fleet-node-i`` processes sampling every
   ``--sampling-interval`` (1 s) into the same database for the whole run, so /status is
   measured while a fleet writes its samples (the agents start and settle before the load).
7. Reported per phase: requests sent, achieved req/s, p50 / p99 / max latency (ms), errors
   (anything but the expected status, and transport errors), and the machine's load average
   before and after: on a shared 2-core machine other processes move the tail latencies.

Run (from the repository root)::

    .venv/bin/python benchmarks/api_load.py                     # the defaults above
    .venv/bin/python benchmarks/api_load.py --tasks 10000 --duration 5   # a quick look
    .venv/bin/python benchmarks/api_load.py --postgres postgresql://127.0.0.1:5432/test \
        --sampling-nodes 16                                              # 16 nodes at 1 s
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import create_engine

from genperf.records import PhaseRecord, TaskRecord, TaskStatus, utc_now
from genperf.storage.codec import task_to_row
from genperf.storage.schema import generation_tasks
from genperf.storage.sql import SqlStore
from genperf.testing import postgres_schema

TOKEN = "bench-admin-token-0123456789abcdef"
P = "/api/v1/performance"
CHUNK = 20_000
CLASSES = (("720p", "1280x720", 240.0), ("1080p", "1920x1080", 700.0), ("480p", "832x480", 90.0))
OPT_SETS = (("dtype:bf16",), ("dtype:bf16", "vae_tiling"), ("dtype:bf16", "offload:model"))


# --- data ------------------------------------------------------------------------------------


def synthetic_task(rng: random.Random, i: int, now_offset: timedelta, now) -> TaskRecord:
    res_class, resolution, typical = CLASSES[i % len(CLASSES)]
    started = now - now_offset
    gen = typical * rng.lognormvariate(0, 0.25)
    failed = rng.random() < 0.04
    return TaskRecord(
        run_id=uuid.UUID(int=rng.getrandbits(128)).hex,
        task_id=f"seed-{i}",
        node="bench-node",
        model_type="t2v-A14B" if i % 4 else "i2v-A14B",
        resolution=resolution,
        resolution_class=res_class,
        steps=40,
        status=TaskStatus.FAILED if failed else TaskStatus.COMPLETED,
        started_at=started,
        completed_at=started + timedelta(seconds=gen),
        generation_time_seconds=gen,
        model_load_time_seconds=rng.uniform(5, 40),
        phases=(PhaseRecord("denoise", 10.0, gen * 0.8),),
        peak_vram_usage_mb=rng.uniform(40_000, 78_000),
        vram_total_mb=81_920.0,
        peak_ram_usage_mb=rng.uniform(20_000, 50_000),
        ram_total_mb=131_072.0,
        avg_cpu_percent=rng.uniform(10, 60),
        avg_gpu_utilization_percent=rng.uniform(60, 99),
        peak_gpu_temperature_celsius=rng.uniform(60, 86),
        optimizations_applied=OPT_SETS[i % len(OPT_SETS)],
        error_category="out_of_memory_gpu" if failed else None,
        samples_count=10,
    )


def seed(url: str, count: int, spread_hours: float) -> float:
    """Fill a fresh database; returns the seconds it took."""
    began = time.perf_counter()
    SqlStore(url).close()  # schema and indexes from the migrations
    engine = create_engine(url)
    rng = random.Random(42)
    now = utc_now()
    spread = spread_hours * 3600.0
    with engine.begin() as conn:
        rows = []
        for i in range(count):
            offset = timedelta(seconds=60 + rng.random() * (spread - 120))
            rows.append(task_to_row(synthetic_task(rng, i, offset, now)))
            if len(rows) >= CHUNK:
                conn.execute(generation_tasks.insert(), rows)
                rows = []
        if rows:
            conn.execute(generation_tasks.insert(), rows)
    engine.dispose()
    return time.perf_counter() - began


# --- a minimal HTTP/1.1 keep-alive client -------------------------------------------------------


class Connection:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {TOKEN}\r\n"
        )
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        try:
            header = await self.reader.readuntil(b"\r\n\r\n")
            status = int(header[9:12])
            lowered = header.lower()
            if b"transfer-encoding: chunked" in lowered:
                while True:
                    size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                    await self.reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                start = lowered.index(b"content-length:") + 15
                length = int(lowered[start : lowered.index(b"\r\n", start)])
                await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            self.close()
            raise
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Result:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0

    def row(self) -> str:
        lat = sorted(self.latencies)
        if not lat:
            return f"| {self.name} | 0 | - | - | - | - | {self.errors} |"
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return (
            f"| {self.name} | {len(lat)} | {len(lat) / self.elapsed:.0f} "
            f"| {statistics.median(lat) * 1e3:.1f} | {p99 * 1e3:.1f} | {lat[-1] * 1e3:.1f} "
            f"| {self.errors} |"
        )


Call = Callable[[Connection], Awaitable[bool]]


def get(path: str) -> Call:
    async def call(conn: Connection) -> bool:
        return await conn.request("GET", path) == 200

    return call


class Ingest:
    """One task's ingestion: start, update, complete (three requests)."""

    def __init__(self) -> None:
        self.n = 0

    async def __call__(self, conn: Connection) -> bool:
        self.n += 1
        task_id = f"live-{os.getpid()}-{self.n}"
        start = json.dumps({"task_id": task_id, "model_type": "t2v-A14B", "steps": 40}).encode()
        update = json.dumps({"model_load_time_seconds": 12.5, "frames": 81}).encode()
        ok = await conn.request("POST", f"{P}/tasks", start) == 201
        ok &= await conn.request("PATCH", f"{P}/tasks/{task_id}", update) == 200
        ok &= await conn.request("POST", f"{P}/tasks/{task_id}/complete") == 200
        return ok


async def open_loop(
    name: str, call: Call, port: int, rate: float, duration: float, connections: int
) -> Result:
    """Issue ``call`` at ``rate`` per second for ``duration`` s; latency from the due time."""
    result = Result(name)
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(Connection(port))

    async def one(due: float) -> None:
        conn = await pool.get()
        try:
            ok = await call(conn)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            ok = False
        finally:
            pool.put_nowait(conn)
        result.latencies.append(time.perf_counter() - due)
        result.errors += not ok

    t0 = time.perf_counter()
    tasks = []
    total = int(rate * duration)
    for i in range(total):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    result.elapsed = time.perf_counter() - t0
    while not pool.empty():
        pool.get_nowait().close()
    return result


async def closed_loop(name: str, call: Call, port: int, duration: float, inflight: int) -> Result:
    result = Result(name)
    stop = time.perf_counter() + duration

    async def worker() -> None:
        conn = Connection(port)
        while time.perf_counter() < stop:
            began = time.perf_counter()
            try:
                ok = await call(conn)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                ok = False
            result.latencies.append(time.perf_counter() - began)
            result.errors += not ok
        conn.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    result.elapsed = time.perf_counter() - t0
    return result


async def run_load(args: argparse.Namespace, port: int) -> list[Result]:
    phases = (
        (f"GET {P}/status", get(f"{P}/status"), args.status_rate),
        ("GET /metrics (Prometheus)", get("/metrics"), args.metrics_rate),
        (f"GET {P}/analysis", get(f"{P}/analysis?time_window_hours=24"), args.analysis_rate),
    )
    results: list[Result] = []
    for name, call, rate in phases:
        warm = 2.0
        await asyncio.gather(
            open_loop(name, call, port, rate, warm, args.connections),
            open_loop("ingest", Ingest(), port, args.ingest_rate, warm, 4),
        )
        measured, ingested = await asyncio.gather(
            open_loop(f"{name} @ {rate:g}/s", call, port, rate, args.duration, args.connections),
            open_loop(
                f"  ingestion during it @ {args.ingest_rate:g} tasks/s (3 requests each)",
                Ingest(),
                port,
                args.ingest_rate,
                args.duration,
                4,
            ),
        )
        results += [measured, ingested]
    for name, call, _ in phases:
        results.append(
            await closed_loop(
                f"{name}, max (closed loop, {args.connections} in flight, no ingestion)",
                call,
                port,
                args.duration / 2,
                args.connections,
            )
        )
    return results


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workdir: Path, url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
    env.update(
        GENPERF_DATABASE_URL=url,
        GENPERF_DATA_DIR=str(workdir),
        GENPERF_API_TOKENS=f"admin:{TOKEN}",
    )
    log = (workdir / "server.log").open("wb")
    cmd = [sys.executable, "-m", "genperf", "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {workdir / 'server.log'}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not start in 60 s")


@contextmanager
def sampling_nodes(workdir: Path, url: str, count: int, interval: float) -> Iterator[None]:
    """``count`` real agents sampling into ``url`` until the block ends (SIGTERM)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
    env.update(GENPERF_DATABASE_URL=url, GENPERF_MONITORING_INTERVAL_SECONDS=str(interval))
    agents = []
    try:
        for i in range(count):
            home = workdir / f"node-{i}"
            home.mkdir()
            cmd = [sys.executable, "-m", "genperf", "agent", "--node", f"fleet-node-{i}"]
            log = (home / "agent.log").open("wb")
            agents.append(
                subprocess.Popen(
                    cmd,
                    env={**env, "GENPERF_DATA_DIR": str(home)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        # settled: every agent has logged that it samples (imports and schema checks done)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            logs = [(workdir / f"node-{i}" / "agent.log").read_text() for i in range(count)]
            if all("sampling every" in text for text in logs):
                break
            if any(a.poll() is not None for a in agents):
                raise SystemExit(f"an agent exited: see {workdir}/node-*/agent.log")
            time.sleep(0.5)
        else:
            raise SystemExit("the agents did not start in 120 s")
        print(f"{count} agents sampling every {interval:g} s")
        yield
    finally:
        for agent in agents:
            agent.send_signal(signal.SIGTERM)
        for agent in agents:
            try:
                agent.wait(30)
            except subprocess.TimeoutExpired:
                agent.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--spread-hours", type=float, default=24.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--status-rate", type=float, default=500.0)
    parser.add_argument("--metrics-rate", type=float, default=100.0)
    parser.add_argument("--analysis-rate", type=float, default=20.0)
    parser.add_argument("--ingest-rate", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--postgres", default="", help="a PostgreSQL server URL (own schema)")
    parser.add_argument("--sampling-nodes", type=int, default=0)
    parser.add_argument("--sampling-interval", type=float, default=1.0)
    args = parser.parse_args()

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="genperf-api-")))
        if args.postgres:
            url = stack.enter_context(postgres_schema(args.postgres, "genperf_api_load"))
        else:
            url = f"sqlite:///{workdir / 'genperf.db'}"
        took = seed(url, args.tasks, args.spread_hours)
        print(f"seeded {args.tasks} tasks over the last {args.spread_hours:g} h in {took:.1f} s")
        if args.sampling_nodes:
            stack.enter_context(
                sampling_nodes(workdir, url, args.sampling_nodes, args.sampling_interval)
            )
        port = free_port()
        load_before = os.getloadavg()
        server = start_server(workdir, url, port)
        try:
            results = asyncio.run(run_load(args, port))
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        load_after = os.getloadavg()
        print(
            f"\nmachine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
            f"{load_before[0]:.1f} before, {load_after[0]:.1f} after (other processes count)"
        )
        print("| phase | requests | req/s | p50 ms | p99 ms | max ms | errors |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for result in results:
            print(result.row())


if __name__ == "__main__":
    main()
