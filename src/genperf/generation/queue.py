"""The generation queue: requests persisted in the database, in their own table.

``generation_requests`` lives beside the monitor's ``generation_tasks`` (same database, its own
table, created here with ``CREATE TABLE IF NOT EXISTS``): one row per request, linked to the
monitor's record of its run by ``run_id``. The prompt is generation input, not a metric: it
lives only in this table, only while the request waits or runs (it is cleared when the request
finishes), and never reaches the performance tables, exports or /metrics.

Many workers share one queue, in one process, several processes on one machine (SQLite) or
several nodes (PostgreSQL): a claim takes the oldest queued request in one transaction
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; on SQLite ``BEGIN IMMEDIATE`` holds the database's
write lock, so the select and the conditional update are one atomic step), so exactly one
worker runs each request. A running request holds a lease (``lease_expires_at``) its worker
renews; a lease left to expire means its worker died, on whatever node: any live worker or the
serve process reaps it (:meth:`RequestQueue.reap_expired`): the request becomes
``interrupted`` in the phase it was in, or is queued once more when it asked to be
(``requeue_on_failure``). A process that restarts on the same node also fails, at once, the
requests its dead predecessors left running (:meth:`RequestQueue.fail_abandoned`, by pid).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Index,
    Integer,
    MetaData,
    RowMapping,
    Select,
    String,
    Table,
    Text,
    false,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)

from genperf.errors import StoreUnavailableError
from genperf.generation.errors import QueueFullError
from genperf.generation.request import GenerationRequest, RequestStatus
from genperf.records import utc_now
from genperf.storage import MEMORY_URL
from genperf.storage.engine import (
    SQLITE_BEGIN,
    HeldReader,
    checkpoint_and_truncate,
    make_engine,
    store_errors,
)
from genperf.storage.migrate import upgrade_database
from genperf.storage.schema import UtcDateTime

logger = logging.getLogger("genperf.generation")

REQUESTS_TABLE = "generation_requests"
QUEUE_FULL_RETRY_AFTER_SECONDS = 30  # a tiny generation takes seconds, a real one minutes
_ERROR_CHARS = 2000
MAX_ATTEMPTS = 2  # a request that asked to be requeued runs at most twice
# PostgreSQL: the channel a new (or requeued) request is announced on, so idle workers wake.
NOTIFY_CHANNEL = "genperf_generation_requests"
_CREATE_LOCK = 0x67656E7175657565  # "genqueue": the advisory lock around creating the tables

metadata = MetaData()

generation_requests = Table(
    REQUESTS_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # the queue's order
    Column("task_id", String(64), nullable=False),
    Column("model_type", String(100), nullable=False),
    Column("prompt", Text),  # cleared when the request finishes
    Column("width", Integer, nullable=False),
    Column("height", Integer, nullable=False),
    Column("steps", Integer, nullable=False),
    Column("frames", Integer, nullable=False),
    Column("memory_headroom_mib", Integer),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("started_at", UtcDateTime),
    Column("completed_at", UtcDateTime),
    Column("run_id", String(64)),  # generation_tasks.run_id of its monitored run
    Column("error_message", Text),  # only for failures outside a monitored run
    # Who runs it and until when (migration 0004_leases adds these to an older table).
    Column("node", String(255)),
    Column("worker", String(255)),  # the worker's monitor instance: node:pid:start time
    Column("lease_expires_at", UtcDateTime),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("requeue_on_failure", Boolean, nullable=False, server_default=false()),
    Column("interrupted_phase", String(100)),  # the phase it was in when its worker died
    Index("uq_generation_requests_task_id", "task_id", unique=True),
    Index("ix_generation_requests_status_id", "status", "id"),
    Index("ix_generation_requests_status_lease", "status", "lease_expires_at"),
)

# Auto-tune's decisions: the preset each run of a request used and why; a retry after an
# out-of-memory names the run it retries (both runs are in generation_tasks).
generation_tuning = Table(
    "generation_tuning",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("run_id", String(64)),
    Column("preset", String(64)),  # None: run as configured
    Column("reason", Text, nullable=False),
    Column("retry_of_run_id", String(64)),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_generation_tuning_task_id", "task_id"),
)

# What the history predicted for a request when it was queued (``POST /predict``'s answer, as
# JSON), kept so that predicted against actual is what was said then, not a refit since.
generation_predictions = Table(
    "generation_predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("task_id", String(64), nullable=False),
    Column("prediction", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index("uq_generation_predictions_task_id", "task_id", unique=True),
)
MAX_PREDICTION_CHARS = 16_000  # a prediction is ~1-2 kB; a bound keeps a row from growing

_t = generation_requests


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request as the queue keeps it, without its prompt."""

    task_id: str
    model_type: str
    width: int
    height: int
    steps: int
    frames: int
    memory_headroom_mib: int | None
    status: RequestStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    run_id: str | None
    error_message: str | None
    node: str | None = None
    worker: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    requeue_on_failure: bool = False
    interrupted_phase: str | None = None

    @property
    def resolution(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True, slots=True)
