"""What an idle ``genperf serve`` costs: CPU time of the whole process per second of wall time.

Method. For each database (a fresh SQLite file; a fresh schema on the PostgreSQL server at
``--postgres``), start a real ``genperf serve`` (API, sampler, writer and the generation
worker) at a 5 s sample interval on a free loopback port, wait until ``/healthz`` answers,
let it settle for ``--settle`` seconds, then read the process's CPU time (user + system,
psutil) at the start and the end of ``--seconds`` seconds of idleness: nothing is queued and
no client calls it. The cost is CPU seconds / wall seconds, as a percentage of one core.

Two configurations are run one after the other, alternating, ``--rounds`` times each:
``poll 1 s`` (``generation_queue.idle_poll_seconds=1``: the worker looks at the queue every
second, as before LISTEN/NOTIFY) and ``default`` (PostgreSQL: woken by NOTIFY, fallback poll
30 s; SQLite: backed off to a poll every 5 s). The median of the rounds is reported.

    .venv/bin/python benchmarks/idle_serve.py --seconds 120 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from genperf.testing import postgres_schema

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("serve did not answer")


def measure(
    database_url: str, data_dir: Path, idle_poll: float | None, args: argparse.Namespace
) -> float:
    """Percent of one core an idle serve uses."""
    port = _free_port()
    env = {
        **os.environ,
        "GENPERF_DATABASE_URL": database_url,
        "GENPERF_DATA_DIR": str(data_dir),
        "GENPERF_MONITORING_INTERVAL_SECONDS": "5",
        "GENPERF_ENABLE_GPU_MONITORING": "false",
    }
    env.pop("GENPERF_API_TOKENS", None)
    if idle_poll is not None:
        env["GENPERF_GENERATION_QUEUE__IDLE_POLL_SECONDS"] = str(idle_poll)
    proc = subprocess.Popen(
        [sys.executable, "-m", "genperf", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}", proc)
        time.sleep(args.settle)
        p = psutil.Process(proc.pid)
        before, began = p.cpu_times(), time.monotonic()
        time.sleep(args.seconds)
        after, ended = p.cpu_times(), time.monotonic()
        used = (after.user - before.user) + (after.system - before.system)
        return 100.0 * used / (ended - began)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0, help="idle time measured")
    parser.add_argument("--settle", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--postgres", default=os.environ.get("GENPERF_TEST_POSTGRES_URL", DEFAULT_POSTGRES)
    )
    parser.add_argument("--databases", nargs="+", default=["sqlite", "postgresql"])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        for database in args.databases:
            results: dict[str, list[float]] = {"poll 1 s": [], "default": []}
            for n in range(args.rounds):
                for name, idle_poll in (("poll 1 s", 1.0), ("default", None)):
                    data_dir = Path(tmp) / f"{database}-{name.replace(' ', '')}-{n}"
                    if database == "sqlite":
                        url = f"sqlite:///{data_dir / 'genperf.db'}"
                        results[name].append(measure(url, data_dir, idle_poll, args))
                        continue
                    with postgres_schema(args.postgres, "genperf_idle") as url:
                        results[name].append(measure(url, data_dir, idle_poll, args))
            for name, values in results.items():
                shown = ", ".join(f"{v:.3f}" for v in values)
                print(
                    f"{database:10s} {name:9s} median {statistics.median(values):.3f} % of a core "
                    f"({shown}); load average {os.getloadavg()[0]:.1f}"
                )


if __name__ == "__main__":
    main()
