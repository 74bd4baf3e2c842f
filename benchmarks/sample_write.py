"""What one batch of samples costs to write after a sleep: the store's path against SQLAlchemy's.

Method:
    1. One store (``--database-url``; default a SQLite file in a temporary directory), one
       batch of ``--batch`` real samples (a HostCollector on that directory).
    2. Two ways to write the batch, each warmed once:
       * *store*: ``SqlStore.save_samples``, the path the agent's writer takes
         (storage/sample_insert.py: a kept DB-API connection, a fixed INSERT, executemany);
       * *core*: SQLAlchemy Core's ``insert(system_samples)`` of the codec's row dicts on a
         connection checked out of the store's pool for the batch, in one ``BEGIN IMMEDIATE``
         transaction (PostgreSQL: with the write's ``SET LOCAL statement_timeout``): the path
         samples took before, without its two ``PRAGMA synchronous`` statements.
    3. Each round sleeps ``--sleep`` seconds before each write, so that the write runs cold,
       as the idle agent's does (it sleeps ``samples_per_write`` intervals between batches),
       then times it with ``time.process_time_ns`` (this process's CPU, kernel included).
       The two alternate within a round, so drift in the machine's load falls on both.
    4. Printed: each way's median and quartiles over ``--rounds`` rounds, and the load average
       at the start and the end. ``--sleep 0`` gives the hot figure.

Run: ``.venv/bin/python benchmarks/sample_write.py`` (``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert

from genperf.collectors import HostCollector
from genperf.monitor.sampler import Sampler
from genperf.records import SystemSample
from genperf.storage import SqlStore
from genperf.storage.base import genperf_version
from genperf.storage.codec import sample_to_row
from genperf.storage.engine import POSTGRES_WRITE_TIMEOUT_MS, SQLITE_BEGIN
from genperf.storage.schema import system_samples


def core_insert(store: SqlStore, batch: list[SystemSample]) -> Callable[[], None]:
    engine = store._engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
    postgres = engine.dialect.name == "postgresql"
    statement = insert(system_samples)

    def write() -> None:
        with engine.connect() as conn:
            if postgres:
                conn.exec_driver_sql(f"SET LOCAL statement_timeout = {POSTGRES_WRITE_TIMEOUT_MS}")
            version = genperf_version()
            conn.execute(
                statement, [{**sample_to_row(s), "genperf_version": version} for s in batch]
            )
            conn.commit()

    return write


def cpu_ms(fn: Callable[[], None]) -> float:
    began = time.process_time_ns()
    fn()
    return (time.process_time_ns() - began) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="")
    parser.add_argument("--batch", type=int, default=2, help="samples per write (the default 2)")
    parser.add_argument("--sleep", type=float, default=2.0, help="seconds before each write")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    print(f"load average at start: {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        store = SqlStore(args.database_url or f"sqlite:///{Path(tmp) / 'genperf.db'}")
        sampler = Sampler([HostCollector(Path(tmp))], 1.0, lambda *_: None, node="sample-write")
        batch = [sampler.sample_once() for _ in range(args.batch)]
        ways = {"store": lambda: store.save_samples(batch), "core": core_insert(store, batch)}
        for write in ways.values():
            write()
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(args.rounds):
            for name, write in ways.items():
                time.sleep(args.sleep)
                times[name].append(cpu_ms(write))
        store.close()
    print(
        f"{args.batch} samples per write, {args.sleep:g} s asleep before each, {args.rounds} rounds"
    )
    print(f"{'way':>6} {'median ms':>10} {'q1':>7} {'q3':>7}")
    for name, values in times.items():
        q1, median, q3 = statistics.quantiles(values, n=4)
        print(f"{name:>6} {median:>10.3f} {q1:>7.3f} {q3:>7.3f}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
