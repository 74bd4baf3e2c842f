"""The worker subprocess: one generation under a memory limit (``python -m`` this module).

The parent (:mod:`genperf.generation.isolated`) writes one JSON job to stdin. This process
loads the model inside a monitored task (its own :class:`PerformanceMonitor`, in memory:
the record goes back to the parent, which owns the database), then caps its address space
with ``RLIMIT_AS`` at its current size plus the request's headroom and generates. A generation
that needs more fails for real: torch's allocator raises ("DefaultCPUAllocator: can't allocate
memory"), typically in the VAE decode, and the monitor records the phase and the diagnosis.

Protocol on stdout, one JSON object a line (everything the libraries print goes to stderr):
``{"event": "phase", "name": ...}`` as each phase begins, then
``{"event": "record", "record": TaskRecord.to_dict()}``. Exit status 0: the generation
succeeded; 1: it failed (the record says why); 2: the job could not even start.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import IO, Any


def _protocol_stream() -> IO[str]:
    """Keep the real stdout for the protocol; send everything else written to it to stderr."""
    stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def limit_address_space(headroom_mib: int) -> int | None:
    """RLIMIT_AS = this process's virtual size now + ``headroom_mib``; the limit, or None."""
    try:
        import resource

        with open("/proc/self/status") as status:
            kib = next(int(line.split()[1]) for line in status if line.startswith("VmSize:"))
        limit = kib * 1024 + headroom_mib * (1 << 20)
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, OSError, StopIteration, ValueError):
        return None  # not Linux: the generation runs without the cap
    return limit


def run_job(job: dict[str, Any], send: Any) -> int:
    from genperf.config import Settings
    from genperf.generation.pipelines import generation_kwargs, load_model, prepare_libraries
    from genperf.generation.presets import apply, preset
    from genperf.generation.registry import ModelSpec
    from genperf.generation.request import GenerationRequest
    from genperf.monitor import PerformanceMonitor, TaskHandle
    from genperf.storage import MEMORY_URL, MemoryStore

    request = GenerationRequest(**job["request"])
    spec = ModelSpec(
        model_type=job["spec"]["model_type"],
        path=Path(job["spec"]["path"]),
        load_kwargs=job["spec"]["load_kwargs"],
        call_kwargs=job["spec"]["call_kwargs"],
    )
    settings = Settings(
        data_dir=Path(job["data_dir"]),
        database_url=MEMORY_URL,
        node_name=job.get("node"),
        monitoring_interval_seconds=3600.0,  # no sampling here: the parent samples the host
        enable_gpu_monitoring=False,
    )

    def on_phase(name: str) -> None:
        send({"event": "phase", "name": name})

    prepare_libraries()  # before the task: the imports are this process's cost, not the task's
    monitor = PerformanceMonitor(settings, collectors=[], store=MemoryStore())
    handle: TaskHandle | None = None
    try:
        with request.track(monitor) as handle:
            pipe = load_model(spec, monitor, handle, on_phase=on_phase)
            if request.preset is not None:
                apply(pipe.pipeline, preset(request.preset))
            if request.memory_headroom_mib is not None:
                limit_address_space(request.memory_headroom_mib)
            pipe(**generation_kwargs(request, spec), task=handle)
    except Exception as exc:  # recorded in handle.record, with its phase and diagnosis
        logging.getLogger("genperf.generation").debug("generation failed: %s", type(exc).__name__)
    finally:
        monitor.close()
    if handle is None or handle.record is None:
        return 2
    send({"event": "record", "record": handle.record.to_dict()})
    return 0 if handle.record.success else 1


def main() -> int:
    out = _protocol_stream()

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    job = json.loads(sys.stdin.read())
    return run_job(job, send)


if __name__ == "__main__":
    sys.exit(main())
