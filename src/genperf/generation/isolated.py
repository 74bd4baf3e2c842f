"""Running one request in a worker subprocess, under a memory limit, monitored from here.

Why a subprocess: a memory limit (``RLIMIT_AS``) applies to a whole process, and a generation
that runs out of memory must not take the service with it. Design, the simplest that holds:

1. This process opens the monitored task (so it shows as running, with host samples, from the
   start) and starts ``python -m genperf.generation.child`` with the job on stdin.
2. The child loads the model and generates through the monitored pipeline with a monitor of
   its own, in memory (phases, steps, its own peak RSS, optimisations, and on failure the
   real exception's diagnosis), then sends the completed record back on stdout as JSON. It
   needs no database access, so it works with any store.
3. This process copies the child's measurements into its task and completes it with the
   child's outcome; the monitor diagnoses the failure from the child's error text, category
   and phase. If the child dies without a record (killed: the OOM killer's SIGKILL, or the
   time limit), the task fails in the last phase the child announced, with the exit status
   in the error ("exit code 137" is diagnosed as host out-of-memory).

The child pays for its own imports (torch and diffusers, about 3 s) and model load; the
record's generation time is the child's task (load and generation), not the process start.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import IO, Any

from genperf.generation.registry import ModelRegistry
from genperf.generation.request import GenerationRequest
from genperf.generation.runner import OnRun
from genperf.monitor import PerformanceMonitor
from genperf.records import UPDATABLE_FIELDS, TaskRecord

logger = logging.getLogger("genperf.generation")

DEFAULT_TIMEOUT_SECONDS = 600.0
_STDERR_TAIL = 4000

# What the child measured that this process cannot: copied into the parent's task.
_CHILD_FIELDS = (
    "generation_time_seconds",
    "model_load_time_seconds",
    "weights_memory_mapped",
    "phases",
    "step_times_seconds",
    "step_experts",
    "warmup_step_seconds",
    "peak_process_rss_mb",
    "peak_vram_usage_mb",
    "peak_vram_reserved_mb",
    "optimizations_applied",
)


@dataclass
class ChildOutcome:
    """What came back from one worker subprocess."""

    returncode: int | None = None
    record: dict[str, Any] | None = None
    phases: list[str] = field(default_factory=list)
    stderr_tail: str = ""
    timed_out: bool = False
    timeout_seconds: float = 0.0

    @property
    def last_phase(self) -> str | None:
        return self.phases[-1] if self.phases else None

    def failure(self) -> tuple[str, str | None, str | None]:
        """(error text, error_category or None, failed phase) of a failed run."""
        if self.record is not None:
            return (
                self.record.get("error_message") or "the generation failed",
                self.record.get("error_category"),
                self.record.get("failed_phase"),
            )
        if self.timed_out:
            text = (
                f"TimeoutError: the worker subprocess ran past its {self.timeout_seconds:g} s "
                "limit and was stopped"
            )
            return text, None, self.last_phase
        rc = self.returncode
        if rc is not None and rc < 0:
            name = _signal_name(-rc)
            text = f"the worker subprocess was killed by {name} (exit code {128 - rc})"
        else:
            text = f"the worker subprocess exited with status {rc} without a result"
        if self.stderr_tail:
            text += f"; its last output: {self.stderr_tail[-1000:]}"
        return text, None, self.last_phase


class IsolatedRunner:
    """Runs a request in a worker subprocess; its record is completed in ``monitor``."""

    def __init__(
        self,
        monitor: PerformanceMonitor,
        registry: ModelRegistry,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        python: str = sys.executable,
    ) -> None:
        self.monitor = monitor
        self.registry = registry
        self.timeout_seconds = timeout_seconds
        self.python = python

    def run(
        self, request: GenerationRequest, on_run: OnRun, *, time_limit_seconds: float | None = None
    ) -> TaskRecord:
        """Generate in a worker subprocess, killed past ``time_limit_seconds`` (default: the
        runner's ``timeout_seconds``); returns the completed record (failed or not)."""
        timeout = self.timeout_seconds if time_limit_seconds is None else time_limit_seconds
        spec = self.registry.ensure_ready(request.model_type)
        monitor = self.monitor
        started = monitor.start_task_monitoring(
            request.task_id,
            request.model_type,
            request.resolution,
            request.steps,
            runs_in="this_host",  # the child's own memory comes back in its record
            frames=request.frames,
        )
        on_run(started.run_id)
        job = {
            "request": asdict(request),
            "spec": {
                "model_type": spec.model_type,
                "path": str(spec.path),
                "load_kwargs": dict(spec.load_kwargs),
                "call_kwargs": dict(spec.call_kwargs),
            },
            "data_dir": str(monitor.settings.data_dir),
            "node": monitor.node,
        }
        try:
            outcome = run_child(job, timeout, python=self.python)
        except Exception as exc:
            return monitor.complete_task_monitoring(request.task_id, False, exc)
        if outcome.record is not None:
            monitor.update_task_metrics(request.task_id, **child_fields(outcome.record))
            if outcome.record.get("status") == "completed":
                return monitor.complete_task_monitoring(request.task_id, True)
        error, category, phase = outcome.failure()
        return monitor.complete_task_monitoring(
            request.task_id, False, error, error_category=category, failed_phase=phase
        )


def child_fields(record: dict[str, Any]) -> dict[str, Any]:
    """The child's measurements that this genperf's records can hold, None values left out."""
    return {
        name: record[name]
        for name in _CHILD_FIELDS
        if name in UPDATABLE_FIELDS and record.get(name) is not None
    }


def run_child(
    job: dict[str, Any], timeout_seconds: float, *, python: str = sys.executable
) -> ChildOutcome:
    """Start the worker subprocess on ``job`` and collect what it sends until it exits."""
    outcome = ChildOutcome(timeout_seconds=timeout_seconds)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [python, "-m", "genperf.generation.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        reader = threading.Thread(
            target=_read_events, args=(proc.stdout, outcome), name="genperf-child-reader"
        )
        reader.start()
        try:
            proc.stdin.write(json.dumps(job).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass  # it died at once; its status and stderr say why
        try:
            outcome.returncode = proc.wait(timeout_seconds)
        except subprocess.TimeoutExpired:
            outcome.timed_out = True
            proc.kill()
            outcome.returncode = proc.wait()
        reader.join(10.0)
        proc.stdout.close()
        stderr.seek(0, os.SEEK_END)
        stderr.seek(max(0, stderr.tell() - _STDERR_TAIL))
        outcome.stderr_tail = stderr.read().decode("utf-8", "replace").strip()
    if outcome.record is None:
        logger.warning(
            "generation subprocess for %s ended (status %s) without a record: %s",
            job["request"]["task_id"],
            outcome.returncode,
            outcome.stderr_tail[-300:],
        )
    return outcome


def _read_events(stream: IO[bytes], outcome: ChildOutcome) -> None:
    for message in _messages(stream):
        if message.get("event") == "phase" and isinstance(message.get("name"), str):
            outcome.phases.append(message["name"])
        elif message.get("event") == "record" and isinstance(message.get("record"), dict):
            outcome.record = message["record"]


def _messages(stream: Iterable[bytes]) -> Iterable[dict[str, Any]]:
    for line in stream:
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            yield message


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
