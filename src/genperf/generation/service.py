"""The reference generation service: a queue, a worker, a model registry, all monitored.

::

    monitor = PerformanceMonitor(settings)
    with GenerationService(monitor) as service:           # starts the worker
        task_id = service.submit("tiny-wan-t2v", "a cat dancing in the rain", "832x480", 4, 9)
        service.wait_idle(60)
        print(service.get(task_id).metrics.phases)

Each request is one monitored task: the model load when the model is not loaded yet (then it
stays loaded, within the cache's memory budget), the three pipeline phases, steps and
optimisations, all recorded by :mod:`genperf.integrations.diffusers`. A request with
``memory_headroom_mib`` runs in a worker subprocess whose address space is capped (see
:mod:`genperf.generation.isolated`), so a generation that needs more memory fails for real,
there, and not the service.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from genperf.analysis.failures import diagnose
from genperf.config import GenerationLimits
from genperf.generation.errors import RequestNotFoundError
from genperf.generation.isolated import IsolatedRunner
from genperf.generation.model_cache import PipelineCache
from genperf.generation.presets import Preset, available
from genperf.generation.queue import QueuedRequest, ReapedRequest, RequestQueue, TuningDecision
from genperf.generation.registry import ModelRegistry
from genperf.generation.request import (
    GenerationRequest,
    RequestStatus,
    check_frames,
    check_headroom,
    check_limits,
    check_steps,
    parse_resolution,
)
from genperf.generation.runner import InProcessRunner
from genperf.generation.tuning import Choice, choose, next_lighter
from genperf.generation.wakeup import NotifyListener
from genperf.generation.worker import Worker
from genperf.monitor import PerformanceMonitor
from genperf.monitor.core import instance_alive
from genperf.records import ErrorCategory, TaskRecord, TaskStatus, to_jsonable, utc_now

logger = logging.getLogger("genperf.generation")

_PENDING = (RequestStatus.QUEUED, RequestStatus.RUNNING)
# SQLite has no notifications across processes: an idle worker looks at least this often,
# so requests queued by another process on the machine wait at most this long.
SQLITE_IDLE_POLL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class GenerationTask:
    """A request and, once it has run (or while it runs), its performance record."""

    request: QueuedRequest
    metrics: TaskRecord | None
    tuning: tuple[TuningDecision, ...] = ()
    prediction: Mapping[str, Any] | None = None  # what was predicted when it was queued

    @property
    def task_id(self) -> str:
        return self.request.task_id

    @property
    def status(self) -> RequestStatus:
        return self.request.status

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, without the prompt (it is input, not a metric)."""
        r = self.request
        data: dict[str, Any] = {
            "task_id": r.task_id,
            "model_type": r.model_type,
            "resolution": r.resolution,
            "steps": r.steps,
            "frames": r.frames,
            "memory_headroom_mib": r.memory_headroom_mib,
            "status": r.status.value,
            "created_at": r.created_at,
            "started_at": r.started_at,
            "completed_at": r.completed_at,
            "run_id": r.run_id,
            "error_message": r.error_message,
            "node": r.node,
            "attempts": r.attempts,
            "requeue_on_failure": r.requeue_on_failure,
            "interrupted_phase": r.interrupted_phase,
            "metrics": None if self.metrics is None else self.metrics.to_dict(),
        }
        return {k: to_jsonable(v) if isinstance(v, datetime) else v for k, v in data.items()}


