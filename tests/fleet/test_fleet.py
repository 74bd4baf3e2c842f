"""A real fleet on one machine: one ``genperf serve --no-worker`` and three ``genperf agent
--worker`` processes with distinct node names, all on one PostgreSQL schema, running real
tiny-wan generations from one queue.

Every request runs exactly once and its task carries the node that ran it; ``genperf nodes``,
the API's /nodes and the dashboard (Chromium) show the three nodes; an agent killed with
SIGKILL mid-generation has its request interrupted in its phase once its lease expires, while
the others carry on; an agent stopped with SIGSTOP is ``down`` within three intervals.

Short intervals and leases; the test waits on states (polling the API and the database),
never on fixed sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, text

from genperf.config import Settings
from genperf.storage.engine import normalise_url
from genperf.testing import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

GENPERF = [sys.executable, "-m", "genperf"]
AGENTS = ("fleet-gpu-1", "fleet-gpu-2", "fleet-gpu-3")
SERVE_NODE = "fleet-api"
INTERVAL = 0.5  # seconds between samples
FLUSH = 0.2  # the writer's flush period: running records (their phase) land this often
LEASE = 5.0  # seconds: renewed every 1.7 s, so a busy 2-core machine does not lose it
REQUESTS = 30
SMALL = {"resolution": "32x32", "steps": 1, "frames": 1}
LONG = {"resolution": "256x256", "steps": 100, "frames": 17}  # seconds of denoising
GEN = "/api/v1/generation/tasks"
PERF = "/api/v1/performance"

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 180.0) -> T:
    """Poll ``probe`` until it returns something truthy (the fleet offers nothing to wait on)."""
    return wait_until(probe, timeout=timeout, interval=0.1, what=what)  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    url: str  # the API
    database_url: str
    env: dict[str, str]
    agents: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: Path = Path()

    def get(self, path: str, **params: Any) -> Any:
        r = httpx.get(self.url + path, params=params, timeout=30)
        r.raise_for_status()
        return r.json()

    def nodes(self) -> dict[str, dict[str, Any]]:
        return {n["node"]: n for n in self.get(f"{PERF}/nodes", time_window_hours=1)["nodes"]}

    def submit(self, prompt: str, size: dict[str, Any]) -> str:
        body = {"model_type": "tiny-wan-t2v", "prompt": prompt, **size}
        r = httpx.post(self.url + GEN, json=body, timeout=30)
        assert r.status_code == 202, r.text
        return str(r.json()["task_id"])

    def sql(self, query: str) -> list[Any]:
        engine = create_engine(normalise_url(self.database_url))
        try:
            with engine.connect() as conn:
                return list(conn.execute(text(query)).all())
        finally:
            engine.dispose()


@pytest.fixture
def model_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in tiny Wan2.2, built once into a data directory the processes share."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    from genperf.generation import TINY_WAN, ModelRegistry

    path = tmp_path_factory.getbasetemp() / "fleet-models"
    ModelRegistry(Settings(data_dir=path)).ensure_ready(TINY_WAN)
    return path


@pytest.fixture
def fleet(postgres_url: str, model_data_dir: Path, tmp_path: Path) -> Iterator[Fleet]:
    port = _free_port()
    env = {
        **os.environ,
        "GENPERF_DATABASE_URL": postgres_url,
        "GENPERF_DATA_DIR": str(model_data_dir),
        "GENPERF_MONITORING_INTERVAL_SECONDS": str(INTERVAL),
        "GENPERF_SAMPLE_FLUSH_SECONDS": str(FLUSH),
        "GENPERF_GENERATION_QUEUE__LEASE_SECONDS": str(LEASE),
        "GENPERF_ENABLE_GPU_MONITORING": "false",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("GENPERF_API_TOKENS", None)
    procs: list[subprocess.Popen[bytes]] = []

    def start(args: list[str], node: str) -> subprocess.Popen[bytes]:
        with (tmp_path / f"{node}.log").open("wb") as log:  # the child keeps its own copy
            proc = subprocess.Popen(
                [*GENPERF, *args],
                env={**env, "GENPERF_NODE_NAME": node},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        return proc

    start(["serve", "--no-worker", "--port", str(port)], SERVE_NODE)
    made = Fleet(f"http://127.0.0.1:{port}", postgres_url, env, logs=tmp_path)
    for node in AGENTS:
        made.agents[node] = start(["agent", "--worker", "--node", node], node)
    try:
        wait_for("the API", lambda: _answers(made.url))
        yield made
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for log in sorted(tmp_path.glob("*.log")):  # shown when the test fails
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _up(fleet: Fleet, names: tuple[str, ...]) -> dict[str, Any] | None:
    nodes = fleet.nodes()
    return nodes if all(nodes.get(n, {}).get("state") == "up" for n in names) else None


def test_a_fleet_of_three_agents_runs_each_request_once_and_survives_a_dead_agent(
    fleet: Fleet,
) -> None:
    nodes = wait_for("three agents sampling", lambda: _up(fleet, AGENTS))
    assert set(AGENTS) <= set(nodes)

    # One long generation; once it is denoising, its agent is killed.
    victim = fleet.submit("a long walk", LONG)

    def denoising() -> dict[str, Any] | None:
        task = fleet.get(f"{GEN}/{victim}")
        metrics = task["metrics"]
        return task if metrics and metrics["current_phase"] == "denoise" else None

    running = wait_for("the long generation to denoise", denoising)
    dead_node = running["node"]
    assert dead_node in AGENTS
    assert running["metrics"]["node"] == dead_node

    ids = [fleet.submit(f"small {n}", SMALL) for n in range(REQUESTS)]
    fleet.agents[dead_node].send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    def interrupted() -> dict[str, Any] | None:
        # The request and then its performance record (a second write, by the same reaper)
        task = fleet.get(f"{GEN}/{victim}")
        done = task["status"] == "interrupted" and task["metrics"]["status"] == "interrupted"
        return task if done else None

    dead = wait_for("the dead agent's request to be interrupted", interrupted)
    reaped_after = time.monotonic() - killed_at
    print(f"interrupted {reaped_after:.1f} s after the kill (lease {LEASE:g} s)")
    assert dead["interrupted_phase"] == "denoise"
    assert dead["metrics"]["status"] == "interrupted"
    assert dead["metrics"]["failed_phase"] == "denoise"
    assert dead_node in dead["error_message"]
    # Reaped at the lease's end, give or take a renewal and the reaper's look (load: 2 cores).
    assert reaped_after < 2 * LEASE + 5, reaped_after

    def all_done() -> list[dict[str, Any]] | None:
        tasks = [fleet.get(f"{GEN}/{task_id}") for task_id in ids]
        return tasks if all(t["status"] == "completed" for t in tasks) else None

    done = wait_for("the 30 small requests", all_done, timeout=600)
    survivors = set(AGENTS) - {dead_node}
    for task in done:
        assert task["node"] in survivors | {dead_node}
        assert task["metrics"]["node"] == task["node"]  # the task carries its node
        assert task["attempts"] == 1

    # Exactly once: one performance record per request, nothing else interrupted or lost.
    runs = fleet.sql("SELECT task_id, node, status FROM generation_tasks")
    per_task: dict[str, list[tuple[str, str]]] = {}
    for task_id, node, status in runs:
        per_task.setdefault(task_id, []).append((node, status))
    assert {t: len(r) for t, r in per_task.items()} == dict.fromkeys([*ids, victim], 1)
    assert sorted(s for rs in per_task.values() for _, s in rs) == sorted(
        ["completed"] * REQUESTS + ["interrupted"]
    )

    # The fleet view: the API, the CLI and the dashboard list the three agents.
    api_nodes = fleet.nodes()
    assert set(AGENTS) <= set(api_nodes)
    assert sum(api_nodes[n]["tasks"] for n in AGENTS) == REQUESTS + 1
    cli = subprocess.run(
        [*GENPERF, "nodes", "--json", "--hours", "1"],
        env=fleet.env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert set(AGENTS) <= {n["node"] for n in json.loads(cli.stdout)["nodes"]}
    _dashboard_lists(fleet.url, AGENTS)

    # A stopped agent stops sampling: its node is down within three intervals (plus the
    # writer's flush period the server allows for).
    paused = sorted(survivors)[0]
    fleet.agents[paused].send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    wait_for(
        f"{paused} to be down",
        lambda: fleet.nodes()[paused]["state"] == "down",
        timeout=60,
    )
    down_after = time.monotonic() - stopped_at
    print(f"{paused} down {down_after:.1f} s after SIGSTOP (3 intervals: {3 * INTERVAL:g} s)")
    assert down_after < 3 * INTERVAL + FLUSH + 3, down_after  # + polling on a loaded machine
    assert fleet.nodes()[sorted(survivors)[1]]["state"] == "up"


def _dashboard_lists(url: str, nodes: tuple[str, ...]) -> None:
    """The dashboard, in Debian's Chromium, has a fleet row for each node."""
    sys.path.insert(0, str(Path(__file__).parent.parent / "web"))
    from web_support import chromium, new_page, open_dashboard, require_browser

    require_browser()
    with chromium() as browser:
        page = new_page(browser)
        page.set_default_timeout(30_000)
        open_dashboard(page, url + "/")
        page.wait_for_function(
            "(n) => n.every((node) => document.querySelector("
            '`#fleet-table tbody tr[data-node="${node}"]`))',
            arg=list(nodes),
        )
        shown = page.eval_on_selector_all(
            "#fleet-table tbody tr", "(rows) => rows.map((r) => r.dataset.node)"
        )
        assert set(nodes) <= set(shown)
        page.context.close()
