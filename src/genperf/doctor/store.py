"""Store and monitor checks: the database reachable, writable and at the schema head; the
sampler running with recent samples stored; the store writer's queue and dropped counters.
The spec's "performance data missing: monitor initialised, integration errors, schema up to date".

The doctor never creates or migrates a database: it looks.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from genperf.config import Settings, redact_url
from genperf.doctor.core import Check, Verdict

V = Verdict
# A sample older than this many intervals (plus a margin) means nobody is sampling.
STALE_INTERVALS = 3


@dataclass
class StoreFindings:
    """What the store checks learnt that others need (the clock check's newest stamp)."""

    newest_sample_at: datetime | None = None


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None: another database, or in memory)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def database_checks(settings: Settings, found: StoreFindings) -> Iterator[Check]:
    from sqlalchemy import func, select, text

    from genperf.storage.engine import make_engine
    from genperf.storage.migrate import current_revision, head_revision
    from genperf.storage.schema import system_samples

    url = settings.resolved_database_url
    shown = redact_url(url)
    file = _sqlite_file(url)
    if file is not None and not file.exists():
        yield Check(
            "database_reachable",
            "Database reachable",
            V.WARNING,
            f"no database yet at {file}: it is made when a monitor first starts",
            "Start the service (genperf serve) or run a monitored generation.",
            {"url": shown},
        )
        return
    engine = make_engine(url, {"connect_args": _short_timeouts(url)})
    try:
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            yield Check(
                "database_reachable",
                "Database reachable",
                V.FAILURE,
                f"{shown}: {_one_line(exc)}",
                "Check database_url, that the server runs and accepts this user, and the "
                "network between them.",
                {"url": shown},
            )
            return
        yield Check("database_reachable", "Database reachable", V.OK, shown, data={"url": shown})
        try:
            with engine.connect() as conn, conn.begin() as tx:
                # DDL in a transaction that is rolled back: needs the right to write, leaves
                # nothing (SQLite and PostgreSQL both roll DDL back).
                conn.execute(text("CREATE TABLE genperf_doctor_probe (x INTEGER)"))
                tx.rollback()
        except Exception as exc:
            yield Check(
                "database_writable",
                "Database writable",
                V.FAILURE,
                f"{shown}: {_one_line(exc)}",
                "Give the service's user write access (file and directory permissions for "
                "SQLite; CREATE/INSERT grants on PostgreSQL), and check the disk is not full "
                "or mounted read-only.",
            )
        else:
            yield Check(
                "database_writable",
                "Database writable",
                V.OK,
                "a write transaction succeeds (rolled back)",
            )
        with engine.connect() as conn:
            current = current_revision(conn)
        head = head_revision()
        data = {"current": current, "head": head}
        if current == head:
            yield Check("database_schema", "Schema at head", V.OK, f"at revision {head}", data=data)
        elif current is None:
            yield Check(
                "database_schema",
                "Schema at head",
                V.WARNING,
                f"genperf's tables are not there yet (head is {head})",
                "They are made when the monitor first opens the database (genperf serve).",
                data,
            )
        else:
            yield Check(
                "database_schema",
                "Schema at head",
                V.WARNING,
                f"at revision {current}, this genperf's head is {head}",
                "Start genperf serve (or any monitor) with this version: it migrates at "
                "start; a revision this genperf does not know means a newer genperf wrote it.",
                data,
            )
        if current is None:
            return
        with engine.connect() as conn:
            found.newest_sample_at = conn.execute(
                select(func.max(system_samples.c.taken_at))
            ).scalar()
    finally:
        engine.dispose()