class GenerationService:
    """Queue, worker and models of the reference generation service.

    Args:
        monitor: records every generation (its settings give the database and data_dir).
        registry: model types; default: the built-in tiny-wan and ``model_dir``.
        database_url: where the queue lives; default: the monitor's database.
        memory_budget_bytes: how much loaded models may hold; default half the host's RAM.
        poll_seconds: how soon an idle worker looks at the queue again after it was woken
            (it backs off from there to ``generation_queue.idle_poll_seconds``).
        model_types: the worker claims only these model types (None: any).
        run_worker: False for a process that queues and reaps but runs nothing
            (``genperf serve --no-worker`` beside agents on GPU nodes).
        limits: sizes, queue length and run time (default: the monitor's
            ``generation_limits`` setting).
        auto_tune: pick each request's optimisation preset from predictions, and retry once
            with the next lighter preset after an out-of-memory (see
            :mod:`genperf.generation.tuning`); default: the ``auto_tune`` setting.
    """

    def __init__(
        self,
        monitor: PerformanceMonitor,
        *,
        registry: ModelRegistry | None = None,
        database_url: str | None = None,
        memory_budget_bytes: int | None = None,
        poll_seconds: float = 1.0,
        limits: GenerationLimits | None = None,
        auto_tune: bool | None = None,
        model_types: Sequence[str] | None = None,
        run_worker: bool = True,
    ) -> None:
        self.monitor = monitor
        self.limits = limits if limits is not None else monitor.settings.generation_limits
        self.auto_tune = monitor.settings.auto_tune if auto_tune is None else auto_tune
        self.registry = registry if registry is not None else ModelRegistry(monitor.settings)
        self.queue = RequestQueue(database_url or monitor.settings.resolved_database_url)
        self.cache = PipelineCache(memory_budget_bytes)
        self._in_process = InProcessRunner(monitor, self.registry, self.cache)
        self._isolated = IsolatedRunner(
            monitor, self.registry, timeout_seconds=self.limits.max_run_seconds
        )
        leases = monitor.settings.generation_queue
        self.lease_seconds = leases.lease_seconds
        idle_poll = leases.idle_poll_seconds
        self._listener: NotifyListener | None = None
        if self.queue.is_postgresql:
            self._listener = NotifyListener(self.queue.url, self._woken)
        else:  # no notifications across processes: other processes' requests are polled for
            idle_poll = min(idle_poll, SQLITE_IDLE_POLL_SECONDS)
        self.worker = Worker(
            self.queue,
            self._run,
            poll_seconds=poll_seconds,
            idle_poll_seconds=idle_poll,
            identity=monitor.instance,
            node=monitor.node,
            lease_seconds=self.lease_seconds,
            model_types=model_types,
            reap=self.reap_expired,
            claims=run_worker,
        )

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Fail requests a previous process on this node left running (by pid), then start
        the worker. A database that is down does not stop it: the worker claims requests once
        it is back. Requests of dead workers elsewhere are reaped when their leases expire."""
        self.monitor.start()
        self.queue.fail_abandoned_at_open(node=self.monitor.node, alive=instance_alive)
        if self._listener is not None:
            self._listener.start()
        self.worker.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the worker after its current generation; True when it has stopped."""
        if self._listener is not None:
            self._listener.stop()
        return self.worker.stop(timeout)

    def close(self, grace_seconds: float | None = None) -> bool:
        """Stop the worker and release the models and the queue; True when it has stopped.

        With ``grace_seconds``, a generation still running after that long is handed back
        instead of awaited: its task is recorded ``interrupted`` (in the phase it was in) and
        its request failed, and False says the worker thread still runs: the process should
        end at once (``os._exit``), since an interpreter that exits normally under a running
        torch operation aborts.
        """
        if not self.stop(grace_seconds):
            self.monitor.interrupt_running_tasks("the service stopped while this generation ran")
            self.queue.fail_abandoned(worker=self.monitor.instance)
            return False  # the worker still holds the model and the queue
        self.cache.clear()
        self.queue.close()
        return True

    def __enter__(self) -> GenerationService:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests -----------------------------------------------------------------------------

    def submit(
        self,
        model_type: str,
        prompt: str,
        resolution: str,
        steps: int,
        frames: int,
        *,
        memory_headroom_mib: int | None = None,
        task_id: str | None = None,
        requeue_on_failure: bool = False,
    ) -> str:
        """Queue a generation; returns its task id. With ``requeue_on_failure`` a request
        whose worker dies while it runs is queued once more instead of interrupted.

        Raises:
            ModelNotAvailableError: the model type has no local directory (says how to add one).
            RequestLimitError: over the model type's limits (a ValueError naming the field).
            ValueError: a bad resolution, step or frame count, or headroom.
            QueueFullError: ``limits.max_queued_requests`` wait already; retry later.
        """
        self.registry.resolve(model_type)
        width, height = parse_resolution(resolution)
        request = GenerationRequest(
            task_id=task_id or uuid.uuid4().hex,
            model_type=model_type,
            prompt=prompt,
            width=width,
            height=height,
            steps=check_steps(steps),
            frames=check_frames(frames),
            memory_headroom_mib=check_headroom(memory_headroom_mib),
            requeue_on_failure=bool(requeue_on_failure),
        )
        check_limits(request, self.limits.for_model(model_type))
        self.queue.add(request, max_queued=self.limits.max_queued_requests)
        self.worker.wake()
        logger.info(
            "queued generation %s: %s %s, %d steps, %d frames",
            request.task_id,
            model_type,
            request.resolution,
            steps,
            frames,
        )
        return request.task_id

    def get(self, task_id: str) -> GenerationTask:
        """A request with its metrics (live while it runs).

        Raises:
            RequestNotFoundError: no request has this id.
        """
        request = self.queue.get(task_id)
        if request is None:
            raise RequestNotFoundError(task_id)
        return GenerationTask(
            request,
            self._metrics(request),
            tuple(self.queue.tuning(task_id)),
            self.queue.predictions([task_id]).get(task_id),
        )

    def list(
        self, status: RequestStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[GenerationTask]:
        """Requests, newest first, with their metrics and kept predictions."""
        requests = self.queue.list(status, limit, offset)
        predictions = self.queue.predictions([r.task_id for r in requests])
        return [
            GenerationTask(r, self._metrics(r), prediction=predictions.get(r.task_id))
            for r in requests
        ]

    def keep_prediction(self, task_id: str, prediction: Mapping[str, Any]) -> None:
        """Keep what was predicted for a request as it was queued (JSON-ready), so that
        predicted against actual shows what was said then. Never fails the request: a
        prediction that cannot be kept is logged and dropped."""
        try:
            self.queue.record_prediction(task_id, prediction)
        except Exception as exc:
            logger.warning("cannot keep the prediction of %s: %s", task_id, exc)

    def pending(self) -> int:
        """Requests queued or running."""
        return self.queue.count(_PENDING)

    def wait_idle(self, timeout: float | None = None, *, interval: float = 0.1) -> bool:
        """Block until no request is queued or running; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.pending():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(interval)
        return True

    def reap_expired(self) -> datetime | None:
        """Take back the requests of workers that died (their lease expired, on any node):
        each request and its performance record become ``interrupted`` in the phase it was
        in (or the request is queued once more, if it asked to be). Returns when the soonest
        lease still held expires. Called by the worker while idle."""
        for reaped in self.queue.reap_expired(phase_of=self._stored_phase):
            if reaped.run_id is not None:
                self._interrupt_record(reaped)
            if reaped.requeued:
                self.worker.wake()
        return self.queue.next_lease_expiry()

    # --- internals ----------------------------------------------------------------------------

    def _woken(self) -> None:
        self.worker.wake()

    def _stored_phase(self, run_id: str) -> str | None:
        store = self.monitor.store
        record = None if store is None else store.get_run(run_id)
        return None if record is None else record.current_phase

    def _interrupt_record(self, reaped: ReapedRequest) -> None:
        """The performance record of a run whose worker died says so, as the request does."""
        store = self.monitor.store
        try:
            record = (
                None if store is None or reaped.run_id is None else store.get_run(reaped.run_id)
            )
            if store is None or record is None or record.finished:
                return
            store.save_task(interrupted_record(record, reaped))
        except Exception:
            logger.warning("cannot mark the run of %s interrupted", reaped.task_id, exc_info=True)

    def _metrics(self, request: QueuedRequest) -> TaskRecord | None:
        if request.status is RequestStatus.QUEUED:
            return None
        if request.status is RequestStatus.RUNNING:
            live = self.monitor.get_task_metrics(request.task_id)
            if live is not None or request.node == self.monitor.node:
                return live  # on another node: its record as that node's monitor stored it
        store = self.monitor.store
        if request.run_id is None or store is None:
            return None
        try:
            return store.get_run(request.run_id)
        except Exception:
            logger.warning("cannot read the record of %s", request.task_id, exc_info=True)
            return None

    def _run(self, request: GenerationRequest) -> None:
        reason: str | None = None
        tuned = self.monitor.settings.tuned_presets.get(request.model_type)
        if tuned is not None and request.preset is None:
            request = replace(request, preset=tuned)
            reason = f"{tuned}: the tuned preset of {request.model_type} (genperf tune)"
        if self.auto_tune:
            choice = self._choose(request)
            reason = choice.reason
            if choice.preset is not None:
                request = replace(request, preset=choice.preset.name)
        record = self._attempt(request, reason)
        if record is None:
            return
        if self.auto_tune and _out_of_memory(record):
            lighter = next_lighter(request.preset, self._presets())
            if lighter is not None:
                why = (
                    f"{lighter.name}: retry after running out of memory with "
                    f"{request.preset or 'the configured settings'}"
                )
                logger.info("generation %s: %s", request.task_id, why)
                retried = self._attempt(
                    replace(request, preset=lighter.name), why, retry_of=record.run_id
                )
                record = retried if retried is not None else record
        status = (
            RequestStatus.COMPLETED
            if record.status is TaskStatus.COMPLETED
            else RequestStatus.FAILED
        )
        if self.queue.finish(
            request.task_id, status, run_id=record.run_id, worker=self.monitor.instance
        ):
            logger.info("generation %s %s", request.task_id, status.value)

    def _attempt(
        self, request: GenerationRequest, reason: str | None, retry_of: str | None = None
    ) -> TaskRecord | None:
        """One monitored run; None when it failed before it was monitored (then finished)."""
        runner = self._isolated if request.memory_headroom_mib is not None else self._in_process
        # Every run has a time limit: a subprocess is killed at it, an in-process run stops
        # at its next denoising step; either fails as a timeout and the worker goes on.
        time_limit = self.limits.for_model(request.model_type).max_run_seconds

        def on_run(run_id: str) -> None:
            try:
                self.queue.set_run(request.task_id, run_id, worker=self.monitor.instance)
            except Exception:
                logger.warning("cannot link %s to its run", request.task_id, exc_info=True)

        try:
            record = runner.run(request, on_run, time_limit_seconds=time_limit)
        except Exception as exc:
            logger.warning("generation %s failed before it was monitored: %s", request.task_id, exc)
            self.queue.finish(
                request.task_id,
                RequestStatus.FAILED,
                error_message=f"{type(exc).__name__}: {exc}",
                worker=self.monitor.instance,
            )
            return None
        if reason is not None:
            try:
                self.queue.record_tuning(
                    request.task_id, record.run_id, request.preset, reason, retry_of
                )
            except Exception:
                logger.warning("cannot record the tuning of %s", request.task_id, exc_info=True)
        return record

    def _presets(self) -> tuple[Preset, ...]:
        gpus = self.monitor.current_sample().gpus
        return available(accelerator=bool(gpus))

    def _choose(self, request: GenerationRequest) -> Choice:
        """Auto-tune's choice; never fails the request (it then runs as configured)."""
        try:
            return choose(self.monitor, request, self._presets())
        except Exception as exc:
            logger.warning("auto-tune could not choose for %s: %s", request.task_id, exc)
            return Choice(None, f"auto-tune could not choose ({type(exc).__name__}); as configured")


def interrupted_record(record: TaskRecord, reaped: ReapedRequest) -> TaskRecord:
    """A running record whose worker died: interrupted in the phase it was in."""
    phase = reaped.phase or record.current_phase
    diagnosis = diagnose(None, phase, category=ErrorCategory.INTERRUPTED)
    return replace(
        record,
        status=TaskStatus.INTERRUPTED,
        completed_at=utc_now(),
        current_phase=None,
        failed_phase=phase,
        error_category=diagnosis.category.value,
        error_message=(
            f"its worker on node {reaped.node} stopped renewing its lease (the process died "
            "or stalled) while it ran"
        ),
        recovery_suggestions=diagnosis.suggestions,
    )


def _out_of_memory(record: TaskRecord) -> bool:
    return not record.success and (record.error_category or "").startswith("out_of_memory")
