"""One real monitoring stack for the end-to-end tests, shared by a module's tests:

* genperf's real app (real SQLite store, real psutil host collector) served by uvicorn on a free
  loopback port, with API tokens; its GPUs are :class:`genperf.testing.FakeNvml` behind the
  real NVML collector, the one boundary this machine lacks;
* a real Prometheus (Debian's), configured from deploy/prometheus/prometheus.yml (bearer token
  from a file, the target found through file_sd), scraping and evaluating every second, with
  the rules ``genperf rules`` writes from the app's settings, on short windows;
* a real Alertmanager, configured from deploy/alertmanager/alertmanager.yml, whose receivers
  post to a webhook recorder in this process.

Every server is started on a free port with its files in a temporary directory and stopped by
its pid (a process, or a thread for uvicorn and the recorder).
"""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from deploy_support import DEPLOY, free_port, tool

from genperf.api import ApiSettings, create_app
from genperf.collectors import HostCollector, NvmlCollector, ProcessPeakMemory
from genperf.config import Settings
from genperf.exporters.prometheus_rules import RuleTiming, rule_files
from genperf.monitor import PerformanceMonitor
from genperf.storage import SqlStore
from genperf.testing import FakeGpu, FakeNvml, wait_until

READ_TOKEN = "prometheus-read-token-0123456789"
WRITE_TOKEN = "e2e-write-token-0123456789abcdef"
NODE = "e2e-node"
GIB = 2**30
# Windows short enough for a test, long enough for a few 1 s scrapes.
TIMING = RuleTiming(window="30s", burst="30s", short="5s", pending="0s")
# NVML clock event reason bits (nvml.h): sw_thermal.
SW_THERMAL = 0x20


class Recorder(BaseHTTPRequestHandler):
    """Alertmanager's webhook receiver: keeps every notification's JSON body."""

    received: list[dict[str, Any]]
    lock: threading.Lock

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with self.lock:
            self.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Stack:
    genperf_url: str
    prometheus_url: str
    alertmanager_url: str
    monitor: PerformanceMonitor
    gpus: list[FakeGpu]
    notifications: list[dict[str, Any]]
    lock: threading.Lock
    logs: dict[str, Path] = field(default_factory=dict)

    def genperf(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.genperf_url,
            headers={"Authorization": f"Bearer {WRITE_TOKEN}"},
            timeout=10,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query; raises with Prometheus's own message when it errors."""
        r = httpx.get(f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise AssertionError(f"{promql!r}: {body.get('errorType')}: {body.get('error')}")
        return list(body["data"]["result"])

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.alertmanager_url}/api/v2/alerts", timeout=10)
        r.raise_for_status()
        return list(r.json())

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.notifications)

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {name}:\n" + path.read_text(errors="replace")[-3000:]
            for name, path in self.logs.items()
        )


def wait_for(
    what: str, check: Callable[[], Any], stack: Stack | None = None, timeout: float = 30.0
) -> Any:
    """Poll ``check`` until it returns something truthy (the servers' own clocks decide when:
    a scrape, an evaluation, a notification), or fail saying what never happened."""
    try:
        return wait_until(check, timeout=timeout, interval=0.2, what=what)
    except AssertionError as exc:
        logs = stack.log_tail() if stack is not None else ""
        pytest.fail(f"{exc} (after {timeout:g} s)\n{logs}")


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def shipped_scrape_config(
    tmp: Path, token: str, target_files: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml with 1 s intervals, ``token`` in a file of its own,
    and ``target_files`` (file name -> file_sd groups) written where its job reads them."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    token_file = tmp / "genperf.token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    (job,) = config["scrape_configs"]
    job["authorization"]["credentials_file"] = str(token_file)
    targets = tmp / "targets"
    targets.mkdir()
    for name, groups in target_files.items():
        (targets / name).write_text(json.dumps(groups))
    job["file_sd_configs"][0]["files"] = [str(targets / "*.json")]
    return dict(config)


def write_config(tmp: Path, config: dict[str, Any]) -> Path:
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def prometheus_config(tmp: Path, genperf_port: int, am_port: int) -> Path:
    """The shipped configuration with this test's ports, token file and 1 s intervals."""
    target = {"targets": [f"127.0.0.1:{genperf_port}"], "labels": {"__genperf_node": NODE}}
    config = shipped_scrape_config(tmp, READ_TOKEN, {"genperf.json": [target]})
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{am_port}"]}
    ]
    return write_config(tmp, config)


