"""Prometheus scrape of the API's /metrics with 64 nodes' tasks in the store, of an agent's
own listener, and the series count against the task count.

Method
------
1. Store. A fresh SQLite file (``SqlStore(url)``: the real schema) holds finished tasks of
   ``--nodes`` (64) node names, ``--stored-tasks`` of them (64 000) inserted in bulk, and 100
   system samples per node: a fleet sharing one database, as a scrape of one node meets it.
2. Server. A second process serves genperf's app (``create_app``, the same as ``genperf serve``
   without the generation service) under uvicorn on a free loopback port, with API tokens
   (every scrape pays for authentication) and the real psutil host collector at the spec's 5 s
   interval. Its GPUs are ``genperf.testing.FakeNvml``'s, ``--gpus`` (8) of them behind the real
   NVML collector: this machine has none, and an 8-GPU node is the widest exposition.
3. Tasks through the API (POST /tasks, POST /tasks/{id}/complete), from this process: each
   of ``--models`` (5) model types x 3 resolution classes, with four phases, step times and
   peaks, and one failure of every error category per round: every label combination a node
   with that many models can show. Rounds repeat until ``--tasks`` (1000) tasks, then
   ``--more-tasks`` (10 000): the series are counted after each (exposition lines that are
   samples), and must be equal.
4. Scrapes. After each ingestion, ``--scrapes`` (2000) sequential GET /metrics with the bearer
   token and Prometheus 2.42's own ``Accept`` (OpenMetrics first) and ``Accept-Encoding:
   gzip`` headers, on one keep-alive connection (Prometheus scrapes a target sequentially),
   after 200 unmeasured ones. Latency is the client's, from sending the request to the last byte.
   The same is measured once before any task through the API (the API's exposition holds
   the 64 nodes' task families of the store: it exports the whole database's, see
   docs/design.md). Reported: p50 / p99 / max in ms, the server process's CPU time per scrape
   (psutil; less moved by other processes' load than the latency), the body size, the series
   count, and the load average: on a shared 2-core machine other jobs move the latencies.
5. Refresh cost, in this process, off the scrape path: CPU time of the first full fold of the
   store (``StoreTaskFamilies``: read every row, fold, render every node's block in both
   formats), then of one refresh after one more finished task (read the new row, render its
   node's block, assemble, compress the OpenMetrics exposition once for gzip scrapes), the
   median of 50.
6. Agent. ``--scrapes`` GET /metrics of the agent listener (a new connection each: its WSGI
   server speaks HTTP/1.0), measured the same way.

Run (from the repository root)::

    .venv/bin/python benchmarks/scrape_fleet.py
    .venv/bin/python benchmarks/scrape_fleet.py --more-tasks 3000 --scrapes 500   # a quick look
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import psutil
from sqlalchemy import create_engine

from genperf.records import (
    ErrorCategory,
    SystemSample,
    TaskRecord,
    TaskStatus,
    utc_now,
)
from genperf.storage.codec import task_to_row
from genperf.storage.schema import generation_tasks
from genperf.storage.sql import SqlStore

TOKEN = "bench-scrape-token-0123456789abcdef"
# What Prometheus 2.42 (Debian 12) sends with every scrape.
SCRAPE_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
    "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
    "Accept-Encoding": "gzip",
}
P = "/api/v1/performance"
CLASSES = (("720p", "1280x720", 240.0), ("1080p", "1920x1080", 700.0), ("480p", "832x480", 90.0))
PHASES = (("model_load", 0.08), ("text_encode", 0.02), ("denoise", 0.8), ("vae_decode", 0.1))


def seed(url: str, nodes: int, tasks: int) -> None:
    SqlStore(url).close()  # schema and indexes from the migrations
    rng = random.Random(7)
    now = utc_now()
    rows = []
    for i in range(tasks):
        res_class, resolution, typical = CLASSES[i % len(CLASSES)]
        started = now - timedelta(seconds=rng.uniform(60, 86_000))
        gen = typical * rng.lognormvariate(0, 0.25)
        rows.append(
            task_to_row(
                TaskRecord(
                    run_id=uuid.UUID(int=rng.getrandbits(128)).hex,
                    task_id=f"seed-{i}",
                    node=f"gpu-node-{i % nodes:02d}",
                    model_type=f"model-{i % 5}",
                    resolution=resolution,
                    resolution_class=res_class,
                    steps=40,
                    status=TaskStatus.COMPLETED,
                    started_at=started,
                    completed_at=started + timedelta(seconds=gen),
                    generation_time_seconds=gen,
                )
            )
        )
    engine = create_engine(url)
    with engine.begin() as conn:
        for chunk in range(0, len(rows), 20_000):
            conn.execute(generation_tasks.insert(), rows[chunk : chunk + 20_000])
    engine.dispose()
    store = SqlStore(url)
    store.save_samples(
        [
            SystemSample(
                taken_at=now - timedelta(seconds=5 * k), node=f"gpu-node-{n:02d}", cpu_percent=50.0
            )
            for n in range(nodes)
            for k in range(100)
        ]
    )
    store.close()


def serve(url: str, port: int, gpus: int) -> None:
    """The server process (``--serve``): the API on ``port``, the agent listener on port+1."""
    import uvicorn

    from genperf.api import ApiSettings, create_app
    from genperf.collectors import HostCollector, NvmlCollector
    from genperf.config import Settings
    from genperf.exporters.process_metrics import serve_process_metrics
    from genperf.monitor import PerformanceMonitor
    from genperf.testing import FakeGpu, FakeNvml

    data = Path(tempfile.mkdtemp(prefix="genperf-scrape-"))
    settings = Settings(database_url=url, data_dir=data, node_name="gpu-node-00")
    fake = FakeNvml([FakeGpu(utilization_percent=90, throttle_reasons=0x20) for _ in range(gpus)])
    monitor = PerformanceMonitor(settings, collectors=[HostCollector(data), NvmlCollector(fake)])
    app = create_app(
        settings,
        monitor=monitor,
        api_settings=ApiSettings(api_tokens=(f"admin:{TOKEN}",)),
        environ={},
    )
    serve_process_metrics(monitor, "127.0.0.1", port + 1, TOKEN)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class Client:
    def __init__(self, port: int, keep_alive: bool = True) -> None:
        self.port = port
        self.keep_alive = keep_alive
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes]:
        if not self.keep_alive:
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = None if body is None else json.dumps(body).encode()
        self.conn.request(method, path, body=data, headers={**self.headers, **(headers or {})})
        response = self.conn.getresponse()
        return response.status, response.read()


def ingest(client: Client, start: int, count: int, models: int) -> None:
    categories = [c.value for c in ErrorCategory if c is not ErrorCategory.INTERRUPTED]
    i = start
    while i < start + count:
        for m in range(models):
            for res_class, resolution, typical in CLASSES:
                task_id = f"t-{i}"
                i += 1
                body = {
                    "task_id": task_id,
                    "model_type": f"model-{m}",
                    "resolution": resolution,
                    "generation_time_seconds": typical,
                    "phases": [
                        {
                            "name": name,
                            "started_offset_seconds": 0,
                            "duration_seconds": share * typical,
                        }
                        for name, share in PHASES
                    ],
                    "step_times_seconds": [typical / 50] * 40,
                    "peak_vram_usage_mb": 60_000,
                    "vram_total_mb": 81_920,
                    "peak_ram_usage_mb": 30_000,
                    "ram_total_mb": 131_072,
                }
                assert client.request("POST", f"{P}/tasks", body)[0] == 201, res_class
                assert client.request("POST", f"{P}/tasks/{task_id}/complete", {})[0] == 200
        for category in categories:
            task_id = f"t-{i}"
            i += 1
            body = {"task_id": task_id, "model_type": "model-0", "resolution": "720p"}
            assert client.request("POST", f"{P}/tasks", body)[0] == 201
            failure = {"success": False, "error": "x", "error_category": category}
            assert client.request("POST", f"{P}/tasks/{task_id}/complete", failure)[0] == 200


def scrape(client: Client, n: int, server: psutil.Process) -> tuple[list[float], float, bytes]:
    """Latencies (s), the server's CPU seconds per scrape, and the last body."""
    body = b""
    for _ in range(200):
        client.request("GET", "/metrics", headers=SCRAPE_HEADERS)
    times = []
    cpu = server.cpu_times()
    for _ in range(n):
        began = time.perf_counter()
        status, body = client.request("GET", "/metrics", headers=SCRAPE_HEADERS)
        times.append(time.perf_counter() - began)
        assert status == 200
    after = server.cpu_times()
    per_scrape = (after.user + after.system - cpu.user - cpu.system) / n
    return times, per_scrape, body


