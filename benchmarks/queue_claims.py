"""How fast 16 workers drain one generation queue, and that none runs a request twice.

Method. For each database (a fresh SQLite file; a fresh schema on the PostgreSQL server at
``--postgres``), queue ``--requests`` requests, then start ``--workers`` worker processes
(spawned, each with its own RequestQueue, so each has its own connections, as agents on
separate nodes would). Each waits on a shared start event, then loops: claim the oldest
request under a 30 s lease (``claim_next``, as the worker does), finish it (``finish`` with
its worker identity, the conditional update a real run ends with), until the queue is empty.
The clock runs from the start event to the last worker's end. Claims per second = requests /
elapsed. Duplicates = claims - distinct task ids (must be 0); every request must end
``completed``.

    .venv/bin/python benchmarks/queue_claims.py --requests 2000 --workers 16
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from genperf.generation.queue import RequestQueue
from genperf.generation.request import RequestStatus
from genperf.testing import make_request, postgres_schema

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _drain(url: str, worker: str, start: Any, out: Any) -> None:
    queue = RequestQueue(url)
    claimed: list[str] = []
    start.wait()
    while (request := queue.claim_next(worker, "bench-node", lease_seconds=30)) is not None:
        queue.finish(request.task_id, RequestStatus.COMPLETED, worker=worker)
        claimed.append(request.task_id)
    queue.close()
    out.put((claimed, time.monotonic()))


def run(url: str, args: argparse.Namespace) -> tuple[float, int, int]:
    queue = RequestQueue(url)
    for n in range(args.requests):
        queue.add(make_request(n))
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    procs = [
        context.Process(target=_drain, args=(url, f"w{i}", start, out)) for i in range(args.workers)
    ]
    for p in procs:
        p.start()
    time.sleep(5)  # every worker connected and waiting (spawn imports genperf)
    began = time.monotonic()
    start.set()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(60)
    ended = max(t for _, t in results)
    claims = [task for got, _ in results for task in got]
    completed = queue.count([RequestStatus.COMPLETED])
    queue.close()
    return args.requests / (ended - began), len(claims) - len(set(claims)), completed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument(
        "--postgres", default=os.environ.get("GENPERF_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for database in args.databases:
            if database == "sqlite":
                rate, duplicates, completed = run(f"sqlite:///{Path(tmp) / 'q.db'}", args)
            else:
                with postgres_schema(args.postgres, "genperf_claims") as url:
                    rate, duplicates, completed = run(url, args)
            print(
                f"{database:10s} {args.workers} workers: {rate:.0f} claims/s, "
                f"{duplicates} duplicates, {completed}/{args.requests} completed; "
                f"load average {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