def alertmanager_config(tmp: Path, webhook: str) -> Path:
    """deploy/alertmanager/alertmanager.yml with 1 s grouping and receivers posting here."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["route"].update(group_wait="1s", group_interval="1s")
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = webhook
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")  # gone before other modules run: no monitor thread outlives it
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus, alertmanager = tool("prometheus"), tool("prometheus-alertmanager")
    tmp = tmp_path_factory.mktemp("stack")
    settings = Settings(monitoring_interval_seconds=0.5, data_dir=tmp, node_name=NODE)
    gpus = [
        FakeGpu(memory_used_bytes=40 * GIB, memory_total_bytes=80 * GIB, temperature_celsius=60),
        FakeGpu(memory_used_bytes=1 * GIB, memory_total_bytes=80 * GIB, throttle_reasons=0),
    ]
    store = SqlStore(f"sqlite:///{tmp / 'genperf.db'}")
    monitor = PerformanceMonitor(
        settings,
        collectors=[HostCollector(tmp), NvmlCollector(FakeNvml(gpus))],
        store=store,
        process_memory=ProcessPeakMemory(),
    )
    app = create_app(
        settings,
        monitor=monitor,
        api_settings=ApiSettings(api_tokens=(f"read:{READ_TOKEN}", f"write:{WRITE_TOKEN}")),
        environ={},
    )
    genperf_port, prom_port, am_port = free_port(), free_port(), free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=genperf_port, log_level="warning")
    )
    uvicorn_thread = threading.Thread(target=server.run, daemon=True)
    uvicorn_thread.start()

    lock = threading.Lock()
    notifications: list[dict[str, Any]] = []
    handler = type("Handler", (Recorder,), {"received": notifications, "lock": lock})
    recorder = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    recorder_thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    recorder_thread.start()
    webhook = f"http://127.0.0.1:{recorder.server_address[1]}/hook"

    rules = tmp / "rules"
    rules.mkdir()
    for name, text in rule_files(settings, TIMING, source="the e2e test").items():
        (rules / name).write_text(text)
    procs = []
    stack = Stack(
        genperf_url=f"http://127.0.0.1:{genperf_port}",
        prometheus_url=f"http://127.0.0.1:{prom_port}",
        alertmanager_url=f"http://127.0.0.1:{am_port}",
        monitor=monitor,
        gpus=gpus,
        notifications=notifications,
        lock=lock,
        logs={"prometheus": tmp / "prometheus.log", "alertmanager": tmp / "alertmanager.log"},
    )
    try:
        am_config = alertmanager_config(tmp, webhook)
        procs.append(
            _start(
                [
                    alertmanager,
                    f"--config.file={am_config}",
                    f"--storage.path={tmp / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",
                ],
                stack.logs["alertmanager"],
            )
        )
        procs.append(
            _start(
                [
                    prometheus,
                    f"--config.file={prometheus_config(tmp, genperf_port, am_port)}",
                    f"--storage.tsdb.path={tmp / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=1s",
                ],
                stack.logs["prometheus"],
            )
        )
        wait_for("genperf", lambda: server.started, stack)
        wait_for("Alertmanager", lambda: _ready(f"{stack.alertmanager_url}/-/ready"), stack)
        wait_for("Prometheus", lambda: _ready(f"{stack.prometheus_url}/-/ready"), stack)
        yield stack
    finally:
        for proc in procs:
            _stop(proc)
        recorder.shutdown()
        recorder.server_close()
        server.should_exit = True
        uvicorn_thread.join(timeout=15)
        monitor.close()
        store.close()
