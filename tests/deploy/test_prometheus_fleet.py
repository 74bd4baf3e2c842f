"""Prometheus across processes (issue 13): a real Prometheus (Debian's), configured from
deploy/prometheus/prometheus.yml, scrapes one real `genperf serve` and three real
`genperf agent --metrics-port` processes sharing one SQLite database, every target found
through file_sd and scraped with the bearer token; each node's tasks are written by a
service process of that node (tests/deploy/agent_process.py).

Summing the task counter over every target equals the database's finished tasks per status
(and per node and status): no process double counts, none is missing. Each agent's gauges
carry its node label, and agents export no task family.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from agent_process import OUTCOMES, agent_command, service_command
from deploy_support import free_port, tool
from stack_support import _ready, _start, _stop, shipped_scrape_config, wait_for, write_config

from genperf.records import TaskStatus
from genperf.storage import SqlStore, TaskQuery

TOKEN = "fleet-read-token-0123456789abcdef"
API_NODE = "api-host"


@dataclass
class Fleet:
    prometheus_url: str
    api_url: str
    agent_ports: dict[str, int]
    database_url: str
    logs: dict[str, Path]

    def query(self, promql: str) -> list[dict]:
        body = httpx.get(
            f"{self.prometheus_url}/api/v1/query", params={"query": promql}, timeout=10
        ).json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {name}:\n" + path.read_text(errors="replace")[-3000:]
            for name, path in self.logs.items()
            if path.exists()
        )


def _config(tmp: Path, api_port: int, agent_ports: dict[str, int]) -> Path:
    """The shipped scrape configuration with this test's token file, targets and 1 s scrapes."""
    api = {"targets": [f"127.0.0.1:{api_port}"], "labels": {"__genperf_node": API_NODE}}
    agents = [
        {"targets": [f"127.0.0.1:{port}"], "labels": {"__genperf_node": node, "role": "agent"}}
        for node, port in agent_ports.items()
    ]
    config = shipped_scrape_config(tmp, TOKEN, {"api.json": [api], "nodes.json": agents})
    config.pop("rule_files")
    config.pop("alerting")
    return write_config(tmp, config)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    prometheus = tool("prometheus")
    tmp = tmp_path_factory.mktemp("fleet")
    url = f"sqlite:///{tmp / 'fleet.db'}"
    SqlStore(url).close()  # the schema, before four processes open it at once
    logs = {"prometheus": tmp / "prometheus.log", "serve": tmp / "serve.log"}
    procs: list[subprocess.Popen[bytes]] = []
    token_file = tmp / "metrics.token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    try:
        ports = {node: free_port() for node in OUTCOMES}
        for node, port in ports.items():
            data = tmp / node
            data.mkdir()
            with (tmp / f"{node}.log").open("wb") as out:
                command = agent_command(sys.executable, url, node, token_file, data, port)
                procs.append(subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT))
            logs[node] = tmp / f"{node}.log"
        for node, port in ports.items():
            wait_for(f"{node}'s listener", lambda p=port: _scrapable(p), timeout=60)
        for node in ports:
            service = service_command(sys.executable, url, node, tmp / node)
            subprocess.run(service, check=True, capture_output=True, timeout=120)
        total = sum(sum(outcome) for outcome in OUTCOMES.values())
        wait_for(
            "the agents' tasks in the database",
            lambda: sum(_database_counts(url).values()) == total,
            timeout=60,
        )
        api_port, prom_port = free_port(), free_port()
        env = {
            **os.environ,
            "GENPERF_DATABASE_URL": url,
            "GENPERF_NODE_NAME": API_NODE,
            "GENPERF_DATA_DIR": str(tmp / "serve"),
            "GENPERF_API_TOKENS": f"read:{TOKEN}",
        }
        with logs["serve"].open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "genperf", "serve", "--port", str(api_port)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        procs.append(
            _start(
                [
                    prometheus,
                    f"--config.file={_config(tmp, api_port, ports)}",
                    f"--storage.tsdb.path={tmp / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                logs["prometheus"],
            )
        )
        fleet = Fleet(
            f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{api_port}", ports, url, logs
        )
        wait_for("genperf serve", lambda: _ready(f"{fleet.api_url}/readyz"), timeout=60)
        wait_for("Prometheus", lambda: _ready(f"{fleet.prometheus_url}/-/ready"), timeout=60)
        yield fleet
    finally:
        for proc in reversed(procs):
            _stop(proc)


def _scrapable(port: int) -> bool:
    try:
        r = httpx.get(
            f"http://127.0.0.1:{port}/metrics",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=2,
        )
    except httpx.TransportError:
        return False
    return r.status_code == 200


def _database_counts(url: str) -> dict[tuple[str, str], int]:
    """(node, status) -> finished task rows, read from the database itself."""
    store = SqlStore(url)
    try:
        counts: dict[tuple[str, str], int] = {}
        for record in store.query_tasks(TaskQuery(limit=None)):
            if record.status is not TaskStatus.RUNNING:
                key = (record.node, record.status.value)
                counts[key] = counts.get(key, 0) + 1
        return counts
    finally:
        store.close()


def _summed(fleet: Fleet, by: str) -> dict[tuple[str, ...], int]:
    result = fleet.query(f"sum by ({by}) (genperf_tasks_finished_total)")
    keys = [k.strip() for k in by.split(",")]
    return {
        tuple(r["metric"].get(k, "") for k in keys): int(float(r["value"][1]))
        for r in result
        if float(r["value"][1])
    }


def test_every_target_is_scraped_with_the_token(fleet):
    assert httpx.get(f"{fleet.api_url}/metrics", timeout=5).status_code == 401
    port = next(iter(fleet.agent_ports.values()))
    assert httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).status_code == 401
    up = wait_for(
        "four targets up",
        lambda: len(r := fleet.query('up{job="genperf"} == 1')) == 4 and r,
        timeout=60,
    )
    assert {r["metric"]["instance"] for r in up} == {*OUTCOMES, API_NODE}