def series(body: bytes) -> int:
    text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
    return sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))


def report(tasks: int | str, measured: tuple[list[float], float, bytes]) -> int:
    times, cpu, body = measured
    ms = sorted(t * 1000 for t in times)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    count = series(body)
    what = f"{tasks:>6} tasks" if isinstance(tasks, int) else tasks
    print(
        f"{what}: {count} series, {len(body) / 1024:.1f} KiB on the wire; scrape p50 "
        f"{statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, max {ms[-1]:.2f} ms; server CPU "
        f"{cpu * 1000:.2f} ms/scrape (load {os.getloadavg()[0]:.2f})",
        flush=True,
    )
    return count


def refresh_cost(url: str) -> None:
    from genperf.config import Settings
    from genperf.exporters.prometheus_tasks import StoreTaskFamilies

    store = SqlStore(url)
    families = StoreTaskFamilies(lambda: store, Settings(), wait_seconds=600.0)
    try:
        began = time.process_time()
        families.deflated(openmetrics=True)  # the refresh thread's CPU is the process's
        first = time.process_time() - began
        costs = []
        for i in range(50):
            record = TaskRecord(
                run_id=uuid.uuid4().hex,
                task_id=f"refresh-{i}",
                node=f"gpu-node-{i % 64:02d}",
                model_type="model-1",
                resolution="1280x720",
                resolution_class="720p",
                steps=40,
                status=TaskStatus.COMPLETED,
                started_at=utc_now(),
                completed_at=utc_now(),
                generation_time_seconds=250.0,
            )
            store.save_task(record)
            cpu = time.process_time()
            families.changed()
            families.deflated(openmetrics=True)  # what a Prometheus scrape asks for
            costs.append(time.process_time() - cpu)
        print(
            f"refresh: first pass {first:.2f} s CPU; after one finished task "
            f"{statistics.median(costs) * 1000:.1f} ms CPU (median of 50)",
            flush=True,
        )
    finally:
        families.close()
        store.close()


