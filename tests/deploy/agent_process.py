"""An agent-like process for the fleet tests, until `genperf agent` exists: a real
PerformanceMonitor (real psutil sampler, real store writer) of one node against the shared
database, a few finished tasks, and its own metrics on ``serve_process_metrics``.

Run: ``python agent_process.py DATABASE_URL NODE TOKEN DATA_DIR PORT``. It writes its tasks,
then serves its metrics on 127.0.0.1:PORT until SIGTERM. The tests start it through
:func:`agent_command` only and wait for what any agent shows (its listener answering, its
tasks in the database), so swapping it for ``genperf agent --node X --metrics-port P`` is a
change in that one function.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

from genperf.collectors import HostCollector
from genperf.config import Settings
from genperf.exporters.process_metrics import serve_process_metrics
from genperf.monitor import PerformanceMonitor

# Per node: (completed, failed with an out-of-memory, failed for another reason)
OUTCOMES = {"agent-1": (3, 1, 0), "agent-2": (2, 0, 1), "agent-3": (4, 2, 1)}


def agent_command(
    python: str, url: str, node: str, token: str, data_dir: Path, port: int
) -> list[str]:
    """The command line of one agent (the one place to swap for `genperf agent`)."""
    return [python, str(Path(__file__)), url, node, token, str(data_dir), str(port)]


def main() -> None:
    url, node, token, data_dir, port = sys.argv[1:6]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = Settings(
        database_url=url, node_name=node, data_dir=Path(data_dir), monitoring_interval_seconds=0.5
    )
    monitor = PerformanceMonitor(settings, collectors=[HostCollector(Path(data_dir))])
    monitor.start()
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
    monitor.start_task_monitoring(f"{node}-running", "t2v-A14B")  # still running: not finished
    monitor.flush()
    listener = serve_process_metrics(monitor, "127.0.0.1", int(port), token)
    try:
        stop.wait()
    finally:
        listener.close()
        monitor.close()


if __name__ == "__main__":
    main()