def test_the_task_counter_summed_over_all_targets_is_the_database(fleet):
    in_db = _database_counts(fleet.database_url)
    assert sum(in_db.values()) == sum(sum(o) for o in OUTCOMES.values())  # 14 tasks
    per_status: dict[tuple[str, ...], int] = {}
    for (_node, status), n in in_db.items():
        per_status[(status,)] = per_status.get((status,), 0) + n

    def equal() -> bool:
        return _summed(fleet, "status") == per_status

    wait_for(f"sum by (status) == {per_status}", equal, timeout=60)
    by_node = {(node, status): n for (node, status), n in in_db.items()}
    assert _summed(fleet, "node, status") == by_node
    # Only the API process exports task families: no agent target has any.
    targets = {r["metric"]["target"] for r in fleet.query("genperf_tasks_finished_total")}
    assert targets == {fleet.api_url.removeprefix("http://")}


def test_each_agents_gauges_carry_its_node(fleet):
    def nodes() -> set[str]:
        return {r["metric"]["node"] for r in fleet.query("genperf_host_ram_used_bytes")}

    wait_for("every process's host gauges", lambda: nodes() == {*OUTCOMES, API_NODE}, timeout=60)
    for node, port in fleet.agent_ports.items():
        (info,) = fleet.query(f'genperf_info{{node="{node}"}}')
        assert info["metric"]["target"] == f"127.0.0.1:{port}"
        assert info["metric"]["instance"] == node  # instance named after the node
        # the agent's own monitor health: it samples and stores its samples
        written = f'genperf_monitor_samples_written_total{{node="{node}"}} > 0'
        wait_for(f"{node}'s stored samples", lambda q=written: bool(fleet.query(q)), timeout=60)
