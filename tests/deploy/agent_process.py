"""The fleet of the Prometheus tests: each node runs the real ``genperf agent`` (its monitor
and its metrics listener), and a generation service on that node, another process, writes the
node's finished tasks to the shared database through its own PerformanceMonitor and exits.

Run as a script: ``python agent_process.py DATABASE_URL NODE DATA_DIR`` writes NODE's tasks
(:data:`OUTCOMES`) and one still running, then exits.
"""

from __future__ import annotations

import sys
from pathlib import Path

from genperf.collectors import HostCollector
from genperf.config import Settings
from genperf.monitor import PerformanceMonitor

# Per node: (completed, failed with an out-of-memory, failed for another reason)
OUTCOMES = {"agent-1": (3, 1, 0), "agent-2": (2, 0, 1), "agent-3": (4, 2, 1)}
INTERVAL_SECONDS = 0.5


def agent_command(
    python: str, url: str, node: str, token_file: Path, data_dir: Path, port: int
) -> list[str]:
    """The command line of one node's agent: ``genperf agent`` with its metrics listener."""
    settings = {
        "GENPERF_DATABASE_URL": url,
        "GENPERF_DATA_DIR": str(data_dir),
        "GENPERF_MONITORING_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
    }
    return [
        "env",
        *(f"{key}={value}" for key, value in settings.items()),
        python,
        "-m",
        "genperf",
        "agent",
        "--node",
        node,
        "--metrics-port",
        str(port),
        "--metrics-token-file",
        str(token_file),
    ]


def service_command(python: str, url: str, node: str, data_dir: Path) -> list[str]:
    """The command line of the service that writes ``node``'s tasks and exits."""
    return [python, str(Path(__file__)), url, node, str(data_dir)]


def main() -> None:
    url, node, data_dir = sys.argv[1:4]
    settings = Settings(
        database_url=url,
        node_name=node,
        data_dir=Path(data_dir),
        monitoring_interval_seconds=INTERVAL_SECONDS,
    )
    with PerformanceMonitor(settings, collectors=[HostCollector(Path(data_dir))]) as monitor:
        completed, oom, other = OUTCOMES.get(node, (1, 0, 0))
        for i in range(completed):
            with monitor.track(f"{node}-ok-{i}", model_type="t2v-A14B", resolution="1280x720"):
                pass
        for i in range(oom):
            monitor.start_task_monitoring(f"{node}-oom-{i}", "t2v-A14B")
            monitor.complete_task_monitoring(f"{node}-oom-{i}", False, "CUDA out of memory")
        for i in range(other):
            monitor.start_task_monitoring(f"{node}-bad-{i}", "t2v-A14B")
            monitor.complete_task_monitoring(f"{node}-bad-{i}", False, "invalid prompt")
        monitor.start_task_monitoring(f"{node}-running", "t2v-A14B")  # running: not finished
        monitor.flush()


if __name__ == "__main__":
    main()