def free_port_pair() -> int:
    """A free loopback port whose next one is free too (the API's and the agent's)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=64)
    parser.add_argument("--stored-tasks", type=int, default=64_000)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--more-tasks", type=int, default=10_000)
    parser.add_argument("--scrapes", type=int, default=2000)
    parser.add_argument("--serve", nargs=2, metavar=("URL", "PORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]), args.gpus)
        return

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'fleet.db'}"
        seed(url, args.nodes, args.stored_tasks)
        print(
            f"store: {args.stored_tasks} tasks and {args.nodes * 100} samples of {args.nodes} nodes"
        )
        refresh_cost(url)
        port = free_port_pair()
        server = subprocess.Popen(
            [sys.executable, __file__, "--gpus", str(args.gpus), "--serve", url, str(port)]
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    client = Client(port)
                    if client.request("GET", "/readyz")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start")
                time.sleep(0.2)
            process = psutil.Process(server.pid)
            report(0, scrape(client, args.scrapes, process))
            ingest(client, 0, args.tasks, args.models)
            first = report(args.tasks, scrape(client, args.scrapes, process))
            ingest(client, args.tasks, args.more_tasks - args.tasks, args.models)
            second = report(args.more_tasks, scrape(client, args.scrapes, process))
            print(
                f"series count {'unchanged' if first == second else 'CHANGED'}: {first} -> {second}"
            )
            report(
                "agent listener", scrape(Client(port + 1, keep_alive=False), args.scrapes, process)
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
