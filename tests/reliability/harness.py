"""The reliability suite's tools: a real ``genperf serve`` subprocess, a client that keeps a
ledger of what each completion answered, a TCP listener that never answers, a TCP forwarder
that brings a database "back", and the check that no record acknowledged as durable is lost.

Figures (acknowledged, queued, lost, p99 of complete during the fault) are printed and, when
``GENPERF_RELIABILITY_FIGURES`` names a file, appended to it as JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from genperf.records import TaskStatus
from genperf.storage import SqlStore
from genperf.testing import wait_until

P = "/api/v1/performance"
START_TIMEOUT_S = 120.0  # importing torch and diffusers on 2 busy cores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``python -m genperf serve`` on a free port, with its own data directory."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GENPERF_")}
        env.update(
            GENPERF_DATA_DIR=str(data_dir),
            GENPERF_MONITORING_INTERVAL_SECONDS="0.5",
            GENPERF_SAMPLE_FLUSH_SECONDS="0.5",
        )
        if database_url is not None:
            env["GENPERF_DATABASE_URL"] = database_url
        self.log = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "genperf", "serve", "--port", str(self.port)],
            env=env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        self.client = httpx.Client(base_url=self.base, timeout=60)

    def wait_alive(self) -> None:
        """Until /healthz answers: the process is up (ready or not)."""
        self.wait_until(
            lambda: self.client.get("/healthz", timeout=2).status_code == 200,
            "the server to start",
            START_TIMEOUT_S,
            ignore=(httpx.TransportError,),  # not listening yet
        )

    def ready(self) -> bool:
        return self.client.get("/readyz").status_code == 200

    def wait_until(
        self,
        condition: Callable[[], bool],
        what: str,
        timeout: float = 60.0,
        ignore: tuple[type[BaseException], ...] = (),
    ) -> None:
        """Poll ``condition``; fail with the server's log if it dies or ``timeout`` passes."""
        try:
            wait_until(
                condition,
                timeout=timeout,
                interval=0.2,
                what=what,
                alive=lambda: self.proc.poll() is None,
                ignore=ignore,
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.log.read_text()}") from None

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)
        self.client.close()
        self._log_file.close()


@dataclass
class Ledger:
    """What every completion answered: task id -> (HTTP status, durable)."""

    answers: dict[str, tuple[int, bool | None]] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)  # complete's latency, in the fault
    retried: dict[str, tuple[int, bool | None]] = field(default_factory=dict)  # answers again

    def run(self, server: Server, task_ids: list[str], *, timed: bool = True) -> None:
        for task_id in task_ids:
            start = {"task_id": task_id, "model_type": "tiny-wan", "resolution": "832x480"}
            r = server.client.post(f"{P}/tasks", json=start)
            assert r.status_code == 201, r.text
            self.complete(server, task_id, timed=timed)

    def complete(self, server: Server, task_id: str, *, timed: bool = True) -> int:
        began = time.perf_counter()
        r = server.client.post(f"{P}/tasks/{task_id}/complete")
        if timed:
            self.seconds.append(time.perf_counter() - began)
        durable = r.json().get("durable") if r.status_code in (200, 202) else None
        if task_id in self.answers and self.answers[task_id][0] != 200:
            self.retried[task_id] = (r.status_code, durable)
        # The truth: 200 says stored, 202 says not yet; nothing else acknowledges.
        assert r.status_code in (200, 202, 503), r.text
        assert (r.status_code == 200) == (durable is True), r.text
        self.answers.setdefault(task_id, (r.status_code, durable))  # the first answer counts
        return r.status_code

    def acknowledged(self) -> list[str]:
        """Tasks some answer called durable (200), first or on a retry."""
        answers = [*self.answers.items(), *self.retried.items()]
        return list(dict.fromkeys(t for t, (code, _) in answers if code == 200))

    def queued(self) -> list[str]:
        return [t for t, (code, _) in self.answers.items() if code == 202]


def lost_records(url: str, task_ids: list[str]) -> list[str]:
    """The acknowledged-as-durable tasks the database does not hold as completed."""
    if not task_ids:
        return []
    store = SqlStore(url)
    try:
        missing = []
        for task_id in task_ids:
            record = store.get_task(task_id)
            if record is None or record.status is not TaskStatus.COMPLETED:
                missing.append(task_id)
        return missing
    finally:
        store.close()


def p50(seconds: list[float]) -> float | None:
    return sorted(seconds)[len(seconds) // 2] if seconds else None


def p99(seconds: list[float]) -> float | None:
    if not seconds:
        return None
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def report(scenario: str, ledger: Ledger, lost: list[str]) -> None:
    figures = {
        "scenario": scenario,
        "completions": len(ledger.answers),
        "acknowledged_durable": len(ledger.acknowledged()),
        "queued_not_durable": len(ledger.queued()),
        "lost": len(lost),
        "p50_complete_seconds_in_fault": p50(ledger.seconds),
        "p99_complete_seconds_in_fault": p99(ledger.seconds),
    }
    print("RELIABILITY", json.dumps(figures))
    target = os.environ.get("GENPERF_RELIABILITY_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps(figures) + "\n")


class SilentListener:
    """A TCP server that accepts connections and never answers: a stalled database."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if ready:
                conn, _ = self.sock.accept()
                self._held.append(conn)  # held open, never read, never answered

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._held:
            conn.close()
        self.sock.close()


class Forwarder:
    """Forwards a local port to ``target`` once started: a database that comes back."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port, self.target = port, target
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.sock: socket.socket | None = None

    def start(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self._spawn(self._accept)

    def _spawn(self, target: Callable[..., None], *args: socket.socket) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)
        t.start()
        self._threads.append(t)

    def _accept(self) -> None:
        assert self.sock is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if ready:
                client, _ = self.sock.accept()
                upstream = socket.create_connection(self.target)
                self._spawn(self._pipe, client, upstream)
                self._spawn(self._pipe, upstream, client)

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([src], [], [], 0.1)
                if not ready:
                    continue
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(5)
        if self.sock is not None:
            self.sock.close()
