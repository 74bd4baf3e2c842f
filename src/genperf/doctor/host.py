"""Host checks against the spec's Hardware Requirements, and the clock.

RAM 8 GB (16 GB recommended), 50 GB free for models, 4 cores (8 recommended): under the
minimum is a failure, under the recommendation a warning.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil

from genperf.doctor.core import Check, Verdict

V = Verdict
GB = 1000**3  # the spec's "GB"
GIB = 1024**3
RAM_MIN_BYTES, RAM_RECOMMENDED_BYTES = 8 * GB, 16 * GB
DISK_MIN_FREE_BYTES = 50 * GB
DISK_CRITICAL_FREE_BYTES = 10 * GB
CORES_MIN, CORES_RECOMMENDED = 4, 8
# Stamps more than this ahead of the clock mean one of the two clocks is wrong.
CLOCK_SKEW = timedelta(minutes=2)
EARLIEST_PLAUSIBLE = datetime(2024, 1, 1, tzinfo=UTC)


def _existing(path: Path) -> Path:
    """The path, or its nearest existing parent (a data dir not made yet still has a disk)."""
    p = path.absolute()
    while not p.exists() and p.parent != p:
        p = p.parent
    return p


def disk_check(name: str, title: str, path: Path) -> Check:
    where = _existing(path)
    usage = shutil.disk_usage(where)
    free_gb = usage.free / GB
    data = {"path": str(path), "free_bytes": usage.free, "total_bytes": usage.total}
    evidence = f"{free_gb:.1f} GB free of {usage.total / GB:.1f} GB at {where}"
    if usage.free < DISK_CRITICAL_FREE_BYTES:
        verdict = V.FAILURE
    elif usage.free < DISK_MIN_FREE_BYTES:
        verdict = V.WARNING
    else:
        return Check(name, title, V.OK, evidence, data=data)
    return Check(
        name,
        title,
        verdict,
        f"{evidence}; the spec asks for {DISK_MIN_FREE_BYTES / GB:.0f} GB free for models",
        "Free space (old checkpoints: huggingface-cli delete-cache) or move the data/model "
        "directory to a larger volume (data_dir, model_dir).",
        data,
    )


def host_checks(data_dir: Path, model_dir: Path | None) -> Iterator[Check]:
    yield disk_check("disk_data", "Disk free for data", data_dir)
    if model_dir is not None and _existing(model_dir) != _existing(data_dir):
        yield disk_check("disk_models", "Disk free for models", model_dir)
    else:
        yield disk_check("disk_models", "Disk free for models", data_dir / "models")
    ram = psutil.virtual_memory().total
    ram_text = f"{ram / GB:.1f} GB of RAM"
    yield _at_least(
        "ram",
        "RAM",
        ram,
        text=ram_text,
        data={"total_bytes": ram},
        minimum=(
            RAM_MIN_BYTES,
            "the spec's minimum is 8 GB",
            "Add RAM: model loads and VAE decodes need host memory.",
        ),
        recommended=(
            RAM_RECOMMENDED_BYTES,
            "16 GB or more is recommended",
            "Add RAM, or load weights memory-mapped and keep one pipeline loaded.",
        ),
    )
    cores = _usable_cores()
    yield _at_least(
        "cpu_cores",
        "CPU cores",
        cores,
        text=f"{cores} usable CPU core(s)",
        data={"cores": cores},
        minimum=(
            CORES_MIN,
            f"the spec's minimum is {CORES_MIN}",
            "Give the service more cores (container CPU limits, cgroup cpusets).",
        ),
        recommended=(
            CORES_RECOMMENDED,
            f"{CORES_RECOMMENDED} or more recommended",
            "More cores feed the GPU and speed up text encoding and decoding on the CPU.",
        ),
    )


# A line of a resource check: (the value under which it applies, why, what to do).
Line = tuple[float, str, str]


def _at_least(
    key: str,
    title: str,
    value: float,
    *,
    text: str,
    data: dict[str, Any],
    minimum: Line,
    recommended: Line,
) -> Check:
    """A failure under the minimum, a warning under the recommended line, else OK."""
    for verdict, (line, why, advice) in ((V.FAILURE, minimum), (V.WARNING, recommended)):
        if value < line:
            return Check(key, title, verdict, f"{text}; {why}", advice, data)
    return Check(key, title, V.OK, text, data=data)


def _usable_cores() -> int:
    """Cores this process may run on (a container's cpuset), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def peer_clock_check(now: datetime, server_time: datetime) -> Check:
    """This machine's clock against a server's (``genperf doctor --url``): either way."""
    skew = (server_time - now).total_seconds()
    data = {"skew_seconds": skew}
    if abs(skew) > CLOCK_SKEW.total_seconds():
        return Check(
            "clock_peer",
            "Clock against the server",
            V.WARNING,
            f"the server's clock is {abs(skew):.0f} s {'ahead of' if skew > 0 else 'behind'} "
            "this machine's: windows such as 'the last hour' differ between them",
            "Synchronise both clocks (chrony, systemd-timesyncd, or the host's NTP).",
            data,
        )
    return Check(
        "clock_peer",
        "Clock against the server",
        V.OK,
        f"within {CLOCK_SKEW.total_seconds():.0f} s of this machine's",
        data=data,
    )


def clock_check(now: datetime, newest_stamp: datetime | None, *, peer: str | None = None) -> Check:
    """The wall clock is plausible and no stored (or peer's) stamp lies in its future.

    Args:
        now: this machine's clock (UTC).
        newest_stamp: the newest sample or task stamp in the database, or the server's clock.
        peer: what ``newest_stamp`` is, for the evidence.
    """
    title = "Clock sanity"
    fix = "Synchronise the clock (chrony, systemd-timesyncd, or the host's NTP)."
    if now < EARLIEST_PLAUSIBLE:
        return Check("clock", title, V.FAILURE, f"the clock reads {now:%Y-%m-%d}", fix)
    if newest_stamp is None:
        return Check("clock", title, V.OK, f"the clock reads {now:%Y-%m-%d %H:%M:%S} UTC")
    ahead = newest_stamp - now
    what = peer or "the newest stored stamp"
    data = {"now": now.isoformat(), "other": newest_stamp.isoformat()}
    if ahead > CLOCK_SKEW:
        return Check(
            "clock",
            title,
            V.WARNING,
            f"{what} ({newest_stamp:%Y-%m-%d %H:%M:%S}) is {ahead.total_seconds():.0f} s ahead "
            "of this clock: times and windows will be off",
            fix,
            data,
        )
    return Check(
        "clock",
        title,
        V.OK,
        f"the clock reads {now:%Y-%m-%d %H:%M:%S} UTC; {what} is not ahead of it",
        data=data,
    )