def _short_timeouts(url: str) -> dict[str, Any]:
    if url.startswith("postgresql"):
        return {"connect_timeout": 5}
    return {"timeout": 2.0}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def samples_check(settings: Settings, found: StoreFindings, now: datetime) -> Check:
    """Recent samples in the database: someone is sampling this database."""
    title = "Recent samples stored"
    newest = found.newest_sample_at
    fresh = STALE_INTERVALS * settings.monitoring_interval_seconds
    fresh += settings.sample_write_delay_seconds()  # samples are stored in batches
    fresh += 5.0
    if newest is None:
        return Check(
            "recent_samples",
            title,
            V.WARNING,
            "no system sample in the database",
            "Start the monitor (genperf serve, or PerformanceMonitor.start() in the service).",
        )
    age = max(0.0, (now - newest).total_seconds())
    data = {"newest_sample_at": newest.isoformat(), "age_seconds": age}
    if age > fresh:
        return Check(
            "recent_samples",
            title,
            V.WARNING,
            f"the newest sample is {age:.0f} s old (expected within {fresh:.0f} s)",
            "The monitor is not running or cannot write: see genperf status and the service's log.",
            data,
        )
    return Check("recent_samples", title, V.OK, f"the newest sample is {age:.0f} s old", data=data)


def monitor_checks(
    settings: Settings,
    running: bool | None,
    stats: Mapping[str, float] | None,
    sample_age: float | None,
) -> Iterator[Check]:
    """The sampler and the store writer of a monitor in this process (the server's).

    Args:
        running: whether its sampler runs; None when no monitor is in this process.
        stats: its ``self_stats()``.
        sample_age: seconds since its newest sample.
    """
    if running is None or stats is None:
        for name, title in (("sampler", "Sampler running"), ("store_queue", "Store queue")):
            yield Check(
                name,
                title,
                V.NOT_AVAILABLE,
                "not available: no monitor runs in this command (recent samples above tell "
                "whether one runs elsewhere)",
                "Ask the running server: genperf doctor --url http://127.0.0.1:8000",
            )
        return
    interval = settings.monitoring_interval_seconds
    if not running:
        yield Check(
            "sampler",
            "Sampler running",
            V.FAILURE,
            "the monitor's sampler is stopped",
            "Restart the service; check its log for the reason it stopped.",
        )
    elif sample_age is not None and sample_age > STALE_INTERVALS * interval + 5:
        yield Check(
            "sampler",
            "Sampler running",
            V.WARNING,
            f"running, but its newest sample is {sample_age:.0f} s old (interval {interval:g} s)",
            "The sampler is stalled: a collector may hang (NVML, a network disk).",
        )
    elif int(stats.get("collector_errors", 0)):
        yield Check(
            "sampler",
            "Sampler running",
            V.WARNING,
            f"running, but its collectors failed {int(stats['collector_errors'])} time(s): "
            "some readings are missing",
            "See the service's log for the collector (psutil, NVML) that fails and why.",
        )
    else:
        age = "" if sample_age is None else f", newest sample {sample_age:.1f} s old"
        yield Check(
            "sampler",
            "Sampler running",
            V.OK,
            f"running every {interval:g} s{age}, "
            f"{int(stats.get('samples_taken', 0))} samples taken",
        )
    pending = int(stats.get("tasks_pending", 0))
    dropped_t = int(stats.get("tasks_dropped", 0))
    dropped_s = int(stats.get("samples_dropped", 0))
    errors = int(stats.get("store_errors", 0))
    bound = settings.pending_task_queue_size
    evidence = (
        f"{pending} of {bound} task(s) waiting to be written; dropped: {dropped_t} task(s), "
        f"{dropped_s} sample(s); {errors} store error(s)"
    )
    data = {
        "tasks_pending": pending,
        "queue_bound": bound,
        "tasks_dropped": dropped_t,
        "samples_dropped": dropped_s,
        "store_errors": errors,
    }
    if dropped_t or dropped_s or errors or pending >= bound // 2:
        yield Check(
            "store_queue",
            "Store queue",
            V.WARNING,
            evidence,
            "The database is slow or unavailable: check it (database checks above) and "
            "the service's log; raise pending_task_queue_size for longer outages.",
            data,
        )
    else:
        yield Check("store_queue", "Store queue", V.OK, evidence, data=data)