class Outlook:
    """What an idle worker needs to know: whether a request (of its model types) waits, and
    when the soonest lease of a running request expires (None: nothing runs)."""

    queued: bool
    soonest_expiry: datetime | None

    def expired(self, now: datetime) -> bool:
        """Whether a running request's lease has expired by ``now`` (one to reap)."""
        return self.soonest_expiry is not None and self.soonest_expiry <= now


@dataclass(frozen=True, slots=True)
class ReapedRequest:
    """A running request whose lease expired: its worker died (or stopped) on ``node``."""

    task_id: str
    run_id: str | None
    node: str | None
    worker: str | None
    requeued: bool
    phase: str | None


@dataclass(frozen=True, slots=True)
class TuningDecision:
    """The preset one run of a request used (None: as configured), and why."""

    run_id: str | None
    preset: str | None
    reason: str
    retry_of_run_id: str | None
    created_at: datetime


class RequestQueue:
    """Requests in the database, claimed one at a time in submission order.

    Args:
        url: a SQLAlchemy URL (SQLite or PostgreSQL), or ``memory://`` for an in-memory queue.

    A database that is down at start does not stop the queue from being made: its table is
    created at the first use once the database is back.

    Raises:
        StoreError / StoreUnavailableError: the database cannot be opened or written.
    """

    def __init__(self, url: str) -> None:
        self._url = "sqlite://" if url == MEMORY_URL else url
        self._engine: Engine = make_engine(self._url)
        self._writer = self._engine.execution_options(**{SQLITE_BEGIN: "BEGIN IMMEDIATE"})
        self._table_ready = False
        self._fail_abandoned_when_ready = False
        self._abandoned_by: dict[str, Any] = {}
        self._setup_lock = threading.Lock()
        self._outlook_reader = HeldReader(self._engine)
        self._outlook_sql: dict[tuple[str, ...] | None, str] = {}  # one per worker's types
        expiry_type = _t.c.lease_expires_at.type
        dialect = self._engine.dialect
        self._read_expiry = expiry_type.dialect_impl(dialect).result_processor(dialect, None)
        try:
            self._ensure_table()
        except StoreUnavailableError as exc:  # down at start: made on the first use after
            logger.warning("generation queue waits for its database: %s", exc)

    def _ensure_table(self) -> None:
        """Create the table once; a database that is down is tried again at the next use."""
        if self._table_ready:
            return
        with self._setup_lock:
            if not self._table_ready:
                with store_errors("create the generation_requests table", self._url):
                    # Serialised with other processes creating it at the same moment (the
                    # agents of a fleet starting together): check-then-create would race.
                    with self._writer.begin() as conn:
                        if conn.dialect.name == "postgresql":
                            conn.execute(
                                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CREATE_LOCK}
                            )
                        metadata.create_all(conn, checkfirst=True)
                    if not _has_leases(self._engine):  # a table older than leases
                        upgrade_database(self._engine)
                self._table_ready = True
                if self._fail_abandoned_when_ready:
                    self.fail_abandoned(**self._abandoned_by)

    def fail_abandoned_at_open(
        self, *, node: str | None = None, alive: Callable[[str], bool] | None = None
    ) -> None:
        """Fail abandoned requests (see :meth:`fail_abandoned`) now, or, while the database
        is down, as soon as it is back (before the first request is claimed)."""
        self._fail_abandoned_when_ready = True
        self._abandoned_by = {"node": node, "alive": alive}
        try:
            if self._table_ready:
                self.fail_abandoned(node=node, alive=alive)
            else:
                self._ensure_table()
        except StoreUnavailableError as exc:
            logger.warning(
                "abandoned generation requests are failed once the database is back: %s", exc
            )

    @property
    def is_postgresql(self) -> bool:
        return self._engine.dialect.name == "postgresql"

    @property
    def url(self) -> str:
        return self._url

    def close(self) -> None:
        self._outlook_reader.close()
        self._engine.dispose()

    # --- writes -----------------------------------------------------------------------------

    def add(self, request: GenerationRequest, *, max_queued: int | None = None) -> None:
        """Queue a request (its task_id must be new).

        Raises:
            QueueFullError: ``max_queued`` requests wait already (counted in the same write
                transaction, so concurrent submitters cannot all slip in on SQLite).
        """
        row = {
            "task_id": request.task_id,
            "model_type": request.model_type,
            "prompt": request.prompt,
            "width": request.width,
            "height": request.height,
            "steps": request.steps,
            "frames": request.frames,
            "memory_headroom_mib": request.memory_headroom_mib,
            "status": RequestStatus.QUEUED.value,
            "created_at": utc_now(),
            "requeue_on_failure": request.requeue_on_failure,
        }
        with self._write("queue a request") as conn:
            if max_queued is not None:
                waiting = conn.execute(
                    select(func.count()).where(_t.c.status == RequestStatus.QUEUED.value)
                ).scalar_one()
                if waiting >= max_queued:
                    raise QueueFullError(max_queued, QUEUE_FULL_RETRY_AFTER_SECONDS)
            conn.execute(insert(_t), row)
            self._announce(conn)

    def claim_next(
        self,
        worker: str | None = None,
        node: str | None = None,
        *,
        lease_seconds: float = 30.0,
        model_types: Sequence[str] | None = None,
    ) -> GenerationRequest | None:
        """Mark the oldest queued request (of ``model_types``, when given) running under a
        lease of ``lease_seconds`` held by ``worker`` on ``node``, and return it (with its
        prompt); None when none waits.

        Exactly one worker gets each request: PostgreSQL skips rows another claim holds
        locked; SQLite runs the select and the conditional update under one write lock.
        """
        stmt = select(_t).where(_t.c.status == RequestStatus.QUEUED.value)
        if model_types:
            stmt = stmt.where(_t.c.model_type.in_(list(model_types)))
        with self._write("claim a request") as conn:
            row = (
                conn.execute(stmt.order_by(_t.c.id).limit(1).with_for_update(skip_locked=True))
                .mappings()
                .first()
            )
            if row is None:
                return None
            now = utc_now()
            claimed = conn.execute(
                update(_t)
                .where(_t.c.id == row["id"], _t.c.status == RequestStatus.QUEUED.value)
                .values(
                    status=RequestStatus.RUNNING.value,
                    started_at=now,
                    node=node,
                    worker=worker,
                    lease_expires_at=now + timedelta(seconds=lease_seconds),
                    attempts=_t.c.attempts + 1,
                )
            ).rowcount
        if claimed != 1:
            return None
        return GenerationRequest(
            task_id=row["task_id"],
            model_type=row["model_type"],
            prompt=row["prompt"] or "",
            width=row["width"],
            height=row["height"],
            steps=row["steps"],
            frames=row["frames"],
            memory_headroom_mib=row["memory_headroom_mib"],
            requeue_on_failure=bool(row["requeue_on_failure"]),
        )

    def renew(self, task_id: str, worker: str, lease_seconds: float) -> bool:
        """Extend ``worker``'s lease on a running request; False when it no longer holds it
        (the lease expired and the request was reaped)."""
        with self._write("renew a lease") as conn:
            renewed: int = conn.execute(
                update(_t)
                .where(*_held(task_id, worker))
                .values(lease_expires_at=utc_now() + timedelta(seconds=lease_seconds))
            ).rowcount
        return renewed == 1

    def set_run(self, task_id: str, run_id: str, worker: str | None = None) -> None:
        """Link a running request to the monitor's record of its run (when ``worker``, the
        request's current holder, still holds it)."""
        where = _held(task_id, worker) if worker is not None else (_t.c.task_id == task_id,)
        with self._write("link a request to its run") as conn:
            conn.execute(update(_t).where(*where).values(run_id=run_id))

    def finish(
        self,
        task_id: str,
        status: RequestStatus,
        *,
        run_id: str | None = None,
        error_message: str | None = None,
        worker: str | None = None,
    ) -> bool:
        """Mark a request completed or failed, and forget its prompt. With ``worker``, only
        while that worker holds it: a worker whose lease was reaped (it stalled past it)
        must not overwrite what the reaper, or the request's next worker, recorded. True
        when the request was marked."""
        values: dict[str, object] = {
            "status": status.value,
            "completed_at": utc_now(),
            "prompt": None,
            "lease_expires_at": None,
        }
        if run_id is not None:
            values["run_id"] = run_id
        if error_message is not None:
            values["error_message"] = error_message[:_ERROR_CHARS]
        where = _held(task_id, worker) if worker is not None else (_t.c.task_id == task_id,)
        with self._write("finish a request") as conn:
            finished: int = conn.execute(update(_t).where(*where).values(**values)).rowcount
        self._forget_prompts()
        return finished == 1

    def record_tuning(
        self,
        task_id: str,
        run_id: str | None,
        preset: str | None,
        reason: str,
        retry_of_run_id: str | None = None,
    ) -> None:
        """Keep auto-tune's choice for one run of a request, and why."""
        row = {
            "task_id": task_id,
            "run_id": run_id,
            "preset": preset,
            "reason": reason[:_ERROR_CHARS],
            "retry_of_run_id": retry_of_run_id,
            "created_at": utc_now(),
        }
        with self._write("record a tuning decision") as conn:
            conn.execute(insert(generation_tuning), row)

    def tuning(self, task_id: str) -> list[TuningDecision]:
        """Auto-tune's decisions for a request, oldest first."""
        g = generation_tuning
        stmt = (
            select(g.c.run_id, g.c.preset, g.c.reason, g.c.retry_of_run_id, g.c.created_at)
            .where(g.c.task_id == task_id)
            .order_by(g.c.id)
        )
        with self._read("read tuning decisions") as conn:
            return [TuningDecision(**dict(r)) for r in conn.execute(stmt).mappings()]

    def record_prediction(self, task_id: str, prediction: Mapping[str, Any]) -> None:
        """Keep the prediction made for a request when it was queued.

        Raises:
            ValueError: the prediction's JSON is over :data:`MAX_PREDICTION_CHARS`.
        """
        text = json.dumps(prediction, separators=(",", ":"), allow_nan=False)
        if len(text) > MAX_PREDICTION_CHARS:
            raise ValueError(f"prediction: {len(text)} characters, over {MAX_PREDICTION_CHARS}")
        row = {"task_id": task_id, "prediction": text, "created_at": utc_now()}
        with self._write("record a prediction") as conn:
            conn.execute(insert(generation_predictions), row)

    def predictions(self, task_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The kept prediction of each of these requests that has one."""
        if not task_ids:
            return {}
        p = generation_predictions
        stmt = select(p.c.task_id, p.c.prediction).where(p.c.task_id.in_(list(task_ids)))
        with self._read("read predictions") as conn:
            return {task_id: json.loads(text) for task_id, text in conn.execute(stmt)}

    def fail_abandoned(
        self,
        *,
        node: str | None = None,
        alive: Callable[[str], bool] | None = None,
        worker: str | None = None,
    ) -> int:
        """Fail requests left running by a process that stopped; returns how many.

        With ``worker``: that worker's (a service that stops without waiting for its
        generation). With ``node`` and ``alive``: those run on this node by a worker whose
        process is gone (restart recovery by pid, which only this node can check), and those
        claimed without a lease (by a genperf older than leases). With neither: all of them
        (one service per database). Other nodes' workers are left to their leases.
        """
        running = _t.c.status == RequestStatus.RUNNING.value
        with self._write("fail abandoned requests") as conn:
            ids: list[tuple[int]]
            if worker is not None:
                ids = [
                    (r.id,)
                    for r in conn.execute(select(_t.c.id).where(running, _t.c.worker == worker))
                ]
            elif node is not None:
                rows = conn.execute(
                    select(_t.c.id, _t.c.node, _t.c.worker).where(
                        running, or_(_t.c.worker.is_(None), _t.c.node == node)
                    )
                ).all()
                ids = [
                    (r.id,)
                    for r in rows
                    if r.worker is None or alive is None or not alive(r.worker)
                ]
            else:
                ids = [(r.id,) for r in conn.execute(select(_t.c.id).where(running))]
            chosen = [i for (i,) in ids]
            changed: int = 0
            if chosen:
                changed = conn.execute(
                    update(_t)
                    .where(_t.c.id.in_(chosen), running)
                    .values(
                        status=RequestStatus.FAILED.value,
                        completed_at=utc_now(),
                        prompt=None,
                        lease_expires_at=None,
                        error_message="the service stopped while this generation ran",
                    )
                ).rowcount
        if changed:
            self._forget_prompts()
            logger.warning(
                "failed %d generation request(s) left running by a stopped service", changed
            )
        return changed

    def reap_expired(
        self, phase_of: Callable[[str], str | None] | None = None
    ) -> list[ReapedRequest]:
        """Take back running requests whose lease expired (their worker died, on any node):
        each becomes ``interrupted`` in the phase it was in (``phase_of(run_id)``: the phase
        its performance record last stored), or is queued once more when it asked to be and
        has run only once. Safe to call from every worker at once: each expired request is
        reaped by exactly one caller (locked rows are skipped, the update is conditional).
        """
        now = utc_now()
        expired = (_t.c.status == RequestStatus.RUNNING.value, _t.c.lease_expires_at < now)
        reaped: list[ReapedRequest] = []
        with self._write("reap expired leases") as conn:
            rows = (
                conn.execute(
                    select(
                        _t.c.id,
                        _t.c.task_id,
                        _t.c.run_id,
                        _t.c.node,
                        _t.c.worker,
                        _t.c.attempts,
                        _t.c.requeue_on_failure,
                    )
                    .where(*expired)
                    .order_by(_t.c.id)
                    .with_for_update(skip_locked=True)
                )
                .mappings()
                .all()
            )
            for row in rows:
                requeue = bool(row["requeue_on_failure"]) and row["attempts"] < MAX_ATTEMPTS
                phase = _phase(phase_of, row["run_id"])
                if requeue:
                    values: dict[str, object] = {
                        "status": RequestStatus.QUEUED.value,
                        "started_at": None,
                        "node": None,
                        "worker": None,
                        "lease_expires_at": None,
                        "interrupted_phase": phase,
                    }
                else:
                    values = {
                        "status": RequestStatus.INTERRUPTED.value,
                        "completed_at": now,
                        "prompt": None,
                        "lease_expires_at": None,
                        "interrupted_phase": phase,
                        "error_message": (
                            f"its worker {row['worker']} on node {row['node']} stopped renewing "
                            "its lease (the process died or stalled) while it ran"
                        )[:_ERROR_CHARS],
                    }
                done = conn.execute(
                    update(_t).where(_t.c.id == row["id"], *expired).values(**values)
                ).rowcount
                if done == 1:
                    reaped.append(
                        ReapedRequest(
                            task_id=row["task_id"],
                            run_id=row["run_id"],
                            node=row["node"],
                            worker=row["worker"],
                            requeued=requeue,
                            phase=phase,
                        )
                    )
            if any(r.requeued for r in reaped):
                self._announce(conn)
        if reaped:
            self._forget_prompts()
            for r in reaped:
                logger.warning(
                    "generation %s %s: its worker %s on node %s let its lease expire",
                    r.task_id,
                    "queued again" if r.requeued else "interrupted",
                    r.worker,
                    r.node,
                )
        return reaped

    def outlook(self, model_types: Sequence[str] | None = None) -> Outlook | None:
        """Whether a request of ``model_types`` (any when None) waits, and when the soonest
        running lease expires, in one read that takes no lock: what an idle worker looks at
        before it claims (a write transaction, on SQLite the database's write lock) or reaps.
        None when the database cannot answer now (the worker then claims as usual, which
        reports why)."""
        if not self._table_ready:
            return None
        key = tuple(model_types) if model_types else None
        sql = self._outlook_sql.get(key)
        if sql is None:
            sql = self._outlook_sql[key] = self._compile_outlook(key)
        row = self._outlook_reader.fetchone(sql)
        if row is None:
            return None
        queued, soonest = row
        if soonest is not None and self._read_expiry is not None:
            soonest = self._read_expiry(soonest)  # SQLite's stored text, as a UTC datetime
        return Outlook(queued=bool(queued), soonest_expiry=soonest)

    def _compile_outlook(self, model_types: tuple[str, ...] | None) -> str:
        """The outlook's one statement as the driver's SQL (compiled once per model types:
        their names are inlined as escaped literals, so it takes no parameter)."""
        waiting = select(_t.c.id).where(_t.c.status == RequestStatus.QUEUED.value)
        if model_types:
            waiting = waiting.where(_t.c.model_type.in_(model_types))
        soonest = select(func.min(_t.c.lease_expires_at)).where(
            _t.c.status == RequestStatus.RUNNING.value
        )
        stmt = select(waiting.exists(), soonest.scalar_subquery())
        dialect = self._engine.dialect
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    def next_lease_expiry(self) -> datetime | None:
        """When the soonest lease of a running request expires (None: nothing runs)."""
        stmt = select(func.min(_t.c.lease_expires_at)).where(
            _t.c.status == RequestStatus.RUNNING.value
        )
        with self._read("read the next lease expiry") as conn:
            value: datetime | None = conn.execute(stmt).scalar_one()
        return value

    # --- reads ------------------------------------------------------------------------------

    def get(self, task_id: str) -> QueuedRequest | None:
        with self._read("read a request") as conn:
            row = conn.execute(_select().where(_t.c.task_id == task_id)).mappings().first()
        return None if row is None else _view(row)

    def list(
        self, status: RequestStatus | None = None, limit: int = 50, offset: int = 0
    ) -> list[QueuedRequest]:
        """Requests, newest first."""
        stmt = _select().order_by(_t.c.id.desc()).limit(limit).offset(offset)
        if status is not None:
            stmt = stmt.where(_t.c.status == status.value)
        with self._read("list requests") as conn:
            rows = conn.execute(stmt).mappings().all()
        return [_view(row) for row in rows]

    def count(self, statuses: Sequence[RequestStatus]) -> int:
        """How many requests are in any of these states."""
        stmt = select(func.count()).where(_t.c.status.in_([s.value for s in statuses]))
        with self._read("count requests") as conn:
            return int(conn.execute(stmt).scalar_one())

    # --- internals --------------------------------------------------------------------------

    def _announce(self, conn: Connection) -> None:
        """PostgreSQL: wake idle workers everywhere when this transaction commits."""
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": NOTIFY_CHANNEL})

    def _forget_prompts(self) -> None:
        """Cleared prompts were zeroed in the database file (secure_delete); the WAL still
        holds the pages written before: checkpoint and truncate it, so they are gone now."""
        try:
            checkpoint_and_truncate(self._engine)
        except Exception as exc:  # the next finished request tries again
            logger.debug("cannot checkpoint the generation queue's database: %s", exc)

    @contextmanager
    def _write(self, action: str) -> Iterator[Connection]:
        self._ensure_table()
        with store_errors(action, self._url), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self, action: str) -> Iterator[Connection]:
        self._ensure_table()
        with store_errors(action, self._url), self._engine.connect() as conn:
            yield conn


def _held(task_id: str, worker: str | None) -> tuple[Any, ...]:
    """The request is running and ``worker`` holds it."""
    return (
        _t.c.task_id == task_id,
        _t.c.status == RequestStatus.RUNNING.value,
        _t.c.worker == worker,
    )


def _phase(phase_of: Callable[[str], str | None] | None, run_id: str | None) -> str | None:
    if phase_of is None or run_id is None:
        return None
    try:
        return phase_of(run_id)
    except Exception as exc:  # the phase is detail: the lease is reaped without it
        logger.warning("cannot read the phase of run %s: %s", run_id, exc)
        return None


def _has_leases(engine: Engine) -> bool:
    columns = inspect(engine).get_columns(REQUESTS_TABLE)
    return any(c["name"] == "lease_expires_at" for c in columns)


def _select() -> Select[Any]:
    return select(*[c for c in _t.c if c.name not in ("id", "prompt")])


def _view(row: RowMapping) -> QueuedRequest:
    data = dict(row)
    data["status"] = RequestStatus(data["status"])
    data["requeue_on_failure"] = bool(data["requeue_on_failure"])
    return QueuedRequest(**data)
