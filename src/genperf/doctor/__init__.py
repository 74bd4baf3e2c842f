"""``genperf doctor``: the spec's Troubleshooting and Hardware Requirements as checks.

Each check has a verdict (ok, not_available, warning, failure), the evidence and the fix;
:func:`run_doctor` runs them all and never raises. The exit code is 0 when every check is ok
or not available, 1 with warnings, 2 with failures. A running server answers the same checks
with its own monitor's sampler and queue (``GET /api/v1/doctor``).

    gpu.py     NVML loadable, driver, GPUs and their fields; torch, CUDA build and availability,
               torch's CUDA against the driver's
    store.py   database reachable, writable, at the schema head; recent samples; the sampler;
               the store queue and dropped counters
    host.py    disk free (data, models), RAM and cores against the spec, the clock
    models.py  each model directory readable without loading weights
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from genperf.config import Settings
from genperf.doctor.core import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_WARNINGS,
    Check,
    DoctorReport,
    Verdict,
    guarded,
)
from genperf.doctor.gpu import nvml_checks, torch_checks
from genperf.doctor.host import clock_check, host_checks
from genperf.doctor.models import find_model_dirs, model_checks
from genperf.doctor.store import StoreFindings, database_checks, monitor_checks, samples_check
from genperf.records import utc_now


def run_doctor(
    settings: Settings,
    *,
    nvml: Any = None,
    torch: Any = None,
    model_dirs: Iterable[Path] = (),
    monitor_running: bool | None = None,
    monitor_stats: Mapping[str, float] | None = None,
    sample_age_seconds: float | None = None,
    now: datetime | None = None,
    where: str = "local",
) -> DoctorReport:
    """Every check, in order. Never raises: a check that breaks is reported as a failure.

    Args:
        settings: what to check (database, data and model dirs, GPU monitoring switch).
        nvml, torch: stand-ins for pynvml and torch (tests); None imports the real ones.
        model_dirs: model directories to check besides those found under ``data_dir/models``
            and ``model_dir``.
        monitor_running, monitor_stats, sample_age_seconds: the monitor of this process (the
            server's), when there is one.
        now: the clock (UTC).
    """
    now = now or utc_now()
    checks: list[Check] = []
    nvml_found = guarded(
        "nvml",
        "NVML loadable",
        lambda: nvml_checks(nvml, enabled=settings.enable_gpu_monitoring),
    )
    checks += nvml_found
    driver = next((c for c in nvml_found if c.name == "nvml_driver"), None)
    gpus = next((c for c in nvml_found if c.name == "gpus"), None)
    checks += guarded(
        "torch",
        "PyTorch installed",
        lambda: torch_checks(
            torch,
            driver_cuda=driver.data.get("cuda_driver_version") if driver else None,
            nvml_gpus=int(gpus.data.get("count", 0)) if gpus else 0,
        ),
    )
    found = StoreFindings()
    checks += guarded(
        "database_reachable", "Database reachable", lambda: database_checks(settings, found)
    )
    checks += guarded(
        "recent_samples", "Recent samples stored", lambda: [samples_check(settings, found, now)]
    )
    checks += guarded(
        "sampler",
        "Sampler running",
        lambda: monitor_checks(settings, monitor_running, monitor_stats, sample_age_seconds),
    )
    checks += guarded(
        "disk_data", "Host resources", lambda: host_checks(settings.data_dir, settings.model_dir)
    )
    checks += guarded("clock", "Clock sanity", lambda: [clock_check(now, found.newest_sample_at)])
    dirs = [*model_dirs, *find_model_dirs(settings.data_dir / "models", settings.model_dir)]
    checks += guarded(
        "models", "Model directories", lambda: model_checks(list(dict.fromkeys(dirs)))
    )
    return DoctorReport(
        checks=tuple(checks),
        generated_at=now,
        node=settings.node_name or socket.gethostname(),
        where=where,
    )


__all__ = [
    "EXIT_FAILURES",
    "EXIT_OK",
    "EXIT_WARNINGS",
    "Check",
    "DoctorReport",
    "Verdict",
    "run_doctor",
]
