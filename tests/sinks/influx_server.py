"""A real InfluxDB 1.x (Debian's ``influxdb``) for tests: started on free loopback ports with
a generated config and temporary directories, stopped by its pid. benchmarks/sink_overhead.py
starts its influxd with this too."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class InfluxServer:
    """One influxd process; ``stop()`` and ``start()`` again keep its data (an outage)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.http_port = free_port()
        self.config = root / "influxdb.conf"
        self.config.write_text(
            CONFIG.format(root=root, rpc_port=free_port(), http_port=self.http_port)
        )
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / "influxd.log").open("ab") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                ["influxd", "run", "-config", str(self.config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    return
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.05)  # polling for readiness, not ordering a race
        raise RuntimeError(f"influxd did not start: {(self.root / 'influxd.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

    def query(self, q: str, db: str = "genperf") -> list[dict[str, Any]]:
        """Rows of every series the query returns, each a dict with its tags and ``time`` (ns)."""
        response = httpx.post(
            f"{self.url}/query", data={"q": q, "db": db, "epoch": "ns"}, timeout=10
        )
        response.raise_for_status()
        rows: list[dict[str, Any]] = []
        for result in response.json()["results"]:
            assert "error" not in result, result
            for series in result.get("series", []):
                for values in series["values"]:
                    row = dict(zip(series["columns"], values, strict=True))
                    row.update(series.get("tags") or {})
                    rows.append(row)
        return rows
