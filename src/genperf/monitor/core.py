"""PerformanceMonitor: the spec's API, tying collectors, sampler, tracker and store together.

Typical use in a generation service::

    monitor = PerformanceMonitor()
    with monitor.track(task_id, model_type="t2v-A14B", resolution="1280x720", steps=40) as task:
        with task.phase("model_load"):
            pipe = load()
        task.update(optimizations_applied=["dtype:bf16", "vae_tiling"])
        with task.phase("denoise"):
            latents = denoise(pipe)

or the spec's explicit calls ``start_task_monitoring`` / ``update_task_metrics`` /
``complete_task_monitoring``. Caller mistakes (an unknown task id or metric name) raise;
anything that goes wrong inside the monitor itself is logged and counted, never raised.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psutil

from genperf.collectors import (
    Collector,
    ProcessPeakMemory,
    TorchMemoryProbe,
    default_collectors,
    gpu_monitoring_state,
)
from genperf.config import Settings, load_settings
from genperf.errors import StoreUnavailableError, TaskStateError
from genperf.monitor.build import record_builder
from genperf.monitor.fields import check_text, coerce_fields
from genperf.monitor.predictor import HistoryPredictor
from genperf.monitor.sampler import Sampler
from genperf.monitor.tracker import RunsIn, Tracker, build_task_record, started_fields
from genperf.monitor.writer import StoreWriter
from genperf.records import (
    MIB,
    TASK_FIELDS,
    CompletedTask,
    Durability,
    ErrorCategory,
    SystemSample,
    TaskRecord,
    TaskStatus,
    resolution_class,
    resolution_label,
    utc_now,
)
from genperf.sinks import Sink, build_sinks
from genperf.storage.base import Store, instance_prefix
from genperf.units import count_of

if TYPE_CHECKING:
    from genperf.prediction import Prediction

logger = logging.getLogger("genperf.monitor")

Resolution = str | Sequence[int] | Mapping[str, int]

_build_completed = record_builder(CompletedTask)


@dataclass(frozen=True, slots=True)
class ActiveTask:
    """A task in progress: its record so far and the phase it is in now."""

    record: TaskRecord
    phase: str | None


class TaskHandle:
    """What ``monitor.track(...)`` yields: phases and metric updates for one task."""

    def __init__(self, monitor: PerformanceMonitor, task_id: str) -> None:
        self.monitor = monitor
        self.task_id = task_id
        self.record: CompletedTask | None = None  # the completed record, once the block exits

    def phase(self, name: str) -> Any:
        """``with task.phase("denoise"):`` attributes time and peaks to a named phase."""
        return self.monitor.phase(self.task_id, name)

    def update(self, **fields: Any) -> None:
        self.monitor.update_task_metrics(self.task_id, **fields)


class PerformanceMonitor:
    """Measures every generation and keeps it.

    Args:
        settings: defaults to :func:`genperf.config.load_settings` (file + environment).
        collectors: what the sampler reads; defaults to host (psutil) and, when enabled, NVML.
        store: where records go; defaults to the SQL database of ``settings``.
        clock: monotonic seconds, for durations.
        wall_clock: aware UTC datetimes, for stamps.
        torch_probe / process_memory: exact peak counters (torch allocator, VmHWM).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        collectors: Sequence[Collector] | None = None,
        store: Store | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = utc_now,
        torch_probe: TorchMemoryProbe | None = None,
        process_memory: ProcessPeakMemory | None = None,
    ) -> None:
        self.settings = settings if settings is not None else load_settings()
        self.node = self.settings.node_name or socket.gethostname()
        self.gpu_index = self.settings.gpu_index
        if self.gpu_index is None:
            self.gpu_index = visible_gpu_index()
        self.instance = _instance_id(self.node)
        self._clock = clock
        self._wall_clock = wall_clock
        self._torch = torch_probe if torch_probe is not None else TorchMemoryProbe()
        self._rss_peak = (
            process_memory
            if process_memory is not None
            else ProcessPeakMemory(reset_kernel_peak=self.settings.reset_peak_rss)
        )
        self._tracker = Tracker()
        s = self.settings
        self._writer = StoreWriter(
            (lambda: store) if store is not None else self._open_default_store,
            flush_seconds=s.sample_flush_seconds,
            samples_per_write=s.samples_per_write,
            max_sample_wait_seconds=s.sample_write_delay_seconds(),
            max_pending_tasks=s.pending_task_queue_size,
            retention=timedelta(hours=s.sample_retention_hours),
            wall_clock=wall_clock,
            owns_store=store is None,
            # A database down at start: look for interrupted tasks once it is back.
            on_open=self._on_store_open,
        )
        self._sampler = Sampler(
            collectors if collectors is not None else default_collectors(s),
            s.monitoring_interval_seconds,
            self._on_sample,
            node=self.node,
            history_size=s.max_history_size,
            clock=clock,
            wall_clock=wall_clock,
        )
        self._lifecycle = threading.Lock()
        self._started = False
        self._recovered = False
        self._recover_lock = threading.Lock()
        self._overhead_seconds = 0.0  # time spent inside the task API: the caller's cost
        self._listeners: list[Callable[[TaskRecord], None]] = []
        # Live sinks (InfluxDB, Elasticsearch, OTLP, JSON log) the settings ask for: each is
        # offered every finished task and sample, and sends from a thread of its own.
        self.sinks: list[Sink] = build_sinks(s, node=self.node)
        self._listeners.extend(sink.offer_task for sink in self.sinks)
        self.predictor = HistoryPredictor()  # fits of the store's history, kept until it grows
        logger.debug(
            "monitor %s created: interval %.3fs, database %s",
            self.instance,
            s.monitoring_interval_seconds,
            s.safe_dict()["database_url"],
        )

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start sampling and the store writer; finds tasks a dead process left running.
        Idempotent; the task API calls it for you."""
        with self._lifecycle:
            if self._started:
                return
            self._started = True
            self._writer.start()
            for sink in self.sinks:
                sink.start()
            self._sampler.start()
            _running_monitors.add(self)
        self._record_lifecycle(started=True)
        self.recover_interrupted()

    def stop(self) -> None:
        """Stop sampling and flush what is buffered. Idempotent; returns within one interval."""
        with self._lifecycle:
            if not self._started:
                return
            self._started = False
        self._sampler.stop()
        self._record_lifecycle(started=False)
        self._writer.stop()

    def close(self) -> None:
        """Stop, flush and release the database (unless the caller passed the store in) and
        the live sinks (each sends what it holds first, for at most ``sink_timeout_seconds``)."""
        self.stop()
        self._writer.close()
        self._close_sinks()

    def __enter__(self) -> PerformanceMonitor:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._started

    def gpu_monitoring(self) -> tuple[str, str | None]:
        """("on", None), or ("off" | "unavailable", why): for status lines and the doctor."""
        return gpu_monitoring_state(self.settings, self._sampler.collectors)

    # --- the spec's task API -------------------------------------------------------------

    def start_task_monitoring(
        self,
        task_id: str,
        model_type: str,
        resolution: Resolution = "720p",
        steps: int | None = None,
        *,
        runs_in: RunsIn = "this_process",
        node: str | None = None,
        **fields: Any,
    ) -> TaskRecord:
        """Begin measuring a generation; returns the task's record so far.

        ``runs_in`` says where the generation runs, and so what this process's samples tell
        about it: "this_process" (everything), "this_host" (another process on this machine:
        host and GPU readings only) or "elsewhere" (none; the caller reports its metrics).
        ``node`` is the node it runs on (default: this monitor's); ``gpu_index`` (a field)
        defaults to this monitor's GPU where known.

        Raises:
            TaskStateError: this task id is already being monitored.
            UnknownFieldError / InvalidFieldValueError: a bad extra metric.
        """
        began = time.perf_counter()
        task_id = check_text("task_id", str(task_id))
        model_type = check_text("model_type", str(model_type))
        label = check_text("resolution", resolution_label(resolution))
        if self.gpu_index is not None and "gpu_index" not in fields:
            fields["gpu_index"] = self.gpu_index
        extra = coerce_fields({"steps": steps, **fields} if steps is not None else fields)
        self.start()
        start = started_fields(
            run_id=_run_id(),
            task_id=task_id,
            node=self.node if node is None else check_text("node", str(node)),
            model_type=model_type,
            resolution=label,
            resolution_class=_resolution_class(resolution),
            steps=steps,
            started_at=self._wall_clock(),
            monitor_instance=self.instance,
        )
        if runs_in == "this_process":  # a task running alone here is about to lose that
            self._harvest_exclusive_peaks()
        start_t = self._clock()
        task = self._tracker.open(start, start_t, runs_in, extra)
        if task.exclusive:
            self._reset_peaks()
        record = self._tracker.snapshot(task_id, start_t)
        self._writer.save_task_later(record)
        logger.debug(
            "task %s started: %s %s, %s steps", task_id, model_type, record.resolution_class, steps
        )
        self._overhead_seconds += time.perf_counter() - began
        return record

    def update_task_metrics(self, task_id: str, **fields: Any) -> None:
        """Set metrics of a running task by name (model_load_time_seconds, peak_vram_usage_mb,
        optimizations_applied, ...).

        Raises:
            UnknownTaskError: no running task has this id.
            TaskStateError: the task is already complete.
            UnknownFieldError / InvalidFieldValueError: naming the bad field.
        """
        self._tracker.update(str(task_id), coerce_fields(fields))
        logger.debug("task %s updated: %s", task_id, ", ".join(sorted(fields)))

    def complete_task_monitoring(
        self,
        task_id: str,
        success: bool = True,
        error: BaseException | str | None = None,
        *,
        error_category: str | ErrorCategory | None = None,
        failed_phase: str | None = None,
    ) -> CompletedTask:
        """Finish a task; returns its completed record and whether it is stored.

        ``record.durable`` is True when the record is committed to the database (it survives
        a kill -9). When the database is down, locked, stalled or full it is False and
        ``record.durability`` is ``queued``: the record waits in memory and is written when the
        database is back (a kill -9 before then loses it), or ``refused``: the database
        refuses it for good and it is dropped. Either way the call never raises for it.

        A failure is diagnosed: error_category from the exception (or the one given), the
        phase it failed in, and recovery suggestions for that category and phase.

        Raises:
            UnknownTaskError / TaskStateError: no running task has this id.
        """
        began = time.perf_counter()
        task_id = str(task_id)
        if self._tracker.is_exclusive(task_id):
            self._harvest_peaks(task_id, reset=False)
        # Phases left open by the caller end with the task.
        task = self._tracker.finish(task_id, self._clock(), failed=not success)
        final: dict[str, Any] = {
            "status": TaskStatus.COMPLETED if success else TaskStatus.FAILED,
            "completed_at": self._wall_clock(),
        }
        if not success:
            final.update(
                self._diagnosis(
                    task.fields, error, error_category, failed_phase or task.failed_phase
                )
            )
        fields = task.snapshot_fields(self._clock(), **final)
        fields["durability"] = self._writer.save_task(build_task_record(fields))
        record = _build_completed(fields)
        self._notify(record)
        self._overhead_seconds += time.perf_counter() - began
        logger.debug(
            "task %s %s in %.3fs (peak VRAM %s MiB, %d samples)",
            task_id,
            record.status.value,
            record.generation_time_seconds or 0.0,
            record.peak_vram_usage_mb,
            record.samples_count,
        )
        return record

    def interrupt_task(self, task_id: str, reason: str) -> TaskRecord:
        """Close a running task as ``interrupted`` with ``reason`` (its client went away
        without completing it); stored and announced like any finished task.

        Raises:
            UnknownTaskError / TaskStateError: no running task has this id.
        """
        task_id = str(task_id)
        task = self._tracker.finish(task_id, self._clock(), failed=True)
        category, suggestions = _diagnose(None, task.failed_phase, ErrorCategory.INTERRUPTED)
        record = task.snapshot(
            self._clock(),
            status=TaskStatus.INTERRUPTED,
            completed_at=self._wall_clock(),
            current_phase=None,
            failed_phase=task.failed_phase,
            error_category=category,
            error_message=reason,
            recovery_suggestions=suggestions,
        )
        self._writer.save_task(record)
        self._notify(record)
        logger.info("task %s interrupted: %s", task_id, reason)
        return record

    def interrupt_running_tasks(self, reason: str) -> list[TaskRecord]:
        """Hand back every task still open as ``interrupted`` (in the phase it was in), now:
        for a service that stops without waiting for its generations. A later complete of
        one of them raises TaskStateError, as for any completed task."""
        records = []
        for task_id in self._tracker.open_ids():
            try:
                # The phases it was in end with it, failed.
                task = self._tracker.finish(task_id, self._clock(), failed=True)
            except (KeyError, TaskStateError):
                continue  # completed meanwhile by its own thread
            phase = task.failed_phase
            category, suggestions = _diagnose(None, phase, ErrorCategory.INTERRUPTED)
            record = task.snapshot(
                self._clock(),
                status=TaskStatus.INTERRUPTED,
                completed_at=self._wall_clock(),
                failed_phase=phase,
                error_category=category,
                error_message=reason,
                recovery_suggestions=suggestions,
                current_phase=None,
            )
            self._writer.save_task(record)
            self._notify(record)
            records.append(record)
        if records:
            logger.warning("handed back %d running task(s) as interrupted", len(records))
        return records

    @contextmanager
    def track(
        self,
        task_id: str,
        *,
        model_type: str,
        resolution: Resolution = "720p",
        steps: int | None = None,
        **fields: Any,
    ) -> Iterator[TaskHandle]:
        """Monitor the block as one task. An exception that escapes completes the task as
        a failure (diagnosed) and is re-raised unchanged."""
        self.start_task_monitoring(task_id, model_type, resolution, steps, **fields)
        handle = TaskHandle(self, str(task_id))
        try:
            yield handle
        except BaseException as exc:
            handle.record = self.complete_task_monitoring(handle.task_id, False, exc)
            raise
        handle.record = self.complete_task_monitoring(handle.task_id, True)

    @contextmanager
    def phase(self, task_id: str, name: str) -> Iterator[None]:
        """Attribute the time and peaks of the block to a phase of a running task."""
        task_id = str(task_id)
        check_text("phase", name)
        exclusive = self._tracker.is_exclusive(task_id)
        if exclusive:
            self._harvest_peaks(task_id, reset=True)
        now = self._clock()
        self._tracker.begin_phase(task_id, name, now)
        # Let the stored running record say which phase the task is in (off the hot path).
        self._writer.save_task_later(self._tracker.snapshot(task_id, now))
        failed = True
        try:
            yield
            failed = False
        finally:
            if exclusive and self._tracker.is_exclusive(task_id):
                self._harvest_peaks(task_id, reset=True)
            self._tracker.end_phase(task_id, self._clock(), failed=failed)

    def add_task_listener(self, listener: Callable[[TaskRecord], None]) -> None:
        """Call ``listener(record)`` with every task that finishes (completed, failed or found
        interrupted), on the finishing thread. A listener that raises is logged, never felt."""
        self._listeners.append(listener)

    # --- reading -------------------------------------------------------------------------

    def get_task_metrics(self, task_id: str) -> TaskRecord | None:
        """A running task's record so far, or the stored record of a finished one."""
        try:
            return self._tracker.snapshot(str(task_id), self._clock())
        except (KeyError, TaskStateError):
            store = self._writer.store()
            return store.get_task(str(task_id)) if store is not None else None

    def active_tasks(self, limit: int | None = None) -> list[ActiveTask]:
        """Tasks in progress, oldest first; at most ``limit`` (their count: self_stats)."""
        return [ActiveTask(r, p) for r, p in self._tracker.snapshots(self._clock(), limit)]

    def current_sample(self) -> SystemSample:
        """The latest sample, taking one now if the sampler has none yet."""
        return self._sampler.latest or self._sampler.sample_once()

    @property
    def history(self) -> list[SystemSample]:
        """Recent samples, oldest first (at most max_history_size)."""
        return list(self._sampler.history)

    @property
    def store(self) -> Store | None:
        """The store, or None while the database cannot be opened."""
        return self._writer.store()

    def finished_task(self, task_id: str) -> CompletedTask | None:
        """The newest finished record of this task id and whether it is stored: one still
        queued in memory (not durable), else the store's (durable). None when there is none
        (still running, unknown, or the database cannot be read)."""
        queued = self._writer.pending_record(str(task_id))
        if queued is not None:
            return _completed(queued, Durability.QUEUED)
        store = self._writer.store()
        if store is None:
            return None
        stored = store.get_task(str(task_id))
        if stored is None or not stored.finished:
            return None
        return _completed(stored, Durability.DURABLE)

    def write_error(self) -> str | None:
        """Why the last write to the database failed; None when the last write worked (or
        none was tried yet). Readiness reports it: a database that answers may still refuse
        writes (locked, full, a corrupt page)."""
        if self._writer.store() is None:
            return self._writer.write_error or "the database cannot be opened"
        error = self._writer.write_error
        pending = sum(r.finished for r in self._writer.pending_records())
        if error is None and pending:  # another table takes writes, the tasks' does not
            error = f"{count_of(pending, 'finished task')} not yet written"
        return error

    def predict(
        self,
        model_type: str,
        resolution: str,
        frames: int,
        steps: int,
        *,
        optimizations: Sequence[str] | None = None,
        node: str | None = None,
    ) -> Prediction:
        """Predict a generation's time (total and per phase), peak RAM and peak VRAM, each
        with a 90 % interval, from the stored history of ``model_type`` (on ``node`` when
        given). ``optimizations=None``: the set most runs used. When the history cannot
        answer, ``answerable`` is False and the prediction says why and which runs would
        make it answerable (``reasons``, ``suggested_runs``); it never guesses.

        Raises:
            ValueError: a bad resolution (not WIDTHxHEIGHT), frames or steps.
            StoreUnavailableError: the database cannot be opened.
            StoreError: the database cannot be read.
        """
        store = self.store
        if store is None:
            raise StoreUnavailableError("the database cannot be opened")
        return self.predictor.predict(
            store,
            model_type,
            resolution,
            frames,
            steps,
            optimizations=optimizations,
            node=node,
        )

    def self_stats(self) -> dict[str, float | int]:
        """The monitor's own health and overhead, for /metrics and `genperf status`."""
        w = self._writer
        return {
            "samples_taken": self._sampler.samples_taken,
            "collector_errors": self._sampler.collector_errors,
            "sampling_seconds": self._sampler.busy_seconds,
            "task_api_seconds": self._overhead_seconds,
            "tasks_running": self._tracker.open_count,
            "tasks_written": w.tasks_written,
            "tasks_pending": w.pending_tasks,
            "tasks_dropped": w.tasks_dropped,
            "samples_written": w.samples_written,
            "samples_dropped": w.samples_dropped,
            "store_errors": w.store_errors,
            **_sink_totals(self.sinks),
        }

    def flush(self) -> None:
        """Write buffered samples and queued tasks now."""
        self._writer.flush()

    def flush_sinks(self, timeout: float) -> bool:
        """Wait until the live sinks have sent what they hold (True), at most ``timeout``
        seconds (False). Never needed by a generation; for tests and orderly shutdowns."""
        deadline = time.monotonic() + timeout
        return all(sink.flush(max(0.0, deadline - time.monotonic())) for sink in self.sinks)

    # --- restart recovery ----------------------------------------------------------------

    def recover_interrupted(self) -> int:
        """Mark tasks of this node whose process is gone (killed, crashed) as interrupted,
        and those a gone process of this node recorded for another node (ingested over HTTP).

        Runs once, at start (or, with the database down at start, when it is back). Tasks of
        processes still alive (another service on this host sharing the database) are left
        alone. Returns how many were marked.
        """
        store = self._writer.store()  # opening it may run this (on_open): hence the lock
        if store is None:
            return 0  # down: runs when the writer opens it
        with self._recover_lock:
            if self._recovered:
                return 0
            self._recovered = True
            try:
                # With the tasks this node's API processes recorded for other nodes.
                running = store.running_tasks(self.node, recorded_there=True)
            except Exception as exc:
                logger.warning("could not look for interrupted tasks: %s", exc)
                return 0
            return self._mark_interrupted(running)

    def _on_store_open(self, _store: Store) -> None:
        if self._started:
            self.recover_interrupted()

    def _mark_interrupted(self, running: Sequence[TaskRecord]) -> int:
        marked = 0
        for record in running:
            instance = record.monitor_instance
            if instance and not instance.startswith(instance_prefix(self.node)):
                continue  # recorded by a process elsewhere (an API): only its node can tell
            if instance == self.instance or instance_alive(instance):
                continue
            phase = record.current_phase
            category, suggestions = _diagnose(None, phase, ErrorCategory.INTERRUPTED)
            interrupted = dataclasses.replace(
                record,
                status=TaskStatus.INTERRUPTED,
                completed_at=self._wall_clock(),
                current_phase=None,
                failed_phase=phase,
                error_category=category,
                error_message="the process running this task stopped before it completed",
                recovery_suggestions=suggestions,
            )
            self._writer.save_task(interrupted)
            self._notify(interrupted)
            marked += 1
        if marked:
            logger.warning("marked %d task(s) interrupted: their process is gone", marked)
        return marked

    # --- internals -----------------------------------------------------------------------

    def _record_lifecycle(self, *, started: bool) -> None:
        """Say in the database that this monitor started (and that monitors of this node whose
        process is gone stopped) or that it stopped: ``genperf status`` reads it."""
        store: Any = self._writer.store()  # SqlStore and MemoryStore keep monitors; others not
        if store is None or not hasattr(store, "monitors"):
            return
        now = self._wall_clock()
        try:
            if not started:
                store.monitor_stopped(self.instance, now)
                return
            for instance, node, stopped in store.monitors():
                if stopped or node != self.node or instance == self.instance:
                    continue
                if not instance_alive(instance):
                    store.monitor_stopped(instance, now)
            store.monitor_started(self.instance, self.node, now)
        except Exception as exc:  # status is told less; the monitor goes on
            logger.debug(
                "could not record the monitor's %s: %s", "start" if started else "stop", exc
            )

    def _notify(self, record: TaskRecord) -> None:
        for listener in self._listeners:
            try:
                listener(record)
            except Exception:
                logger.exception("task listener %r failed", listener)

    def _on_sample(self, sample: SystemSample, t: float) -> None:
        self._tracker.observe(sample, t)
        self._writer.add_sample(sample)
        for sink in self.sinks:
            sink.offer_sample(sample)

    def _close_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.close(self.settings.sink_timeout_seconds)
            except Exception:
                logger.exception("closing the %s sink failed", sink.name)

    def _open_default_store(self) -> Store:
        from genperf.storage import MEMORY_URL, MemoryStore, SqlStore

        url = self.settings.resolved_database_url
        if url == MEMORY_URL:
            return MemoryStore()
        # A locked SQLite database may hold a completing task for at most this long before its
        # record is queued for the writer thread instead (the store's own default is 15 s).
        return SqlStore(
            url,
            engine_kwargs={"connect_args": {"timeout": 2.0}} if url.startswith("sqlite") else None,
        )

    def _reset_peaks(self) -> None:
        try:
            if self._torch.available:
                self._torch.reset_peak()
            self._rss_peak.reset()
        except Exception:  # exact peaks are a bonus; never fail a task over them
            logger.debug("could not reset peak counters", exc_info=True)

    def _harvest_peaks(self, task_id: str, *, reset: bool) -> None:
        """Read the exact peaks since the last reset into the task (and reset them)."""
        try:
            torch_peak = self._torch.peak() if self._torch.available else None
            rss = self._rss_peak.peak_bytes()
        except Exception:
            logger.debug("could not read peak counters", exc_info=True)
            return
        self._tracker.fold_exact_peaks(
            task_id,
            allocated_mb=None if torch_peak is None else torch_peak[0] / MIB,
            reserved_mb=None if torch_peak is None else torch_peak[1] / MIB,
            ram_mb=None if rss is None else rss / MIB,
        )
        if reset:
            self._reset_peaks()

    def _harvest_exclusive_peaks(self) -> None:
        task_id = self._tracker.exclusive_task()
        if task_id is not None:
            self._harvest_peaks(task_id, reset=False)

    def _diagnosis(
        self,
        fields: Mapping[str, Any],
        error: BaseException | str | None,
        category: str | None,
        phase: str | None,
    ) -> dict[str, Any]:
        cat, suggestions = _diagnose(error, phase, category or fields.get("error_category"))
        message = fields.get("error_message") or _error_text(error)
        return {
            "error_category": cat,
            "error_message": message,
            "failed_phase": phase,
            "recovery_suggestions": tuple(fields.get("recovery_suggestions") or suggestions),
        }


def _sink_totals(sinks: Sequence[Sink]) -> dict[str, float | int]:
    """The live sinks' counters, summed (per sink: ``monitor.sinks[i].stats()``)."""
    sent = dropped = queued = errors = 0
    for sink in sinks:
        stats = sink.stats()
        sent += stats["tasks_sent"] + stats["samples_sent"]
        dropped += stats["tasks_dropped"] + stats["samples_dropped"]
        queued += stats["queued"]
        errors += stats["send_errors"]
    return {
        "sink_items_sent": sent,
        "sink_items_dropped": dropped,
        "sink_items_queued": queued,
        "sink_errors": errors,
    }


def _completed(record: TaskRecord, durability: Durability) -> CompletedTask:
    return CompletedTask(
        **{name: getattr(record, name) for name in TASK_FIELDS}, durability=durability
    )


def _diagnose(
    error: BaseException | str | None, phase: str | None, category: str | None
) -> tuple[str, tuple[str, ...]]:
    try:
        from genperf.analysis.failures import diagnose

        d = diagnose(error, phase, category=category)
        return d.category.value, d.suggestions
    except Exception:  # diagnosis is advice; a bug in it must not lose the task
        logger.exception("failure diagnosis failed")
        return (category or ErrorCategory.UNKNOWN.value), ()


def _error_text(error: BaseException | str | None, limit: int = 2000) -> str | None:
    if error is None:
        return None
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return text[:limit]


@functools.lru_cache(maxsize=256)
def _class_of_text(resolution: str) -> str:
    return resolution_class(resolution)


def _resolution_class(resolution: Resolution) -> str:
    """``resolution_class``, remembered for the few resolutions a service gives as text (a
    parse and a nearest-class search at every start otherwise)."""
    return (
        _class_of_text(resolution) if isinstance(resolution, str) else resolution_class(resolution)
    )


def _run_id() -> str:
    """A random (version 4) UUID as 32 hex digits, as ``uuid.uuid4().hex`` spells it, without
    building a UUID object on the task API's hot path."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    return raw.hex()


def _instance_id(node: str) -> str:
    pid = os.getpid()
    try:
        created = psutil.Process(pid).create_time()
    except psutil.Error:
        created = 0.0
    return f"{instance_prefix(node)}{pid}:{created:.2f}"


def visible_gpu_index() -> int | None:
    """The GPU index CUDA_VISIBLE_DEVICES names, when it names exactly one by index (a worker
    pinned to one GPU); None otherwise (unset, several, or by UUID)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return int(visible) if visible.isdigit() else None


def instance_alive(instance: str | None) -> bool:
    """Is the process that wrote this instance id still running (same pid, same start)?"""
    if not instance:
        return False
    try:
        _, pid_text, created_text = instance.rsplit(":", 2)
        proc = psutil.Process(int(pid_text))
        return bool(abs(proc.create_time() - float(created_text)) < 0.05)
    except (ValueError, psutil.Error):
        return False


# Monitors still running at interpreter exit are flushed, so buffered samples are not lost.
_running_monitors: weakref.WeakSet[PerformanceMonitor] = weakref.WeakSet()


@atexit.register
def _flush_at_exit() -> None:
    for monitor in list(_running_monitors):
        try:
            monitor.stop()
            monitor._close_sinks()  # send what the sinks hold, within their timeout
        except Exception:
            logger.debug("flush at exit failed", exc_info=True)
